/* SPDX-License-Identifier: Apache-2.0 */
/* The "llm" section of orchd's configuration (docs/CONFIG.md, docs/LLM.md), parsed once
 * into the LLM proxy's own configuration (host/llm/llm-config.h): `orchd --check-config`,
 * orch doctor and the proxy see the same rules. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config-util.h"
#include "config.h"
#include "llm-config.h"
#include "llm-price.h"
#include "strv.h"

static int parse_upstream(const char *name, json_t *o, struct llm_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"kind", "base_url", "key_file", "ca_file", NULL};
	static const char *const kinds[] = {"anthropic", "openai", "gemini", NULL};
	static const enum llm_api apis[] = {LLM_API_ANTHROPIC, LLM_API_OPENAI, LLM_API_GEMINI};
	_cleanup_free_ char *base_url = NULL, *key_file = NULL, *ca_file = NULL;
	char p[96];
	int r, k = -1;

	if (!orchd_name_valid(name))
		return orch_err(err, -EINVAL,
				"llm.upstreams.%.64s: names must match [A-Za-z0-9_-]{1,32}", name);
	snprintf(p, sizeof(p), "llm.upstreams.%s", name);
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	if (!json_object_get(o, "kind"))
		return orch_err(err, -EINVAL,
				"%s.kind: required (\"anthropic\", \"openai\" or \"gemini\")", p);
	if (!json_object_get(o, "key_file"))
		return orch_err(err, -EINVAL, "%s.key_file: required (an absolute path)", p);
	if ((r = cfg_enum(o, p, "kind", kinds, &k, err)) < 0 ||
	    (r = cfg_string(o, p, "base_url", 2048, false, &base_url, err)) < 0 ||
	    (r = cfg_path(o, p, "key_file", false, &key_file, err)) < 0 ||
	    (r = cfg_path(o, p, "ca_file", true, &ca_file, err)) < 0)
		return r;
	if ((r = llm_config_add_upstream(c, name, apis[k], base_url, key_file, err)) < 0)
		return r;
	c->upstreams[c->n_upstreams - 1].ca_file = TAKE_PTR(ca_file);
	return 0;
}

static int parse_model(const char *name, json_t *o, struct llm_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"upstream", "input_usd_per_mtok", "output_usd_per_mtok",
					   "context_window", NULL};
	static const char *const required[] = {"upstream", "input_usd_per_mtok",
					       "output_usd_per_mtok", NULL};
	_cleanup_free_ char *upstream = NULL;
	double in = 0, out = 0;
	int64_t window = 0;
	bool found = false;
	char p[160];
	int r;

	if (!llm_model_name_valid(name))
		return orch_err(err, -EINVAL,
				"llm.models.%.64s: model names are 1..%d bytes of letters, digits "
				"and ._:/@-",
				name, LLM_MODEL_MAX);
	snprintf(p, sizeof(p), "llm.models.%s", name);
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	for (size_t i = 0; required[i]; i++)
		if (!json_object_get(o, required[i]))
			return orch_err(err, -EINVAL, "%s.%s: required", p, required[i]);
	if ((r = cfg_string(o, p, "upstream", ORCHD_NAME_MAX, false, &upstream, err)) < 0 ||
	    (r = cfg_double(o, p, "input_usd_per_mtok", 0, 10000, &in, err)) < 0 ||
	    (r = cfg_double(o, p, "output_usd_per_mtok", 0, 10000, &out, err)) < 0 ||
	    (r = cfg_int(o, p, "context_window", 1, 100000000, &window, err)) < 0)
		return r;
	for (size_t i = 0; i < c->n_upstreams; i++)
		found = found || strcmp(c->upstreams[i].name, upstream) == 0;
	if (!found)
		return orch_err(err, -EINVAL, "%s.upstream: no upstream named \"%s\"", p, upstream);
	if ((r = llm_config_add_model(c, name, upstream, in, out, err)) < 0)
		return r;
	c->models[c->n_models - 1].context_window = window;
	return 0;
}

/* Each entry of an object section through parse (at most max entries). */
static int parse_each(json_t *llm, const char *key, size_t max,
		      int (*parse)(const char *, json_t *, struct llm_config *,
				   struct orch_error *),
		      struct llm_config *c, struct orch_error *err)
{
	json_t *o = json_object_get(llm, key), *v;
	const char *name;
	int r;

	if (!o)
		return 0;
	if (!json_is_object(o) || json_object_size(o) > max)
		return orch_err(err, -EINVAL, "llm.%s: expected an object of at most %zu entries",
				key, max);
	json_object_foreach(o, name, v) if ((r = parse(name, v, c, err)) < 0) return r;
	return 0;
}

