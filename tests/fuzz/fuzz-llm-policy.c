/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: an agent's request body through the request policy of host/llm/ for every
 * route (Anthropic messages and count_tokens, OpenAI chat completions and responses), with a fixed
 * configuration: two upstreams, a model allowlist, max_tokens_cap 1000, a 3000-byte size
 * cap and strip_tools = the defaults plus "mcp" and "bash". Then, as the proxy does, the
 * model is looked up in the allowlist. Invariants (violations trap):
 *   - a body over the size cap is refused with -EMSGSIZE; refusals carry a message;
 *   - an accepted body is a JSON object whose tools contain no stripped type, without
 *     Anthropic mcp_servers or OpenAI web_search_options, whose max_tokens (OpenAI: and
 *     max_completion_tokens) never exceed the cap (messages and chat: the bound reported
 *     in the info is 1..cap);
 *   - OpenAI streams ask for usage; the input estimate is the forwarded length;
 *   - responses: only client-side tools (function, custom, local_shell) not stripped are
 *     left, max_output_tokens is set and within the cap, never a background run;
 *   - Gemini (model from the fixed paths): the info's model is the path's,
 *     generationConfig.maxOutputTokens is set within the cap, one candidate, tools hold
 *     nothing but functionDeclarations (none left: no tools, no toolConfig);
 *   - a model the allowlist accepts is one of the configured names, for its API. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cleanup.h"
#include "llm-config.h"
#include "llm-policy.h"

#define CAP 1000
#define MAX_BYTES 3000

static const char *const stripped[] = {"web_search", "web_fetch", "code_execution", "mcp", "bash"};

static const struct {
	const char *name, *upstream;
} models[] = {
	{"claude-sonnet-4-5", "anthropic"},
	{"claude-haiku-4-5-20251001", "anthropic"},
	{"gpt-4o-mini", "openai"},
	{"openai/gpt-5", "openai"},
};

/* Independent of llm_policy_strips: the prefix itself or the prefix followed by '_'. */
static bool is_stripped(const char *type)
{
	if (type && strncmp(type, "mcp", 3) == 0) /* the MCP connector: always */
		return true;
	for (size_t i = 0; type && i < ELEMENTSOF(stripped); i++) {
		size_t n = strlen(stripped[i]);
		if (strncmp(type, stripped[i], n) == 0 && (type[n] == '\0' || type[n] == '_'))
			return true;
	}
	return false;
}

/* What the Responses API route keeps: client-side tool types that are not stripped. */
static bool responses_kept(const char *type)
{
	static const char *const client_side[] = {"function", "custom", "local_shell"};
	for (size_t i = 0; type && !is_stripped(type) && i < ELEMENTSOF(client_side); i++)
		if (strcmp(type, client_side[i]) == 0)
			return true;
	return false;
}

static void setup(struct llm_config *c)
{
	if (llm_config_init(c) < 0)
		abort();
	c->policy.max_tokens_cap = CAP;
	c->policy.max_request_bytes = MAX_BYTES;
	if (llm_policy_add_strip(&c->policy, "mcp", NULL) < 0 ||
	    llm_policy_add_strip(&c->policy, "bash", NULL) < 0 ||
	    llm_config_add_upstream(c, "anthropic", LLM_API_ANTHROPIC, "http://127.0.0.1:1",
				    "/nonexistent/anthropic.key", NULL) < 0 ||
	    llm_config_add_upstream(c, "openai", LLM_API_OPENAI, "http://127.0.0.1:2",
				    "/nonexistent/openai.key", NULL) < 0)
		abort();
	for (size_t i = 0; i < ELEMENTSOF(models); i++)
		if (llm_config_add_model(c, models[i].name, models[i].upstream, 3.0, 15.0, NULL) <
		    0)
			abort();
}

static void check_bound(json_t *body, const char *key)
{
	json_t *v = json_object_get(body, key);

	if (v && json_is_integer(v) && json_integer_value(v) > CAP)
		__builtin_trap();
	if (v && !json_is_integer(v) && !json_is_null(v))
		__builtin_trap(); /* get_int accepted something that is not a count */
}

