/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "cleanup.h"
#include "llm-policy.h"

int llm_policy_add_strip(struct llm_policy *p, const char *prefix, struct orch_error *err)
{
	char *s;

	if (!prefix || !*prefix || strlen(prefix) > 64)
		return orch_err(err, -EINVAL, "strip_tools: entries must be 1..64 characters");
	if (p->n_strip >= LLM_MAX_STRIP)
		return orch_err(err, -E2BIG, "strip_tools: at most %d entries", LLM_MAX_STRIP);
	s = strdup(prefix);
	if (!s)
		return orch_err(err, -ENOMEM, "out of memory");
	p->strip_tools[p->n_strip++] = s;
	return 0;
}

int llm_policy_init_default(struct llm_policy *p)
{
	static const char *const def[] = {"web_search", "web_fetch", "code_execution"};

	memset(p, 0, sizeof(*p));
	p->max_tokens_cap = 32000;
	p->max_request_bytes = 4u * 1024 * 1024;
	for (size_t i = 0; i < ELEMENTSOF(def); i++)
		if (llm_policy_add_strip(p, def[i], NULL) < 0) {
			llm_policy_done(p);
			return -ENOMEM;
		}
	return 0;
}

void llm_policy_done(struct llm_policy *p)
{
	for (size_t i = 0; i < p->n_strip; i++)
		free(p->strip_tools[i]);
	p->n_strip = 0;
}

static bool is_mcp(const char *type)
{
	return type && strncmp(type, "mcp", 3) == 0;
}

bool llm_policy_strips(const struct llm_policy *p, const char *type)
{
	if (is_mcp(type)) /* the MCP connector: never, whatever strip_tools says */
		return true;
	for (size_t i = 0; type && i < p->n_strip; i++) {
		size_t n = strlen(p->strip_tools[i]);
		if (strncmp(type, p->strip_tools[i], n) == 0 && (type[n] == '\0' || type[n] == '_'))
			return true;
	}
	return false;
}

/* Removes matching tools; drops tool_choice when it named a removed tool or no tool is
 * left. Returns the number removed or -EINVAL. */
static int strip_tools(const struct llm_policy *p, json_t *body, bool openai,
		       struct orch_error *err)
{
	json_t *tools = json_object_get(body, "tools");
	json_t *choice = json_object_get(body, "tool_choice");
	const char *choice_name = NULL;
	bool choice_gone = false;
	int removed = 0;

	if (!tools)
		return 0;
	if (!json_is_array(tools))
		return orch_err(err, -EINVAL, "tools: expected an array");
	if (json_is_object(choice)) {
		json_t *fn = openai ? json_object_get(choice, "function") : choice;
		choice_name = json_string_value(json_object_get(fn, "name"));
	}
	for (size_t i = 0; i < json_array_size(tools);) {
		json_t *t = json_array_get(tools, i);
		const char *type, *name;

		if (!json_is_object(t))
			return orch_err(err, -EINVAL, "tools[%zu]: expected an object", i);
		type = json_string_value(json_object_get(t, "type"));
		if (json_object_get(t, "type") && !type)
			return orch_err(err, -EINVAL, "tools[%zu].type: expected a string", i);
		if (!llm_policy_strips(p, type)) {
			i++;
			continue;
		}
		name = json_string_value(json_object_get(t, "name"));
		if (choice_name && name && strcmp(choice_name, name) == 0)
			choice_gone = true;
		json_array_remove(tools, i);
		removed++;
	}
	if (removed && json_array_size(tools) == 0) {
		json_object_del(body, "tools");
		choice_gone = true;
	}
	if (choice_gone)
		json_object_del(body, "tool_choice");
	return removed;
}

/* ---- input the body does not hold ---- */

static void remote(struct llm_request_info *info, const char *what)
{
	if (!info->remote_input)
		info->remote_what = what;
	info->remote_input = true;
}

static bool is_data_url(const char *url)
{
	return url && strncmp(url, "data:", 5) == 0;
}

