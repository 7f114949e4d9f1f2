/* SPDX-License-Identifier: Apache-2.0 */
/* Request policy applied before anything is forwarded upstream: the body must be a JSON
 * object of the route's shape (validated strictly enough to know the model, the output
 * bound and whether it streams), max_tokens is capped (and set when the client left it
 * open), server-side tools whose type matches a configured prefix are removed, and for
 * OpenAI streams usage is requested (stream_options.include_usage). Pure: no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "llm-types.h"

#define LLM_MODEL_MAX 128
#define LLM_MAX_STRIP 64

struct llm_policy {
	int64_t max_tokens_cap;	  /* >= 1 */
	size_t max_request_bytes; /* bodies above this are refused (-EMSGSIZE) */
	size_t n_strip;
	char *strip_tools[LLM_MAX_STRIP]; /* tool type prefixes, owned */
};

/* Defaults: cap 32000, 4 MiB, strip web_search, web_fetch, code_execution. Whatever the
 * configuration, the MCP connector (Anthropic mcp_servers, mcp* tool types) is always
 * removed: it has the upstream call remote servers with the agent's data. */
int llm_policy_init_default(struct llm_policy *p);
int llm_policy_add_strip(struct llm_policy *p, const char *prefix, struct orch_error *err);
void llm_policy_done(struct llm_policy *p);

/* True when a tool type matches a strip prefix ("web_search" matches "web_search" and
 * "web_search_20250305", not "web_searcher"). */
bool llm_policy_strips(const struct llm_policy *p, const char *type);

struct llm_request_info {
	enum llm_route route;
	enum llm_api api;
	char model[LLM_MODEL_MAX + 1]; /* "" for /v1/models */
	bool stream;
	/* The request pulls in input its body does not hold (a stored response, prompt or
	 * conversation, an uploaded or remote file, a cached context, a URL to fetch): the
	 * body's size is then no bound of the input. remote_what names the first found. */
	bool remote_input;
	const char *remote_what;
	int64_t max_tokens;	/* output bound after capping (0: route produces none) */
	int64_t input_estimate; /* upper bound of input tokens: bytes of the forwarded body */
	unsigned stripped;	/* server-side tools removed */
};

/* The model named in a Gemini route's path ("/v1beta/models/MODEL:ACTION"), copied into
 * ret (LLM_MODEL_MAX + 1 bytes). -EINVAL when path is not such a route. */
int llm_route_path_model(const char *path, char *ret);

/* Validates and rewrites one request body. On success *ret_body (malloc'ed, may be NULL
 * for bodiless routes) and *ret_len are what to forward. Errors: -EMSGSIZE (too large),
 * -EINVAL (malformed: err names the field), -ENOMEM. */
int llm_policy_apply(const struct llm_policy *p, enum llm_route route, const void *body, size_t len,
		     char **ret_body, size_t *ret_len, struct llm_request_info *ret,
		     struct orch_error *err);
/* The same for any route; path (the request's, without the query string) is needed by the
 * Gemini routes, whose model it names. */
int llm_policy_apply_path(const struct llm_policy *p, enum llm_route route, const char *path,
			  const void *body, size_t len, char **ret_body, size_t *ret_len,
			  struct llm_request_info *ret, struct orch_error *err);

/* [A-Za-z0-9._:/@-]{1,LLM_MODEL_MAX} */
bool llm_model_name_valid(const char *s);