static void check_gemini(enum llm_route route, const char *path, const uint8_t *in, size_t in_len,
			 const char *out, size_t out_len, const struct llm_request_info *info)
{
	_cleanup_json_ json_t *j = json_loadb(out, out_len, JSON_REJECT_DUPLICATES, NULL);
	_cleanup_json_ json_t *orig = json_loadb((const char *)in, in_len, 0, NULL);
	const char *m = strrchr(path, '/') + 1;
	json_t *gc, *tools, *t;
	size_t i;

	if (!json_is_object(j) || info->input_estimate != (int64_t)out_len ||
	    strncmp(info->model, m, strlen(info->model)) != 0 || m[strlen(info->model)] != ':' ||
	    info->stream != (route == LLM_ROUTE_GEMINI_STREAM))
		__builtin_trap();
	if (route == LLM_ROUTE_GEMINI_COUNT)
		return;
	gc = json_object_get(j, "generationConfig");
	if (!json_is_integer(json_object_get(gc, "maxOutputTokens")) ||
	    json_integer_value(json_object_get(gc, "maxOutputTokens")) != info->max_tokens ||
	    info->max_tokens < 1 || info->max_tokens > CAP)
		__builtin_trap();
	if (json_object_get(gc, "candidateCount") &&
	    json_integer_value(json_object_get(gc, "candidateCount")) != 1)
		__builtin_trap();
	tools = json_object_get(j, "tools");
	json_array_foreach(tools, i, t)
	{
		if (json_object_size(t) != 1 || !json_object_get(t, "functionDeclarations"))
			__builtin_trap();
	}
	if (json_array_size(json_object_get(orig, "tools")) > 0 && tools &&
	    json_array_size(tools) == 0)
		__builtin_trap(); /* an emptied list is removed */
	if (!tools && json_array_size(json_object_get(orig, "tools")) > 0 &&
	    json_object_get(j, "toolConfig"))
		__builtin_trap();
}

static void check_accepted(const struct llm_config *c, enum llm_route route, const uint8_t *in,
			   size_t in_len, const char *out, size_t out_len,
			   const struct llm_request_info *info)
{
	_cleanup_json_ json_t *j = json_loadb(out, out_len, JSON_REJECT_DUPLICATES, NULL);
	_cleanup_json_ json_t *orig = json_loadb((const char *)in, in_len, 0, NULL);
	json_t *tools, *t;
	size_t i, in_tools, n_stripped = 0;
	bool all_stripped;

	/* What the agent sent: how many tools, how many of them to strip. */
	in_tools = json_array_size(json_object_get(orig, "tools"));
	json_array_foreach(json_object_get(orig, "tools"), i, t) n_stripped +=
		route == LLM_ROUTE_RESPONSES
			? !responses_kept(json_string_value(json_object_get(t, "type")))
			: is_stripped(json_string_value(json_object_get(t, "type")));
	all_stripped = in_tools > 0 && n_stripped == in_tools;

	if (!json_is_object(j) || info->input_estimate != (int64_t)out_len)
		__builtin_trap();
	if (!llm_model_name_valid(info->model) || !json_is_string(json_object_get(j, "model")) ||
	    strcmp(info->model, json_string_value(json_object_get(j, "model"))) != 0)
		__builtin_trap();
	tools = json_object_get(j, "tools");
	json_array_foreach(tools, i, t)
	{
		const char *type = json_string_value(json_object_get(t, "type"));
		if (route == LLM_ROUTE_RESPONSES ? !responses_kept(type) : is_stripped(type))
			__builtin_trap();
	}
	if (all_stripped && (tools || json_object_get(j, "tool_choice")))
		__builtin_trap(); /* emptied tools are removed with their tool_choice */
	if (info->stripped < n_stripped)
		__builtin_trap();
	if (tools && json_array_size(tools) + n_stripped != in_tools)
		__builtin_trap(); /* only stripped tools are removed */
	/* Each API's own server-side extras (the other API's keys mean nothing upstream). */
	if (info->api == LLM_API_ANTHROPIC ? json_object_get(j, "mcp_servers") != NULL
	    : route == LLM_ROUTE_CHAT	   ? json_object_get(j, "web_search_options") != NULL
					   : json_is_true(json_object_get(j, "background")))
		__builtin_trap();
	if (route != LLM_ROUTE_COUNT_TOKENS) {
		check_bound(j, "max_tokens");
		if (info->api == LLM_API_OPENAI) /* Anthropic has no such field */
			check_bound(j, "max_completion_tokens");
		if (route == LLM_ROUTE_RESPONSES) {
			check_bound(j, "max_output_tokens");
			if (json_integer_value(json_object_get(j, "max_output_tokens")) !=
			    info->max_tokens)
				__builtin_trap();
		}
		if (info->max_tokens < 1 || info->max_tokens > CAP)
			__builtin_trap();
	}
	if (route == LLM_ROUTE_CHAT && info->stream &&
	    !json_is_true(json_object_get(json_object_get(j, "stream_options"), "include_usage")))
		__builtin_trap();
	if (route == LLM_ROUTE_COUNT_TOKENS && info->stream)
		__builtin_trap();

	/* The allowlist, as llm-proxy.c consults it. */
	const struct llm_model *m = llm_config_model(c, info->model);
	if (m) {
		bool known = false;
		for (size_t k = 0; k < ELEMENTSOF(models); k++)
			known |= strcmp(models[k].name, info->model) == 0 &&
				 strcmp(c->upstreams[m->upstream].name, models[k].upstream) == 0;
		if (!known || strcmp(m->name, info->model) != 0)
			__builtin_trap();
	}
}

