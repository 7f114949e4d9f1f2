/* SPDX-License-Identifier: Apache-2.0 */
/* orchd with the LLM proxy (see orchd-llm.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config-util.h"
#include "control.h"
#include "llm-config.h"
#include "llm-ledger.h"
#include "llm-proxy.h"
#include "llm-serve.h"
#include "log.h"
#include "orchd-llm.h"
#include "orchd.h"
#include "store-pg.h"

struct orchd_llm {
	struct llm_config cfg;
	struct llm_proxy *proxy;
};

int orchd_llm_new(struct orchd *d, struct orch_error *err)
{
	struct orchd_llm *l;
	int r;

	if (!d->cfg->llm_json || d->cfg->llm.n_upstreams == 0)
		return 0;
	l = calloc(1, sizeof(*l));
	if (!l)
		return orch_err(err, -ENOMEM, "out of memory");
	d->llm = l;
	/* llm_config_parse initialises l->cfg itself */
	if ((r = llm_config_parse(d->cfg->llm_json, &l->cfg, err)) < 0 ||
	    (r = llm_config_load_keys(&l->cfg, err)) < 0)
		return r;
	/* SQLite: the ledger's tables are made here; PostgreSQL's are in its migrations */
	if (store_db(d->store) && (r = llm_ledger_migrate(store_db(d->store), err)) < 0)
		return orch_err_prefix(err, "llm ledger");
	r = store_llm_settle_stale(d->store, err);
	if (r < 0)
		return orch_err_prefix(err, "llm ledger");
	if (r > 0)
		orch_logf(ORCH_LOG_WARN, "llm", "%d reservation(s) left by a previous run charged",
			  r);
	r = llm_proxy_new(d->loop, store_db(d->store), &l->cfg, &l->proxy, err);
	if (r < 0)
		return r;
	llm_proxy_use_store(l->proxy, d->store);
	orch_logf(ORCH_LOG_INFO, "llm", "LLM proxy ready: %zu upstream(s), %zu model(s)",
		  l->cfg.n_upstreams, l->cfg.n_models);
	return 0;
}

void orchd_llm_free(struct orchd *d)
{
	struct orchd_llm *l = d->llm;

	if (!l)
		return;
	/* Every serve goes before the proxy: its calls hold exchanges. */
	for (size_t i = 0; i < d->n_vms; i++) {
		vm_drop_llm_channel(d->vms[i]);
		vm_llm_main_detach(d->vms[i]);
	}
	if (l->proxy)
		llm_proxy_free(l->proxy);
	llm_config_done(&l->cfg);
	free(l);
	d->llm = NULL;
}

bool orchd_llm_enabled(const struct orchd *d)
{
	return d->llm && d->llm->proxy;
}

/* slot -> the id of the task running in it (the budget scope "task"). */
static int resolve_slot(void *data, int64_t slot, const char **ret_task)
{
	struct vm *vm = data;

	if (slot < 0 || slot >= vm->n_slots)
		return -ENOENT;
	if (!vm->slots[slot].task) {
		*ret_task = NULL;
		return 0;
	}
	snprintf(vm->slots[slot].task_str, sizeof(vm->slots[slot].task_str), "%lld",
		 (long long)vm->slots[slot].task);
	*ret_task = vm->slots[slot].task_str;
	return 0;
}

/* The LLM channel's data is its VM (as the main channel's): its serve is vm->llm_serve,
 * NULL once the channel is dropped. */
static int chan_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			   void *data, struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_serve)
		return orch_err(err, ORCH_RPC_CLOSED, "the LLM channel is closing");
	return llm_serve_request(vm->llm_serve, req, params, err);
}

static int chan_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			  void *data, struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_serve)
		return 0;
	return llm_serve_cancel(vm->llm_serve, params, err);
}

static const struct orch_rpc_method llm_methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, 0, chan_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, 0, chan_on_cancel},
};

static void on_chan_drain(struct orch_rpc *rpc, void *data)
{
	struct vm *vm = data;

	if (vm->llm_serve)
		llm_serve_drained(vm->llm_serve);
}

