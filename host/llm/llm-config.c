/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "llm-config.h"
#include "llm-key.h"

/* Seen from Claude Code 2.1 (claude-code, interleaved-thinking, context-management,
 * thinking-token-count, advanced-tool-use) and other ordinary features. Not here: MCP
 * (mcp-client, mcp-servers), files-api, web-search, code-execution, computer-use: they
 * reach beyond the request. */
const char *const llm_default_betas[] = {
	"claude-code-20250219",
	"interleaved-thinking-2025-05-14",
	"context-management-2025-06-27",
	"thinking-token-count-2026-05-13",
	"advanced-tool-use-2025-11-20",
	"fine-grained-tool-streaming-2025-05-14",
	"token-efficient-tools-2025-02-19",
	"prompt-caching-2024-07-31",
	"extended-cache-ttl-2025-04-11",
	"output-128k-2025-02-19",
	"context-1m-2025-08-07",
	"effort-2025-11-24",
	"token-counting-2024-11-01",
	"structured-outputs-2025-12-15",
	NULL,
};

static void betas_free(struct llm_config *c)
{
	for (size_t i = 0; i < c->n_betas; i++)
		free(c->betas[i]);
	c->n_betas = 0;
}

static int beta_add(struct llm_config *c, const char *b, struct orch_error *err)
{
	size_t n = b ? strlen(b) : 0;

	if (n == 0 || n > 64 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
		return orch_err(err, -EINVAL,
				"llm.anthropic_betas: entries are 1..64 of [a-z0-9-], e.g. "
				"interleaved-thinking-2025-05-14");
	if (c->n_betas >= LLM_MAX_BETAS)
		return orch_err(err, -E2BIG, "llm.anthropic_betas: at most %d", LLM_MAX_BETAS);
	if (!(c->betas[c->n_betas] = strdup(b)))
		return orch_err(err, -ENOMEM, "out of memory");
	c->n_betas++;
	return 0;
}

bool llm_config_beta_allowed(const struct llm_config *c, const char *beta)
{
	for (size_t i = 0; i < c->n_betas; i++)
		if (strcmp(c->betas[i], beta) == 0)
			return true;
	return false;
}

int llm_config_init(struct llm_config *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; llm_default_betas[i]; i++)
		if (beta_add(c, llm_default_betas[i], NULL) < 0) {
			betas_free(c);
			return -ENOMEM;
		}
	c->timeout_ms = 600000;
	c->connect_timeout_ms = 10000;
	c->drain_max_bytes = 8u * 1024 * 1024;
	c->max_response_bytes = 16u * 1024 * 1024;
	c->max_inflight = LLM_MAX_INFLIGHT;
	c->vm_inflight = LLM_DEFAULT_VM_INFLIGHT;
	c->agent_inflight = LLM_DEFAULT_AGENT_INFLIGHT;
	return llm_policy_init_default(&c->policy);
}

void llm_config_done(struct llm_config *c)
{
	llm_policy_done(&c->policy);
	betas_free(c);
	for (size_t i = 0; i < c->n_upstreams; i++) {
		free(c->upstreams[i].base_url);
		free(c->upstreams[i].key_file);
		free(c->upstreams[i].ca_file);
		llm_key_free(c->upstreams[i].key);
	}
	c->n_upstreams = 0;
	free(c->models);
	c->models = NULL;
	c->n_models = 0;
}

