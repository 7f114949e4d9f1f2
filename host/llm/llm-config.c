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

int llm_config_set_betas(struct llm_config *c, const char *const *betas, struct orch_error *err)
{
	betas_free(c);
	for (size_t i = 0; betas && betas[i]; i++) {
		int r = beta_add(c, betas[i], err);
		if (r < 0)
			return r;
	}
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