/* The guest closed its LLM channel (or it failed): its calls are detached (drained and
 * billed) and freed with the serve, and the channel is released; the guest may connect
 * again (vm_attach_llm_channel). This runs inside the rpc's close, which holds a reference
 * of its own: dropping orchd's here is safe. */
static void on_chan_close(struct orch_rpc *rpc, int code, void *data)
{
	struct vm *vm = data;
	unsigned calls = vm->llm_serve ? llm_serve_inflight(vm->llm_serve) : 0;
	char n[16];

	if (vm->llm_rpc != rpc)
		return;
	snprintf(n, sizeof(n), "%u", calls);
	orch_log(ORCH_LOG_INFO, "llm", "LLM channel closed", "vm", vm->cfg->name, "calls_detached",
		 n, "error", code < 0 ? strerror(-code) : "none", NULL);
	vm_drop_llm_channel(vm);
}

static void on_main_drain(struct orch_rpc *rpc, void *data)
{
	struct vm *vm = data;

	if (vm->llm_main)
		llm_serve_drained(vm->llm_main);
}

int vm_llm_main_attach(struct vm *vm, struct orch_error *err)
{
	int r;

	vm_llm_main_detach(vm);
	if (!orchd_llm_enabled(vm->d) || !vm->rpc)
		return 0;
	r = llm_serve_new(vm->d->llm->proxy, vm->rpc, vm->cfg->name, resolve_slot, vm,
			  &vm->llm_main);
	if (r < 0)
		return orch_errno(err, r, "vm %s: LLM requests", vm->cfg->name);
	/* llm_serve_new took the drain callback expecting the serve as the rpc's data; the
	 * main channel's data is the VM, so drain through it. */
	orch_rpc_set_drain_cb(vm->rpc, on_main_drain);
	return 0;
}

void vm_llm_main_detach(struct vm *vm)
{
	if (!vm->llm_main)
		return;
	llm_serve_free(vm->llm_main);
	vm->llm_main = NULL;
}

int vm_llm_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_main)
		return orch_err(err, ORCH_RPC_NOT_FOUND,
				"the LLM proxy is not configured (no llm.upstreams in orchd's "
				"config)");
	return llm_serve_request(vm->llm_main, req, params, err);
}

int vm_llm_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_main)
		return 0;
	return llm_serve_cancel(vm->llm_main, params, err);
}

void vm_drop_llm_channel(struct vm *vm)
{
	struct orch_rpc *rpc = vm->llm_rpc;

	if (!rpc)
		return;
	vm->llm_rpc = NULL;
	llm_serve_free(vm->llm_serve);
	vm->llm_serve = NULL;
	orch_rpc_set_close_cb(rpc, NULL);
	orch_rpc_close(rpc);
	orch_rpc_unref(rpc);
}

int vm_attach_llm_channel(struct vm *vm, int fd, struct orch_error *err)
{
	struct orch_rpc_opts opts = {
		/* an llm.request carries a body of up to ORCH_MAX_LLM_BODY, base64-encoded */
		.max_line = ORCH_PROTOCOL_MAX_LINE,
		.max_queued = 2 * ORCH_PROTOCOL_MAX_LINE,
		.max_inflight = LLM_SERVE_MAX_INFLIGHT,
		.name = vm->cfg->name,
	};
	struct orchd *d = vm->d;
	int r;

	vm_drop_llm_channel(vm);
	if (!orchd_llm_enabled(d)) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP, "no LLM upstreams are configured");
	}
	r = orch_rpc_new(d->loop, fd, llm_methods, ELEMENTSOF(llm_methods), &opts, vm,
			 &vm->llm_rpc);
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "vm %s: LLM channel", vm->cfg->name);
	}
	orch_rpc_set_state(vm->llm_rpc, ORCH_STATE_READY);
	r = llm_serve_new(d->llm->proxy, vm->llm_rpc, vm->cfg->name, resolve_slot, vm,
			  &vm->llm_serve);
	if (r < 0) {
		orch_rpc_unref(vm->llm_rpc);
		vm->llm_rpc = NULL;
		return orch_errno(err, r, "vm %s: LLM channel", vm->cfg->name);
	}
	/* llm_serve_new took the drain callback expecting the serve as the rpc's data; this
	 * channel's data is the VM, so drain through it. */
	orch_rpc_set_drain_cb(vm->llm_rpc, on_chan_drain);
	orch_rpc_set_close_cb(vm->llm_rpc, on_chan_close);
	return 0;
}