/* An Anthropic content block (and the blocks nested in tool results). */
static void scan_anthropic_block(json_t *b, struct llm_request_info *info, int depth)
{
	const char *type = json_string_value(json_object_get(b, "type"));
	json_t *src = json_object_get(b, "source"), *content = json_object_get(b, "content");
	const char *st = json_string_value(json_object_get(src, "type"));

	if (!json_is_object(b) || depth > 8)
		return;
	if (st && strcmp(st, "url") == 0)
		remote(info, "a content source of type url");
	else if (st && strcmp(st, "file") == 0)
		remote(info, "a content source of type file (Files API)");
	if (type && strcmp(type, "container_upload") == 0)
		remote(info, "a container_upload block");
	if (json_is_array(content)) { /* tool_result and search_result blocks */
		size_t i;
		json_t *c;
		json_array_foreach(content, i, c) scan_anthropic_block(c, info, depth + 1);
	}
}

static void scan_anthropic(json_t *body, struct llm_request_info *info)
{
	json_t *msgs = json_object_get(body, "messages"), *sys = json_object_get(body, "system");
	size_t i, j;
	json_t *m, *b;

	if (json_object_get(body, "container"))
		remote(info, "container");
	json_array_foreach(msgs, i, m)
	{
		json_t *content = json_object_get(m, "content");
		json_array_foreach(content, j, b) scan_anthropic_block(b, info, 0);
	}
	json_array_foreach(sys, i, b) scan_anthropic_block(b, info, 0);
}

/* OpenAI content parts, of Chat Completions (image_url, file) and of the Responses API
 * (input_image, input_file): a URL other than data:, an uploaded file's id. */
static void scan_openai_part(json_t *p, struct llm_request_info *info)
{
	const char *type = json_string_value(json_object_get(p, "type"));
	json_t *iu = json_object_get(p, "image_url"), *file = json_object_get(p, "file");

	if (!json_is_object(p) || !type)
		return;
	if (strcmp(type, "image_url") == 0 &&
	    !is_data_url(json_string_value(json_object_get(iu, "url"))))
		remote(info, "an image_url that is not a data: URL");
	if (strcmp(type, "file") == 0 && json_object_get(file, "file_id"))
		remote(info, "file.file_id (an uploaded file)");
	if (strcmp(type, "input_image") == 0 &&
	    (json_object_get(p, "file_id") ||
	     (json_is_string(iu) && !is_data_url(json_string_value(iu)))))
		remote(info, "an input_image by URL or file_id");
	if (strcmp(type, "input_file") == 0 &&
	    (json_object_get(p, "file_id") || json_object_get(p, "file_url")))
		remote(info, "an input_file by file_id or file_url");
}

static void scan_openai_content(json_t *content, struct llm_request_info *info)
{
	size_t i;
	json_t *p;

	json_array_foreach(content, i, p) scan_openai_part(p, info);
}

static void scan_chat(json_t *body, struct llm_request_info *info)
{
	size_t i;
	json_t *m;

	json_array_foreach(json_object_get(body, "messages"), i, m)
		scan_openai_content(json_object_get(m, "content"), info);
}

static void scan_responses(json_t *body, struct llm_request_info *info)
{
	static const char *const stored[] = {"previous_response_id", "conversation", "prompt"};
	size_t i;
	json_t *it;

	for (size_t k = 0; k < ELEMENTSOF(stored); k++) {
		json_t *v = json_object_get(body, stored[k]);
		if (v && !json_is_null(v))
			remote(info, stored[k]);
	}
	json_array_foreach(json_object_get(body, "input"), i, it)
	{
		const char *type = json_string_value(json_object_get(it, "type"));
		if (type && strcmp(type, "item_reference") == 0)
			remote(info, "an item_reference (a stored item)");
		scan_openai_content(json_object_get(it, "content"), info);
		scan_openai_part(it, info);
	}
}

