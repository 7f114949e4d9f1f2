/* SPDX-License-Identifier: Apache-2.0 */
/* Control methods budget.show / budget.set (docs/CONTROL.md): the LLM ledger's budgets
 * per agent slot and per task (host/llm/llm-ledger.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config-util.h"
#include "control.h"
#include "llm-ledger.h"
#include "log.h"
#include "orchd-llm.h"
#include "orchd.h"

static json_t *budget_json(const char *scope, const char *id, const struct llm_budget *b)
{
	return json_pack("{sssssfsIsfsIsfsI}", "scope", scope, "id", id, "limit_usd",
			 (double)b->limit_micro / 1e6, "limit_tokens", (json_int_t)b->limit_tokens,
			 "spent_usd", (double)b->spent_micro / 1e6, "spent_tokens",
			 (json_int_t)b->spent_tokens, "reserved_usd",
			 (double)b->reserved_micro / 1e6, "reserved_tokens",
			 (json_int_t)b->reserved_tokens);
}

struct show_ctx {
	json_t *list;
	const char *id;
};

static int show_one(const char *scope, const char *id, const struct llm_budget *b, void *data)
{
	struct show_ctx *c = data;

	if (c->id && strcmp(c->id, id) != 0)
		return 0;
	if (json_array_size(c->list) >= 10000)
		return 0;
	json_array_append_new(c->list, budget_json(scope, id, b));
	return 0;
}

static int need_llm(struct orchd *d, struct orch_error *err)
{
	if (!orchd_llm_enabled(d))
		return orch_err(
			err, ORCH_RPC_NOT_FOUND,
			"the LLM proxy is not configured (no llm.upstreams in orchd's config)");
	return 0;
}

/* scope "agent" ids are "<vm>/<slot>" of a configured VM; "task" ids are task ids. */
static int check_scope_id(struct orchd *d, const char *scope, const char *id,
			  struct orch_error *err)
{
	char vm[ORCHD_NAME_MAX + 1], *end;
	const char *slash;
	struct vm *v;
	long long n;

	if (strcmp(scope, "task") == 0) {
		n = strtoll(id, &end, 10);
		if (!*id || *end || n <= 0)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"params.id: expected a task id");
		return 0;
	}
	if (strcmp(scope, "agent") != 0)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.scope: expected \"agent\" or \"task\"");
	slash = strchr(id, '/');
	if (!slash || (size_t)(slash - id) > ORCHD_NAME_MAX)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.id: expected <vm>/<slot>, e.g. dev/0");
	memcpy(vm, id, (size_t)(slash - id));
	vm[slash - id] = 0;
	v = orchd_find_vm(d, vm);
	n = strtoll(slash + 1, &end, 10);
	if (!v || !slash[1] || *end || n < 0 || n >= v->n_slots)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no agent slot %s", id);
	return 0;
}

int control_budget_show(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	static const char *const keys[] = {"scope", "id", NULL};
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *scope = NULL, *id = NULL;
	struct show_ctx c = {0};
	int r;

	if ((r = need_llm(d, err)) < 0)
		return r;
	if (params && (!json_is_object(params) || cfg_check_keys(params, "params", keys, err) < 0 ||
		       cfg_string(params, "params", "scope", 16, false, &scope, err) < 0 ||
		       cfg_string(params, "params", "id", 128, false, &id, err) < 0))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s",
				err->msg[0] ? err->msg : "params: expected an object");
	if (scope && strcmp(scope, "agent") && strcmp(scope, "task"))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.scope: expected \"agent\" or \"task\"");
	c.list = json_array();
	c.id = id;
	r = llm_ledger_foreach(store_db(d->store), scope, show_one, &c, err);
	if (r < 0) {
		json_decref(c.list);
		return r;
	}
	return orch_rpc_reply(req, json_pack("{so}", "budgets", c.list));
}

int control_budget_set(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	static const char *const keys[] = {"scope",	   "id",    "limit_usd",
					   "limit_tokens", "reset", NULL};
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *scope = NULL, *id = NULL;
	struct llm_budget b = {0};
	double usd = -1;
	int64_t tokens = -1;
	bool reset = false;
	int r;

	if ((r = need_llm(d, err)) < 0)
		return r;
	if (!json_is_object(params) || cfg_check_keys(params, "params", keys, err) < 0 ||
	    cfg_string(params, "params", "scope", 16, false, &scope, err) < 0 ||
	    cfg_string(params, "params", "id", 128, false, &id, err) < 0 ||
	    cfg_double(params, "params", "limit_usd", 0, 1000000, &usd, err) < 0 ||
	    cfg_int(params, "params", "limit_tokens", 0, 1000000000000LL, &tokens, err) < 0 ||
	    cfg_bool(params, "params", "reset", &reset, err) < 0)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s",
				err->msg[0] ? err->msg : "params: expected an object");
	if (!scope || !id)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.scope and params.id: required");
	if ((r = check_scope_id(d, scope, id, err)) < 0)
		return r;
	r = llm_ledger_get(store_db(d->store), scope, id, &b, err);
	if (r < 0 && r != -ENOENT)
		return r;
	if (usd >= 0 || tokens >= 0) {
		r = llm_ledger_set_limit(store_db(d->store), scope, id,
					 usd >= 0 ? (int64_t)(usd * 1e6 + 0.5) : b.limit_micro,
					 tokens >= 0 ? tokens : b.limit_tokens, err);
		if (r < 0)
			return r;
	}
	if (reset && (r = llm_ledger_reset_spend(store_db(d->store), scope, id, err)) < 0)
		return r;
	orch_log(ORCH_LOG_INFO, "llm", "budget changed", "scope", scope, "id", id, NULL);
	r = llm_ledger_get(store_db(d->store), scope, id, &b, err);
	if (r < 0)
		return r;
	return orch_rpc_reply(req, budget_json(scope, id, &b));
}
