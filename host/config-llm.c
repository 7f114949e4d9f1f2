/* SPDX-License-Identifier: Apache-2.0 */
/* The "llm" section of orchd's configuration (used by the LLM proxy). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config-util.h"
#include "config.h"

int orchd_config_llm_parse(json_t *llm, struct orchd_llm_config *ret, struct orch_error *err);
void orchd_config_llm_done(struct orchd_llm_config *l);
void orchd_config_llm_defaults(struct orchd_llm_config *l);

/* The LLM proxy's own defaults (host/llm/llm-policy.c): the server-side tools. */
static const char *const default_strip[] = {"web_search", "web_fetch", "code_execution"};

void orchd_config_llm_defaults(struct orchd_llm_config *l)
{
	l->max_tokens_cap = 32000;
	l->max_request_bytes = 4194304;
	l->timeout_ms = 600000;
	l->agent_inflight = 16;
	l->vm_inflight = 64;
	l->strip_tools = calloc(ELEMENTSOF(default_strip) + 1, sizeof(char *));
	if (!l->strip_tools)
		return;
	for (size_t i = 0; i < ELEMENTSOF(default_strip); i++) {
		l->strip_tools[i] = strdup(default_strip[i]);
		if (!l->strip_tools[i])
			break;
		l->n_strip_tools = i + 1;
	}
}

void orchd_config_llm_done(struct orchd_llm_config *l)
{
	for (size_t i = 0; i < l->n_upstreams; i++) {
		free(l->upstreams[i].name);
		free(l->upstreams[i].base_url);
		free(l->upstreams[i].key_file);
		free(l->upstreams[i].ca_file);
	}
	free(l->upstreams);
	for (size_t i = 0; i < l->n_models; i++) {
		free(l->models[i].name);
		free(l->models[i].upstream);
	}
	free(l->models);
	cfg_strv_free(l->strip_tools);
	cfg_strv_free(l->anthropic_betas);
}

static bool url_ok(const char *s)
{
	return (strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]);
}

static int parse_upstream(const char *name, json_t *o, struct orchd_llm_upstream *u,
			  struct orch_error *err)
{
	static const char *const keys[] = {"kind", "base_url", "key_file", "ca_file", NULL};
	static const char *const kinds[] = {"anthropic", "openai", "gemini", NULL};
	char p[96];
	int r, k = -1;

	snprintf(p, sizeof(p), "llm.upstreams.%s", name);
	u->name = strdup(name);
	if (!u->name)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	if (!json_object_get(o, "kind"))
		return orch_err(err, -EINVAL,
				"%s.kind: required (\"anthropic\", \"openai\" or \"gemini\")", p);
	if ((r = cfg_enum(o, p, "kind", kinds, &k, err)) < 0)
		return r;
	u->kind = (enum orchd_llm_kind)k;
	if ((r = cfg_string(o, p, "base_url", 2048, false, &u->base_url, err)) < 0)
		return r;
	if (u->base_url && !url_ok(u->base_url))
		return orch_err(err, -EINVAL, "%s.base_url: expected an http:// or https:// URL",
				p);
	if (!u->base_url)
		u->base_url = strdup(u->kind == ORCHD_LLM_ANTHROPIC ? "https://api.anthropic.com"
				     : u->kind == ORCHD_LLM_OPENAI
					     ? "https://api.openai.com"
					     : "https://generativelanguage.googleapis.com");
	if (!json_object_get(o, "key_file"))
		return orch_err(err, -EINVAL, "%s.key_file: required (an absolute path)", p);
	if ((r = cfg_path(o, p, "key_file", false, &u->key_file, err)) < 0 ||
	    (r = cfg_path(o, p, "ca_file", true, &u->ca_file, err)) < 0)
		return r;
	if (!u->base_url)
		return orch_err(err, -ENOMEM, "out of memory");
	return 0;
}

static int parse_model(const char *name, json_t *o, struct orchd_llm_model *m,
		       struct orch_error *err)
{
	static const char *const keys[] = {"upstream", "input_usd_per_mtok", "output_usd_per_mtok",
					   "context_window", NULL};
	static const char *const required[] = {"upstream", "input_usd_per_mtok",
					       "output_usd_per_mtok", NULL};
	char p[160];
	int r;

	snprintf(p, sizeof(p), "llm.models.%.128s", name);
	m->name = strdup(name);
	if (!m->name)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	for (size_t i = 0; required[i]; i++)
		if (!json_object_get(o, required[i]))
			return orch_err(err, -EINVAL, "%s.%s: required", p, required[i]);
	if ((r = cfg_string(o, p, "upstream", ORCHD_NAME_MAX, false, &m->upstream, err)) < 0 ||
	    (r = cfg_double(o, p, "input_usd_per_mtok", 0, 10000, &m->input_usd_per_mtok, err)) <
		    0 ||
	    (r = cfg_double(o, p, "output_usd_per_mtok", 0, 10000, &m->output_usd_per_mtok, err)) <
		    0 ||
	    (r = cfg_int(o, p, "context_window", 1, 100000000, &m->context_window, err)) < 0)
		return r;
	return 0;
}