static void scan_gemini(json_t *body, struct llm_request_info *info)
{
	size_t i, j;
	json_t *c, *p;

	if (json_object_get(body, "cachedContent"))
		remote(info, "cachedContent");
	json_array_foreach(json_object_get(body, "contents"), i, c) json_array_foreach(
		json_object_get(c, "parts"), j, p) if (json_object_get(p, "fileData"))
		remote(info, "a fileData part (a file by URI)");
	json_array_foreach(json_object_get(json_object_get(body, "systemInstruction"), "parts"), j,
			   p) if (json_object_get(p, "fileData")) remote(info, "a fileData part");
}

static int get_int(json_t *body, const char *key, int64_t *ret, struct orch_error *err)
{
	json_t *v = json_object_get(body, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return orch_err(err, -EINVAL, "%s: expected a positive integer", key);
	*ret = json_integer_value(v);
	return 1;
}

static int check_common(json_t *body, bool need_messages, struct llm_request_info *info,
			struct orch_error *err)
{
	json_t *model = json_object_get(body, "model");
	json_t *stream = json_object_get(body, "stream");

	if (!json_is_string(model) || !llm_model_name_valid(json_string_value(model)))
		return orch_err(err, -EINVAL, "model: expected a model name");
	strcpy(info->model, json_string_value(model));
	if (need_messages && !json_is_array(json_object_get(body, "messages")))
		return orch_err(err, -EINVAL, "messages: expected an array");
	if (stream && !json_is_boolean(stream) && !json_is_null(stream))
		return orch_err(err, -EINVAL, "stream: expected a boolean");
	info->stream = json_is_true(stream);
	return 0;
}

static int apply_anthropic(const struct llm_policy *p, json_t *body, struct llm_request_info *info,
			   struct orch_error *err)
{
	int64_t mt = 0;
	int r;

	r = check_common(body, true, info, err);
	if (r < 0)
		return r;
	if (info->route == LLM_ROUTE_MESSAGES) {
		r = get_int(body, "max_tokens", &mt, err);
		if (r < 0)
			return r;
		if (r == 0)
			return orch_err(err, -EINVAL, "max_tokens: required");
		if (mt > p->max_tokens_cap) {
			mt = p->max_tokens_cap;
			json_object_set_new(body, "max_tokens", json_integer(mt));
		}
		info->max_tokens = mt;
	} else {
		info->stream = false; /* count_tokens never streams */
	}
	/* The MCP connector lets the upstream call remote servers on the agent's behalf:
	 * removed always. */
	if (json_object_get(body, "mcp_servers")) {
		json_object_del(body, "mcp_servers");
		info->stripped++;
	}
	r = strip_tools(p, body, false, err);
	if (r < 0)
		return r;
	info->stripped += (unsigned)r;
	return 0;
}

static int apply_openai(const struct llm_policy *p, json_t *body, struct llm_request_info *info,
			struct orch_error *err)
{
	int64_t mt = 0, mct = 0, n = 1;
	json_t *so;
	int r;

	r = check_common(body, true, info, err);
	if (r < 0)
		return r;
	if (get_int(body, "n", &n, err) < 0 || n != 1)
		return orch_err(err, -EINVAL, "n: only 1 completion per request is allowed");
	if (get_int(body, "max_tokens", &mt, err) < 0 ||
	    get_int(body, "max_completion_tokens", &mct, err) < 0)
		return err ? err->code : -EINVAL;
	if (mt > p->max_tokens_cap) {
		mt = p->max_tokens_cap;
		json_object_set_new(body, "max_tokens", json_integer(mt));
	}
	if (mct > p->max_tokens_cap || (mct == 0 && mt == 0)) {
		mct = p->max_tokens_cap;
		json_object_set_new(body, "max_completion_tokens", json_integer(mct));
	}
	/* When both are present either may apply: bound by the larger. */
	info->max_tokens = mct > mt ? mct : mt;
	if (json_object_get(body, "web_search_options") && llm_policy_strips(p, "web_search")) {
		json_object_del(body, "web_search_options");
		info->stripped++;
	}
	so = json_object_get(body, "stream_options");
	if (so && !json_is_object(so) && !json_is_null(so))
		return orch_err(err, -EINVAL, "stream_options: expected an object");
	if (info->stream) {
		if (!json_is_object(so)) {
			so = json_object();
			if (!so || json_object_set_new(body, "stream_options", so) < 0)
				return orch_err(err, -ENOMEM, "out of memory");
		}
		json_object_set_new(so, "include_usage", json_true());
	}
	r = strip_tools(p, body, true, err);
	if (r < 0)
		return r;
	info->stripped += (unsigned)r;
	return 0;
}

/* The output bound obj.key (what: its name in messages): a positive integer, lowered to
 * the cap, set to the cap when absent so that the worst case is bounded. */
static int cap_output(const struct llm_policy *p, json_t *obj, const char *key, const char *what,
		      int64_t *ret, struct orch_error *err)
{
	int64_t mt = 0;

	if (get_int(obj, key, &mt, err) < 0)
		return orch_err(err, -EINVAL, "%s: expected a positive integer", what);
	if (mt == 0 || mt > p->max_tokens_cap) {
		mt = p->max_tokens_cap;
		json_object_set_new(obj, key, json_integer(mt));
	}
	*ret = mt;
	return 0;
}

/* Responses API tools the client runs itself; every other type is a hosted tool the
 * upstream would run on the agent's behalf (web and file search, code interpreter, image
 * generation, remote MCP servers...) and is removed, whatever strip_tools says. */
static bool responses_tool_kept(const struct llm_policy *p, const char *type)
{
	static const char *const client_side[] = {"function", "custom", "local_shell"};
	if (!type || llm_policy_strips(p, type))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(client_side); i++)
		if (strcmp(type, client_side[i]) == 0)
			return true;
	return false;
}