void orchd_llm_task_done(struct orchd *d, int64_t task)
{
	struct orch_error err = {0};
	struct llm_budget b;
	char id[24];

	if (!orchd_llm_enabled(d))
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	if (store_llm_get(d->store, "task", id, &b, &err) < 0)
		return; /* never called the LLM */
	if (store_task_set_spend(d->store, task, (double)b.spent_micro / 1e6, b.spent_tokens,
				 &err) < 0)
		orch_log(ORCH_LOG_WARN, "llm", "cannot record the task's spend", "task", id,
			 "error", err.msg, NULL);
}

void orchd_llm_task_json(struct orchd *d, int64_t task, json_t *obj)
{
	struct llm_budget b;
	char id[24];

	if (!orchd_llm_enabled(d) || !obj)
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	if (store_llm_get(d->store, "task", id, &b, NULL) < 0)
		return; /* never called the LLM: the row's figure (0) stands */
	json_object_set_new(obj, "spend_usd", json_real((double)b.spent_micro / 1e6));
	json_object_set_new(obj, "spend_tokens", json_integer(b.spent_tokens));
	json_object_set_new(obj, "reserved_usd", json_real((double)b.reserved_micro / 1e6));
}

void orchd_llm_task_pruned(struct orchd *d, int64_t task)
{
	char id[24];

	if (!orchd_llm_enabled(d))
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	(void)store_llm_drop(d->store, "task", id, NULL);
}

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
	int64_t slots;
	struct vm *v;
	long long n;

	if (strcmp(scope, "fleet") == 0) {
		if (strcmp(id, LLM_FLEET_ID) != 0)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"params.id: the fleet budget's id is \"" LLM_FLEET_ID "\"");
		return 0;
	}
	if (strcmp(scope, "task") == 0) {
		n = strtoll(id, &end, 10);
		if (!*id || *end || n <= 0)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"params.id: expected a task id");
		return 0;
	}
	if (strcmp(scope, "agent") != 0)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.scope: expected \"agent\", \"task\" or \"fleet\"");
	slash = strchr(id, '/');
	if (!slash || (size_t)(slash - id) > ORCHD_NAME_MAX)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.id: expected <vm>/<slot>, e.g. dev/0");
	memcpy(vm, id, (size_t)(slash - id));
	vm[slash - id] = 0;
	v = orchd_find_vm(d, vm);
	slots = v ? v->n_slots : 0;
	/* in a cluster the slot may be another node's (budgets are shared) */
	if (!v && store_shared(d->store) && store_vm_find(d->store, vm, NULL, &slots, NULL) < 0)
		slots = 0;
	n = strtoll(slash + 1, &end, 10);
	if (!slots || !slash[1] || *end || n < 0 || n >= slots)
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
	if (scope && strcmp(scope, "agent") && strcmp(scope, "task") && strcmp(scope, "fleet"))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.scope: expected \"agent\", \"task\" or \"fleet\"");
	c.list = json_array();
	c.id = id;
	r = store_llm_foreach(d->store, scope, show_one, &c, err);
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
	r = store_llm_get(d->store, scope, id, &b, err);
	if (r < 0 && r != -ENOENT)
		return r;
	if (usd >= 0 || tokens >= 0) {
		r = store_llm_set_limit(d->store, scope, id,
					usd >= 0 ? (int64_t)(usd * 1e6 + 0.5) : b.limit_micro,
					tokens >= 0 ? tokens : b.limit_tokens, err);
		if (r < 0)
			return r;
	}
	if (reset && (r = store_llm_reset_spend(d->store, scope, id, err)) < 0)
		return r;
	orch_log(ORCH_LOG_INFO, "llm", "budget changed", "scope", scope, "id", id, NULL);
	r = store_llm_get(d->store, scope, id, &b, err);
	if (r < 0)
		return r;
	return orch_rpc_reply(req, budget_json(scope, id, &b));
}