static int parse_rates(json_t *llm, struct llm_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"agent_rpm", "task_rpm", "agent_inflight", "vm_inflight",
					   NULL};
	json_t *o = json_object_get(llm, "rate_limits");
	const char *p = "llm.rate_limits";
	int64_t agent_rpm = c->agent_rpm, task_rpm = c->task_rpm;
	int64_t agent_in = c->agent_inflight, vm_in = c->vm_inflight;
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0 ||
	    (r = cfg_int(o, p, "agent_rpm", 0, 100000, &agent_rpm, err)) < 0 ||
	    (r = cfg_int(o, p, "task_rpm", 0, 100000, &task_rpm, err)) < 0 ||
	    (r = cfg_int(o, p, "agent_inflight", 0, LLM_MAX_INFLIGHT, &agent_in, err)) < 0 ||
	    (r = cfg_int(o, p, "vm_inflight", 0, LLM_MAX_INFLIGHT, &vm_in, err)) < 0)
		return r;
	c->agent_rpm = (uint32_t)agent_rpm;
	c->task_rpm = (uint32_t)task_rpm;
	c->agent_inflight = (unsigned)agent_in;
	c->vm_inflight = (unsigned)vm_in;
	return 0;
}

static int parse_budgets(json_t *llm, struct llm_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"agent_usd", "task_usd", "agent_tokens", "task_tokens",
					   NULL};
	json_t *o = json_object_get(llm, "budgets");
	const char *p = "llm.budgets";
	double agent_usd = 0, task_usd = 0;
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0 ||
	    (r = cfg_double(o, p, "agent_usd", 0, 1000000, &agent_usd, err)) < 0 ||
	    (r = cfg_double(o, p, "task_usd", 0, 1000000, &task_usd, err)) < 0 ||
	    (r = cfg_int(o, p, "agent_tokens", 0, 1000000000000LL, &c->limits.agent_tokens, err)) <
		    0 ||
	    (r = cfg_int(o, p, "task_tokens", 0, 1000000000000LL, &c->limits.task_tokens, err)) < 0)
		return r;
	if (llm_usd_to_micro(agent_usd, &c->limits.agent_micro) < 0 ||
	    llm_usd_to_micro(task_usd, &c->limits.task_micro) < 0)
		return orch_err(err, -ERANGE, "%s: out of range", p);
	return 0;
}

static int parse_lists(json_t *llm, struct llm_config *c, struct orch_error *err)
{
	_cleanup_(orch_strv_freep) char **betas = NULL, **strip = NULL;
	size_t n_betas = 0, n_strip = 0;
	int r;

	if ((r = cfg_strv(llm, "llm", "anthropic_betas", LLM_MAX_BETAS, 64, &betas, &n_betas,
			  err)) < 0 ||
	    (r = cfg_strv(llm, "llm", "strip_tools", LLM_MAX_STRIP, 128, &strip, &n_strip, err)) <
		    0)
		return r;
	if (betas && (r = llm_config_set_betas(c, (const char *const *)betas, err)) < 0)
		return r;
	if (strip) {
		llm_policy_done(&c->policy);
		for (size_t i = 0; i < n_strip; i++)
			if ((r = llm_policy_add_strip(&c->policy, strip[i], err)) < 0)
				return r;
	}
	return 0;
}

int orchd_config_llm_parse(json_t *llm, struct llm_config *ret, struct orch_error *err)
{
	static const char *const keys[] = {"upstreams",		 "models",	"max_tokens_cap",
					   "max_request_bytes",	 "strip_tools", "timeout_ms",
					   "rate_limits",	 "budgets",	"anthropic_betas",
					   "allow_remote_input", NULL};
	const char *p = "llm";
	struct llm_config c;
	int64_t cap, bytes;
	int r;

	if (llm_config_init(&c) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	cap = c.policy.max_tokens_cap;
	bytes = (int64_t)c.policy.max_request_bytes;
	if (llm &&
	    ((r = cfg_object(llm, p, err)) < 0 || (r = cfg_check_keys(llm, p, keys, err)) < 0 ||
	     (r = parse_each(llm, "upstreams", LLM_MAX_UPSTREAMS, parse_upstream, &c, err)) < 0 ||
	     (r = parse_each(llm, "models", LLM_MAX_MODELS, parse_model, &c, err)) < 0 ||
	     (r = cfg_int(llm, p, "max_tokens_cap", 1, 1000000, &cap, err)) < 0 ||
	     (r = cfg_int(llm, p, "max_request_bytes", 1024, 67108864, &bytes, err)) < 0 ||
	     (r = cfg_int(llm, p, "timeout_ms", 1000, 3600000, &c.timeout_ms, err)) < 0 ||
	     (r = cfg_bool(llm, p, "allow_remote_input", &c.allow_remote_input, err)) < 0 ||
	     (r = parse_rates(llm, &c, err)) < 0 || (r = parse_budgets(llm, &c, err)) < 0 ||
	     (r = parse_lists(llm, &c, err)) < 0)) {
		llm_config_done(&c);
		return r;
	}
	c.policy.max_tokens_cap = cap;
	c.policy.max_request_bytes = (size_t)bytes;
	*ret = c;
	return 0;
}