#define MAX_NAMESPACE_DEPTH 4

/* Removes hosted tools from a Responses tools array: client-side tools stay, a
 * `namespace` (a named group of tools, as Codex sends them) stays with its own tools
 * filtered the same way, unless none is left. what names the array in errors. */
static int strip_responses_tools(const struct llm_policy *p, json_t *tools, const char *what,
				 int depth, int *removed, struct orch_error *err)
{
	if (!json_is_array(tools))
		return orch_err(err, -EINVAL, "%s: expected an array", what);
	if (depth > MAX_NAMESPACE_DEPTH)
		return orch_err(err, -EINVAL, "%s: namespaces nested deeper than %d", what,
				MAX_NAMESPACE_DEPTH);
	for (size_t i = 0; i < json_array_size(tools);) {
		json_t *t = json_array_get(tools, i);
		const char *type = json_string_value(json_object_get(t, "type"));
		char sub[160];
		int r;
		if (!json_is_object(t) || !type)
			return orch_err(err, -EINVAL, "%s[%zu]: expected an object with a type",
					what, i);
		if (strcmp(type, "namespace") == 0) {
			json_t *inner = json_object_get(t, "tools");
			snprintf(sub, sizeof(sub), "%.100s[%zu].tools", what, i);
			if (inner &&
			    (r = strip_responses_tools(p, inner, sub, depth + 1, removed, err)) < 0)
				return r;
			if (json_array_size(inner) > 0) {
				i++;
				continue;
			}
		} else if (responses_tool_kept(p, type)) {
			i++;
			continue;
		}
		json_array_remove(tools, i);
		(*removed)++;
	}
	return 0;
}

/* Codex sends its tools as input[] items of type additional_tools: filtered like tools;
 * an item left without tools goes. */
static int strip_input_tools(const struct llm_policy *p, json_t *input, int *removed,
			     struct orch_error *err)
{
	for (size_t i = 0; json_is_array(input) && i < json_array_size(input);) {
		json_t *it = json_array_get(input, i);
		const char *type = json_string_value(json_object_get(it, "type"));
		char what[64];
		int before = *removed, r;
		if (!type || strcmp(type, "additional_tools") != 0) {
			i++;
			continue;
		}
		snprintf(what, sizeof(what), "input[%zu].tools", i);
		if ((r = strip_responses_tools(p, json_object_get(it, "tools"), what, 0, removed,
					       err)) < 0)
			return r;
		if (*removed > before && json_array_size(json_object_get(it, "tools")) == 0)
			json_array_remove(input, i);
		else
			i++;
	}
	return 0;
}