static int find_upstream(const struct llm_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_upstreams; i++)
		if (strcmp(c->upstreams[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

const struct llm_model *llm_config_model(const struct llm_config *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_models; i++)
		if (strcmp(c->models[i].name, name) == 0)
			return &c->models[i];
	return NULL;
}

static bool url_ok(const char *u)
{
	return u && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) &&
	       strlen(u) < 1024 && !strpbrk(u, " \t\r\n?#");
}

int llm_config_add_upstream(struct llm_config *c, const char *name, enum llm_api kind,
			    const char *base_url, const char *key_file, struct orch_error *err)
{
	struct llm_upstream *u;
	size_t n;

	if (!name || !*name || strlen(name) > 64)
		return orch_err(err, -EINVAL, "llm.upstreams: names are 1..64 characters");
	if (find_upstream(c, name) >= 0)
		return orch_err(err, -EEXIST, "llm.upstreams.%s: defined twice", name);
	if (c->n_upstreams >= LLM_MAX_UPSTREAMS)
		return orch_err(err, -E2BIG, "llm.upstreams: at most %d", LLM_MAX_UPSTREAMS);
	if (!base_url)
		base_url = kind == LLM_API_OPENAI   ? "https://api.openai.com"
			   : kind == LLM_API_GEMINI ? "https://generativelanguage.googleapis.com"
						    : "https://api.anthropic.com";
	if (!url_ok(base_url))
		return orch_err(err, -EINVAL, "llm.upstreams.%s.base_url: expected an http(s) URL",
				name);
	if (!key_file || key_file[0] != '/')
		return orch_err(err, -EINVAL,
				"llm.upstreams.%s.key_file: expected an absolute path", name);
	u = &c->upstreams[c->n_upstreams];
	memset(u, 0, sizeof(*u));
	strcpy(u->name, name);
	u->kind = kind;
	u->base_url = strdup(base_url);
	u->key_file = strdup(key_file);
	if (!u->base_url || !u->key_file) {
		free(u->base_url);
		free(u->key_file);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	n = strlen(u->base_url);
	while (n > 0 && u->base_url[n - 1] == '/')
		u->base_url[--n] = '\0';
	c->n_upstreams++;
	return 0;
}

int llm_config_add_model(struct llm_config *c, const char *name, const char *upstream,
			 double in_usd_per_mtok, double out_usd_per_mtok, struct orch_error *err)
{
	struct llm_model *nm, m = {0};
	int u;

	if (!llm_model_name_valid(name))
		return orch_err(err, -EINVAL, "llm.models: bad model name");
	if (llm_config_model(c, name))
		return orch_err(err, -EEXIST, "llm.models.%s: defined twice", name);
	if (c->n_models >= LLM_MAX_MODELS)
		return orch_err(err, -E2BIG, "llm.models: at most %d", LLM_MAX_MODELS);
	u = upstream ? find_upstream(c, upstream) : -ENOENT;
	if (u < 0)
		return orch_err(err, -EINVAL, "llm.models.%s.upstream: unknown upstream '%s'", name,
				upstream ? upstream : "");
	if (in_usd_per_mtok > 10000 || out_usd_per_mtok > 10000 ||
	    llm_usd_to_micro(in_usd_per_mtok, &m.price.in_micro_per_mtok) < 0 ||
	    llm_usd_to_micro(out_usd_per_mtok, &m.price.out_micro_per_mtok) < 0)
		return orch_err(err, -ERANGE, "llm.models.%s: prices must be 0..10000 USD per Mtok",
				name);
	strcpy(m.name, name);
	m.upstream = (size_t)u;
	nm = reallocarray(c->models, c->n_models + 1, sizeof(*nm));
	if (!nm)
		return orch_err(err, -ENOMEM, "out of memory");
	c->models = nm;
	c->models[c->n_models++] = m;
	return 0;
}

static int get_range(json_t *o, const char *key, const char *path, int64_t min, int64_t max,
		     int64_t *ret, struct orch_error *err)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return orch_err(err, -EINVAL, "%s.%s: expected an integer %lld..%lld", path, key,
				(long long)min, (long long)max);
	*ret = json_integer_value(v);
	return 1;
}

static int get_usd(json_t *o, const char *key, const char *path, double max, double *ret,
		   struct orch_error *err)
{
	json_t *v = json_object_get(o, key);

	if (!v)
		return 0;
	if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > max)
		return orch_err(err, -EINVAL, "%s.%s: expected a number 0..%g", path, key, max);
	*ret = json_number_value(v);
	return 1;
}

static int only_keys(json_t *o, const char *path, const char *const *keys, struct orch_error *err)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return orch_err(err, -EINVAL, "%s: expected an object", path);
	json_object_foreach(o, k, v)
	{
		bool ok = false;
		for (size_t i = 0; keys[i]; i++)
			ok = ok || strcmp(k, keys[i]) == 0;
		if (!ok)
			return orch_err(err, -EINVAL, "%s.%s: unknown key", path, k);
	}
	return 0;
}