static void run(const struct llm_config *c, enum llm_route route, const char *path,
		const uint8_t *data, size_t size)
{
	struct orch_error err = {0};
	struct llm_request_info info;
	char *out = NULL;
	size_t out_len = 0;
	int r;

	r = llm_policy_apply_path(&c->policy, route, path, data, size, &out, &out_len, &info, &err);
	if (r < 0) {
		if ((r != -EMSGSIZE && r != -EINVAL && r != -ENOMEM) || err.msg[0] == '\0' ||
		    out != NULL)
			__builtin_trap();
		if ((size > MAX_BYTES) != (r == -EMSGSIZE))
			__builtin_trap();
		return;
	}
	if (size > MAX_BYTES || info.route != route || info.api != llm_route_api(route))
		__builtin_trap();
	if (route == LLM_ROUTE_MODELS) {
		if (out || out_len || info.max_tokens)
			__builtin_trap();
		return;
	}
	if (info.api == LLM_API_GEMINI)
		check_gemini(route, path, data, size, out, out_len, &info);
	else
		check_accepted(c, route, data, size, out, out_len, &info);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		enum llm_route route;
		const char *path;
	} routes[] = {
		{LLM_ROUTE_MESSAGES, "/v1/messages"},
		{LLM_ROUTE_COUNT_TOKENS, "/v1/messages/count_tokens"},
		{LLM_ROUTE_CHAT, "/v1/chat/completions"},
		{LLM_ROUTE_RESPONSES, "/v1/responses"},
		{LLM_ROUTE_MODELS, "/v1/models"},
		{LLM_ROUTE_GEMINI_GENERATE, "/v1beta/models/gemini-2.5-pro:generateContent"},
		{LLM_ROUTE_GEMINI_STREAM, "/v1beta/models/gemini-2.5-pro:streamGenerateContent"},
		{LLM_ROUTE_GEMINI_COUNT, "/v1/models/gemini-2.5-flash:countTokens"},
	};
	struct llm_config c;

	setup(&c);
	for (size_t i = 0; i < ELEMENTSOF(routes); i++)
		run(&c, routes[i].route, routes[i].path, data, size);
	llm_config_done(&c);
	return 0;
}