/* POST /v1/responses: the model, max_output_tokens capped (set to the cap when absent,
 * so that the worst case is bounded), no background runs (they outlive the connection
 * and its accounting), hosted tools removed. */
static int apply_responses(const struct llm_policy *p, json_t *body, struct llm_request_info *info,
			   struct orch_error *err)
{
	json_t *input = json_object_get(body, "input"), *tools = json_object_get(body, "tools");
	json_t *choice = json_object_get(body, "tool_choice"),
	       *bg = json_object_get(body, "background");
	bool choice_gone = false;
	int r, removed = 0, in_removed = 0;

	r = check_common(body, false, info, err);
	if (r < 0)
		return r;
	if (input && !json_is_string(input) && !json_is_array(input))
		return orch_err(err, -EINVAL, "input: expected a string or an array");
	if (bg && !json_is_boolean(bg) && !json_is_null(bg))
		return orch_err(err, -EINVAL, "background: expected a boolean");
	if (json_is_true(bg))
		return orch_err(err, -EINVAL,
				"background: orch does not allow background responses (their "
				"cost could not be accounted to the request)");
	/* The Chat Completions bounds mean nothing here: refused rather than passed on
	 * unchecked. */
	if (json_object_get(body, "max_tokens") || json_object_get(body, "max_completion_tokens"))
		return orch_err(err, -EINVAL,
				"max_tokens, max_completion_tokens: not Responses API members; use "
				"max_output_tokens");
	if ((r = cap_output(p, body, "max_output_tokens", "max_output_tokens", &info->max_tokens,
			    err)) < 0)
		return r;
	if (tools && (r = strip_responses_tools(p, tools, "tools", 0, &removed, err)) < 0)
		return r;
	if ((r = strip_input_tools(p, input, &in_removed, err)) < 0)
		return r;
	/* tool_choice naming a hosted tool ({"type": "web_search_preview"}) goes with it. */
	if (json_is_object(choice)) {
		const char *ct = json_string_value(json_object_get(choice, "type"));
		if (ct && strcmp(ct, "allowed_tools") != 0 && !responses_tool_kept(p, ct))
			choice_gone = true;
	}
	if (removed && json_array_size(tools) == 0) {
		json_object_del(body, "tools");
		choice_gone = choice != NULL;
	}
	if (choice_gone)
		json_object_del(body, "tool_choice");
	info->stripped += (unsigned)(removed + in_removed);
	return 0;
}

/* Gemini generateContent / streamGenerateContent / countTokens (the model is in the path):
 * contents an array; generationConfig.maxOutputTokens capped (set to the cap when absent),
 * one candidate only; of the tools only functionDeclarations (run by the client) are
 * kept: googleSearch, codeExecution, urlContext and every other hosted tool are removed,
 * with toolConfig when no tool is left. */
static int apply_gemini(const struct llm_policy *p, json_t *body, struct llm_request_info *info,
			struct orch_error *err)
{
	json_t *contents = json_object_get(body, "contents");
	json_t *gc = json_object_get(body, "generationConfig"),
	       *tools = json_object_get(body, "tools");
	int64_t n = 1;
	unsigned removed = 0;
	int r;
	bool had_tools = json_array_size(tools) > 0;