static int parse_upstreams(json_t *ups, struct llm_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"kind", "base_url", "key_file", "ca_file", NULL};
	const char *name;
	json_t *u;
	int r;

	if (!json_is_object(ups))
		return orch_err(err, -EINVAL, "llm.upstreams: expected an object");
	json_object_foreach(ups, name, u)
	{
		char path[128];
		const char *kind, *ca;
		enum llm_api api;

		snprintf(path, sizeof(path), "llm.upstreams.%.64s", name);
		r = only_keys(u, path, keys, err);
		if (r < 0)
			return r;
		kind = json_string_value(json_object_get(u, "kind"));
		if (kind && strcmp(kind, "anthropic") == 0)
			api = LLM_API_ANTHROPIC;
		else if (kind && strcmp(kind, "openai") == 0)
			api = LLM_API_OPENAI;
		else if (kind && strcmp(kind, "gemini") == 0)
			api = LLM_API_GEMINI;
		else
			return orch_err(err, -EINVAL,
					"%s.kind: expected one of \"anthropic\", \"openai\", "
					"\"gemini\"",
					path);
		if (json_object_get(u, "base_url") &&
		    !json_is_string(json_object_get(u, "base_url")))
			return orch_err(err, -EINVAL, "%s.base_url: expected a string", path);
		r = llm_config_add_upstream(c, name, api,
					    json_string_value(json_object_get(u, "base_url")),
					    json_string_value(json_object_get(u, "key_file")), err);
		if (r < 0)
			return r;
		ca = json_string_value(json_object_get(u, "ca_file"));
		if (json_object_get(u, "ca_file") && (!ca || ca[0] != '/'))
			return orch_err(err, -EINVAL, "%s.ca_file: expected an absolute path",
					path);
		if (ca && !(c->upstreams[c->n_upstreams - 1].ca_file = strdup(ca)))
			return orch_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int parse_models(json_t *models, struct llm_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"upstream", "input_usd_per_mtok", "output_usd_per_mtok",
					   "context_window", NULL};
	const char *name;
	json_t *m;
	int r;

	if (!json_is_object(models))
		return orch_err(err, -EINVAL, "llm.models: expected an object");
	json_object_foreach(models, name, m)
	{
		char path[192];
		double in = -1, out = -1;

		snprintf(path, sizeof(path), "llm.models.%.128s", name);
		r = only_keys(m, path, keys, err);
		if (r >= 0)
			r = get_usd(m, "input_usd_per_mtok", path, 10000, &in, err);
		if (r >= 0)
			r = get_usd(m, "output_usd_per_mtok", path, 10000, &out, err);
		if (r < 0)
			return r;
		if (in < 0 || out < 0)
			return orch_err(
				err, -EINVAL,
				"%s: input_usd_per_mtok and output_usd_per_mtok are required",
				path);
		r = llm_config_add_model(c, name, json_string_value(json_object_get(m, "upstream")),
					 in, out, err);
		if (r < 0)
			return r;
		r = get_range(m, "context_window", path, 1, 100000000,
			      &c->models[c->n_models - 1].context_window, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_limits(json_t *rl, json_t *b, struct llm_config *c, struct orch_error *err)
{
	static const char *const rkeys[] = {"agent_rpm", "task_rpm", "agent_inflight",
					    "vm_inflight", NULL};
	static const char *const bkeys[] = {"agent_usd",   "task_usd",	"agent_tokens",
					    "task_tokens", "fleet_usd", "fleet_tokens",
					    NULL};
	int64_t v;
	double usd;
	int r;

	if (rl) {
		r = only_keys(rl, "llm.rate_limits", rkeys, err);
		if (r < 0)
			return r;
		if ((r = get_range(rl, "agent_rpm", "llm.rate_limits", 0, 100000, &v, err)) < 0)
			return r;
		if (r)
			c->agent_rpm = (uint32_t)v;
		if ((r = get_range(rl, "task_rpm", "llm.rate_limits", 0, 100000, &v, err)) < 0)
			return r;
		if (r)
			c->task_rpm = (uint32_t)v;
		if ((r = get_range(rl, "agent_inflight", "llm.rate_limits", 0, LLM_MAX_INFLIGHT, &v,
				   err)) < 0)
			return r;
		if (r)
			c->agent_inflight = (unsigned)v;
		if ((r = get_range(rl, "vm_inflight", "llm.rate_limits", 0, LLM_MAX_INFLIGHT, &v,
				   err)) < 0)
			return r;
		if (r)
			c->vm_inflight = (unsigned)v;
	}
	if (!b)
		return 0;
	r = only_keys(b, "llm.budgets", bkeys, err);
	if (r < 0)
		return r;
	if ((r = get_usd(b, "agent_usd", "llm.budgets", 1000000, &usd, err)) < 0)
		return r;
	if (r)
		llm_usd_to_micro(usd, &c->limits.agent_micro);
	if ((r = get_usd(b, "task_usd", "llm.budgets", 1000000, &usd, err)) < 0)
		return r;
	if (r)
		llm_usd_to_micro(usd, &c->limits.task_micro);
	if ((r = get_usd(b, "fleet_usd", "llm.budgets", 1000000, &usd, err)) < 0)
		return r;
	if (r)
		llm_usd_to_micro(usd, &c->limits.fleet_micro);
	if ((r = get_range(b, "agent_tokens", "llm.budgets", 0, 1000000000000LL,
			   &c->limits.agent_tokens, err)) < 0 ||
	    (r = get_range(b, "fleet_tokens", "llm.budgets", 0, 1000000000000LL,
			   &c->limits.fleet_tokens, err)) < 0)
		return r;
	return get_range(b, "task_tokens", "llm.budgets", 0, 1000000000000LL,
			 &c->limits.task_tokens, err);
}

int llm_config_parse(json_t *llm, struct llm_config *ret, struct orch_error *err)
{
	static const char *const keys[] = {"upstreams",		 "models",	"max_tokens_cap",
					   "max_request_bytes",	 "strip_tools", "timeout_ms",
					   "rate_limits",	 "budgets",	"anthropic_betas",
					   "allow_remote_input", NULL};
	struct llm_config c;
	json_t *strip, *betas, *remote;
	int64_t v;
	int r;

	r = llm_config_init(&c);
	if (r < 0)
		return orch_err(err, r, "out of memory");
	if (!llm)
		goto done;
	r = only_keys(llm, "llm", keys, err);
	if (r >= 0 && json_object_get(llm, "upstreams"))
		r = parse_upstreams(json_object_get(llm, "upstreams"), &c, err);
	if (r >= 0 && json_object_get(llm, "models"))
		r = parse_models(json_object_get(llm, "models"), &c, err);
	if (r >= 0 && (r = get_range(llm, "max_tokens_cap", "llm", 1, 1000000, &v, err)) > 0)
		c.policy.max_tokens_cap = v;
	if (r >= 0 && (r = get_range(llm, "max_request_bytes", "llm", 1024, 67108864, &v, err)) > 0)
		c.policy.max_request_bytes = (size_t)v;
	if (r >= 0 && (r = get_range(llm, "timeout_ms", "llm", 1000, 3600000, &v, err)) > 0)
		c.timeout_ms = v;
	if (r >= 0)
		r = parse_limits(json_object_get(llm, "rate_limits"),
				 json_object_get(llm, "budgets"), &c, err);
	remote = json_object_get(llm, "allow_remote_input");
	if (r >= 0 && remote && !json_is_boolean(remote))
		r = orch_err(err, -EINVAL, "llm.allow_remote_input: expected true or false");
	c.allow_remote_input = json_is_true(remote);
	betas = json_object_get(llm, "anthropic_betas");
	if (r >= 0 && betas) {
		size_t i;
		json_t *b;
		betas_free(&c);
		if (!json_is_array(betas))
			r = orch_err(err, -EINVAL,
				     "llm.anthropic_betas: expected an array of strings");
		json_array_foreach(betas, i, b) if (r >= 0) r =
			beta_add(&c, json_string_value(b), err);
	}
	strip = json_object_get(llm, "strip_tools");
	if (r >= 0 && strip) {
		size_t i;
		json_t *s;
		if (!json_is_array(strip)) {
			r = orch_err(err, -EINVAL, "llm.strip_tools: expected an array of strings");
		} else {
			llm_policy_done(&c.policy);
			json_array_foreach(strip, i, s)
			{
				if (!json_is_string(s)) {
					r = orch_err(err, -EINVAL,
						     "llm.strip_tools[%zu]: expected a string", i);
					break;
				}
				r = llm_policy_add_strip(&c.policy, json_string_value(s), err);
				if (r < 0)
					break;
			}
		}
	}
	if (r < 0) {
		llm_config_done(&c);
		return r;
	}
done:
	*ret = c;
	return 0;
}

int llm_config_load_keys(struct llm_config *c, struct orch_error *err)
{
	for (size_t i = 0; i < c->n_upstreams; i++) {
		struct llm_upstream *u = &c->upstreams[i];
		char *key = NULL;
		int r = llm_key_read(u->key_file, &key, err);
		if (r < 0)
			return orch_err_prefix(err, "llm.upstreams.%s", u->name);
		llm_key_free(u->key);
		u->key = key;
	}
	return 0;
}