static int parse_rate_budgets(json_t *llm, struct orchd_llm_config *l, struct orch_error *err)
{
	static const char *const rkeys[] = {"agent_rpm", "task_rpm", "agent_inflight",
					    "vm_inflight", NULL};
	static const char *const bkeys[] = {"agent_usd",   "task_usd",	"agent_tokens",
					    "task_tokens", "fleet_usd", "fleet_tokens",
					    NULL};
	json_t *rl = json_object_get(llm, "rate_limits"), *b = json_object_get(llm, "budgets");
	const char *rp = "llm.rate_limits", *bp = "llm.budgets";
	int r;

	if (rl) {
		if ((r = cfg_object(rl, rp, err)) < 0 ||
		    (r = cfg_check_keys(rl, rp, rkeys, err)) < 0 ||
		    (r = cfg_int(rl, rp, "agent_rpm", 0, 100000, &l->agent_rpm, err)) < 0 ||
		    (r = cfg_int(rl, rp, "task_rpm", 0, 100000, &l->task_rpm, err)) < 0 ||
		    (r = cfg_int(rl, rp, "agent_inflight", 0, 256, &l->agent_inflight, err)) < 0 ||
		    (r = cfg_int(rl, rp, "vm_inflight", 0, 256, &l->vm_inflight, err)) < 0)
			return r;
	}
	if (b) {
		if ((r = cfg_object(b, bp, err)) < 0 ||
		    (r = cfg_check_keys(b, bp, bkeys, err)) < 0 ||
		    (r = cfg_double(b, bp, "agent_usd", 0, 1000000, &l->agent_usd, err)) < 0 ||
		    (r = cfg_double(b, bp, "task_usd", 0, 1000000, &l->task_usd, err)) < 0 ||
		    (r = cfg_int(b, bp, "agent_tokens", 0, 1000000000000LL, &l->agent_tokens,
				 err)) < 0 ||
		    (r = cfg_int(b, bp, "task_tokens", 0, 1000000000000LL, &l->task_tokens, err)) <
			    0 ||
		    (r = cfg_double(b, bp, "fleet_usd", 0, 1000000, &l->fleet_usd, err)) < 0 ||
		    (r = cfg_int(b, bp, "fleet_tokens", 0, 1000000000000LL, &l->fleet_tokens,
				 err)) < 0)
			return r;
	}
	return 0;
}

int orchd_config_llm_parse(json_t *llm, struct orchd_llm_config *l, struct orch_error *err)
{
	static const char *const keys[] = {"upstreams",		 "models",	"max_tokens_cap",
					   "max_request_bytes",	 "strip_tools", "timeout_ms",
					   "rate_limits",	 "budgets",	"anthropic_betas",
					   "allow_remote_input", NULL};
	const char *p = "llm", *name;
	json_t *o, *v;
	int r;

	if ((r = cfg_object(llm, p, err)) < 0 || (r = cfg_check_keys(llm, p, keys, err)) < 0)
		return r;
	if ((r = cfg_int(llm, p, "max_tokens_cap", 1, 1000000, &l->max_tokens_cap, err)) < 0 ||
	    (r = cfg_int(llm, p, "max_request_bytes", 1024, 67108864, &l->max_request_bytes, err)) <
		    0 ||
	    (r = cfg_int(llm, p, "timeout_ms", 1000, 3600000, &l->timeout_ms, err)) < 0 ||
	    (r = cfg_strv(llm, p, "strip_tools", 256, 128, &l->strip_tools, &l->n_strip_tools,
			  err)) < 0 ||
	    (r = cfg_strv(llm, p, "anthropic_betas", 64, 64, &l->anthropic_betas, &l->n_betas,
			  err)) < 0 ||
	    (r = cfg_bool(llm, p, "allow_remote_input", &l->allow_remote_input, err)) < 0 ||
	    (r = parse_rate_budgets(llm, l, err)) < 0)
		return r;

	o = json_object_get(llm, "upstreams");
	if (o) {
		if (!json_is_object(o) || json_object_size(o) > 64)
			return orch_err(err, -EINVAL,
					"llm.upstreams: expected an object of at most 64 entries");
		l->upstreams = calloc(json_object_size(o) + 1, sizeof(*l->upstreams));
		if (!l->upstreams)
			return orch_err(err, -ENOMEM, "out of memory");
		json_object_foreach(o, name, v)
		{
			if (!orchd_name_valid(name))
				return orch_err(err, -EINVAL,
						"llm.upstreams.%.64s: names must match "
						"[A-Za-z0-9_-]{1,32}",
						name);
			r = parse_upstream(name, v, &l->upstreams[l->n_upstreams++], err);
			if (r < 0)
				return r;
		}
	}
	o = json_object_get(llm, "models");
	if (o) {
		if (!json_is_object(o) || json_object_size(o) > 1024)
			return orch_err(err, -EINVAL,
					"llm.models: expected an object of at most 1024 entries");
		l->models = calloc(json_object_size(o) + 1, sizeof(*l->models));
		if (!l->models)
			return orch_err(err, -ENOMEM, "out of memory");
		json_object_foreach(o, name, v)
		{
			if (!*name || strlen(name) > 128 || strpbrk(name, "\n\r\t "))
				return orch_err(err, -EINVAL,
						"llm.models.%.64s: model names are 1..128 bytes "
						"without whitespace",
						name);
			r = parse_model(name, v, &l->models[l->n_models++], err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