	info->stream = info->route == LLM_ROUTE_GEMINI_STREAM;
	if (contents && !json_is_array(contents))
		return orch_err(err, -EINVAL, "contents: expected an array");
	if (info->route == LLM_ROUTE_GEMINI_COUNT)
		return 0; /* produces no output; nothing runs a tool */
	if (!contents)
		return orch_err(err, -EINVAL, "contents: expected an array");
	if (gc && !json_is_object(gc))
		return orch_err(err, -EINVAL, "generationConfig: expected an object");
	if (!gc) {
		gc = json_object();
		if (!gc || json_object_set_new(body, "generationConfig", gc) < 0)
			return orch_err(err, -ENOMEM, "out of memory");
	}
	if (get_int(gc, "candidateCount", &n, err) < 0 || n != 1)
		return orch_err(err, -EINVAL,
				"generationConfig.candidateCount: only 1 candidate per request is "
				"allowed");
	r = cap_output(p, gc, "maxOutputTokens", "generationConfig.maxOutputTokens",
		       &info->max_tokens, err);
	if (r < 0)
		return r;
	if (tools && !json_is_array(tools))
		return orch_err(err, -EINVAL, "tools: expected an array");
	for (size_t i = 0; i < json_array_size(tools);) {
		json_t *t = json_array_get(tools, i);
		const char *k;
		json_t *v;
		void *tmp;
		if (!json_is_object(t))
			return orch_err(err, -EINVAL, "tools[%zu]: expected an object", i);
		json_object_foreach_safe(t, tmp, k, v)
		{
			if (strcmp(k, "functionDeclarations") == 0)
				continue;
			json_object_del(t, k);
			removed++;
		}
		if (json_object_size(t) == 0)
			json_array_remove(tools, i);
		else
			i++;
	}
	if (had_tools && json_array_size(tools) == 0) {
		json_object_del(body, "tools");
		json_object_del(body, "toolConfig");
	}
	info->stripped += removed;
	return 0;
}

int llm_policy_apply(const struct llm_policy *p, enum llm_route route, const void *body, size_t len,
		     char **ret_body, size_t *ret_len, struct llm_request_info *ret,
		     struct orch_error *err)
{
	return llm_policy_apply_path(p, route, NULL, body, len, ret_body, ret_len, ret, err);
}

int llm_policy_apply_path(const struct llm_policy *p, enum llm_route route, const char *path,
			  const void *body, size_t len, char **ret_body, size_t *ret_len,
			  struct llm_request_info *ret, struct orch_error *err)
{
	struct llm_request_info info = {.route = route, .api = llm_route_api(route)};
	_cleanup_json_ json_t *j = NULL;
	json_error_t jerr;
	char *out;
	int r;

	if (len > p->max_request_bytes)
		return orch_err(err, -EMSGSIZE,
				"request body of %zu bytes exceeds the limit of %zu", len,
				p->max_request_bytes);
	if (route == LLM_ROUTE_MODELS || route == LLM_ROUTE_GEMINI_MODELS) {
		*ret_body = NULL;
		*ret_len = 0;
		*ret = info;
		return 0;
	}
	j = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return orch_err(err, -EINVAL, "request body is not valid JSON: %s (line %d)",
				jerr.text, jerr.line);
	if (!json_is_object(j))
		return orch_err(err, -EINVAL, "request body must be a JSON object");
	if (info.api == LLM_API_GEMINI && llm_route_path_model(path, info.model) < 0)
		return orch_err(err, -EINVAL, "the request path names no valid model");
	r = info.api == LLM_API_GEMINI	   ? apply_gemini(p, j, &info, err)
	    : route == LLM_ROUTE_RESPONSES ? apply_responses(p, j, &info, err)
	    : info.api == LLM_API_OPENAI   ? apply_openai(p, j, &info, err)
					   : apply_anthropic(p, j, &info, err);
	if (r < 0)
		return r;
	if (info.api == LLM_API_GEMINI)
		scan_gemini(j, &info);
	else if (route == LLM_ROUTE_RESPONSES)
		scan_responses(j, &info);
	else if (info.api == LLM_API_OPENAI)
		scan_chat(j, &info);
	else
		scan_anthropic(j, &info);
	out = json_dumps(j, JSON_COMPACT);
	if (!out)
		return orch_err(err, -ENOMEM, "out of memory");
	info.input_estimate = (int64_t)strlen(out);
	*ret_len = strlen(out);
	*ret_body = out;
	*ret = info;
	return 0;
}
