/* SPDX-License-Identifier: Apache-2.0 */
/* The fake upstream's scripted tool loop (--tool-command CMD), what drives a real agent CLI
 * through one round of tool use in the tests:
 *
 *   1. a request that offers the agent's shell tool is answered with a call of that tool
 *      running CMD: Anthropic `Bash` (Claude Code) or `bash` (Pi, OpenCode) as a tool_use
 *      block; Responses `exec_command` as a function_call, or Codex's code tool `exec`
 *      (a custom tool whose JavaScript calls `tools.exec_command`) as a custom_tool_call,
 *      found in `tools` or in `input[]` items of type `additional_tools`, namespaces
 *      included; Gemini `run_shell_command` as a functionCall part;
 *   2. a request carrying the tool's result (tool_result, function_call_output or
 *      custom_tool_call_output, functionResponse) is answered with the text "done".
 *
 * Requests that are neither (titles, summaries, classifiers) get the usual answers. The
 * tool's arguments follow its schema: `command` (`cmd` for exec_command), plus
 * `description` when the schema has one. */
#include <stdlib.h>
#include <string.h>

#include "fake-upstream.h"

#define TOOL_DESCRIPTION "run the command the test asked for"
#define DONE_TEXT "done"

/* The properties object of a tool's JSON schema, or NULL. */
static json_t *schema_props(json_t *schema)
{
	json_t *p = json_object_get(schema, "properties");
	return json_is_object(p) ? p : NULL;
}

/* {key: cmd[, description: ...]} by the tool's schema properties. */
static json_t *shell_args(json_t *props, const char *key, const char *cmd)
{
	json_t *a = json_pack("{s:s}", key, cmd);
	if (a && json_object_get(props, "description"))
		json_object_set_new(a, "description", json_string(TOOL_DESCRIPTION));
	return a;
}

/* ---- Anthropic Messages ---- */

static json_t *anthropic_shell_tool(json_t *body)
{
	json_t *tools = json_object_get(body, "tools"), *t;
	size_t i;
	json_array_foreach(tools, i, t)
	{
		const char *name = json_string_value(json_object_get(t, "name"));
		if (name && (strcmp(name, "Bash") == 0 || strcmp(name, "bash") == 0))
			return t;
	}
	return NULL;
}

/* The last message is the user's and carries a tool_result block. */
static int anthropic_has_result(json_t *body)
{
	json_t *msgs = json_object_get(body, "messages");
	json_t *last = json_array_get(msgs, json_array_size(msgs) - 1), *b;
	json_t *content = json_object_get(last, "content");
	size_t i;
	json_array_foreach(content, i, b)
	{
		const char *type = json_string_value(json_object_get(b, "type"));
		if (type && strcmp(type, "tool_result") == 0)
			return 1;
	}
	return 0;
}

/* One content block (text or tool_use, stolen) as a whole message or as its stream. */
static enum MHD_Result anthropic_answer(struct MHD_Connection *c, const struct req *r,
					const char *model, json_t *block, const char *stop,
					int stream)
{
	json_int_t in = input_tokens(r), out = 8;
	int tool = strcmp(json_string_value(json_object_get(block, "type")), "tool_use") == 0;
	if (!stream)
		return send_json(c, 200,
				 json_pack("{s:s, s:s, s:s, s:s, s:[o], s:s, s:n, s:{s:I, s:I}}",
					   "id", "msg_fake_tool", "type", "message", "role",
					   "assistant", "model", model, "content", block,
					   "stop_reason", stop, "stop_sequence", "usage",
					   "input_tokens", in, "output_tokens", out),
				 r->latency);
	struct stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->events = calloc(16, sizeof(char *)))) {
		free(s);
		json_decref(block);
		return MHD_NO;
	}
	s->first_delay_ms = r->latency;
	s->delay_ms = r->delay;
	stream_add(s, "message_start",
		   json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:s, s:n, s:n, s:{s:I, s:I}}}", "type",
			     "message_start", "message", "id", "msg_fake_tool", "type", "message",
			     "role", "assistant", "content", "model", model, "stop_reason",
			     "stop_sequence", "usage", "input_tokens", in, "output_tokens",
			     (json_int_t)1));
	json_t *start = json_deep_copy(block), *delta;
	if (tool) {
		json_object_set_new(start, "input", json_object());
		char *args = json_dumps(json_object_get(block, "input"), JSON_COMPACT);
		delta = json_pack("{s:s, s:s}", "type", "input_json_delta", "partial_json",
				  args ? args : "{}");
		free(args);
	} else {
		json_object_set_new(start, "text", json_string(""));
		delta = json_pack("{s:s, s:O}", "type", "text_delta", "text",
				  json_object_get(block, "text"));
	}
	stream_add(s, "content_block_start",
		   json_pack("{s:s, s:i, s:o}", "type", "content_block_start", "index", 0,
			     "content_block", start));
	stream_add(s, "content_block_delta",
		   json_pack("{s:s, s:i, s:o}", "type", "content_block_delta", "index", 0, "delta",
			     delta));
	stream_add(s, "content_block_stop",
		   json_pack("{s:s, s:i}", "type", "content_block_stop", "index", 0));
	stream_add(s, "message_delta",
		   json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type", "message_delta", "delta",
			     "stop_reason", stop, "stop_sequence", "usage", "output_tokens", out));
	stream_add(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
	json_decref(block);
	return send_stream(c, s);
}

static int anthropic(struct fake *f, struct MHD_Connection *c, json_t *body, const struct req *r,
		     enum MHD_Result *ret)
{
	const char *model = json_string_value(json_object_get(body, "model"));
	int stream = json_is_true(json_object_get(body, "stream"));
	json_t *tool = anthropic_shell_tool(body);
	if (!model)
		return 0;
	if (anthropic_has_result(body)) {
		*ret = anthropic_answer(c, r, model,
					json_pack("{s:s, s:s}", "type", "text", "text", DONE_TEXT),
					"end_turn", stream);
		return 1;
	}
	if (!tool)
		return 0;
	json_t *props = schema_props(json_object_get(tool, "input_schema"));
	*ret = anthropic_answer(c, r, model,
				json_pack("{s:s, s:s, s:O, s:o}", "type", "tool_use", "id",
					  "toolu_fake_0001", "name", json_object_get(tool, "name"),
					  "input", shell_args(props, "command", f->tool_command)),
				"tool_use", stream);
	return 1;
}

/* ---- OpenAI Responses ---- */

/* Looks for exec_command (a function) or exec (Codex's code tool) in a tools array,
 * namespaces included; *ret_fn prefers the function. */
static void responses_find(json_t *tools, json_t **ret_fn, json_t **ret_code)
{
	json_t *t;
	size_t i;
	json_array_foreach(tools, i, t)
	{
		const char *type = json_string_value(json_object_get(t, "type"));
		const char *name = json_string_value(json_object_get(t, "name"));
		if (!type)
			continue;
		if (strcmp(type, "namespace") == 0)
			responses_find(json_object_get(t, "tools"), ret_fn, ret_code);
		else if (name && strcmp(type, "function") == 0 && strcmp(name, "exec_command") == 0)
			*ret_fn = t;
		else if (name && strcmp(type, "custom") == 0 && strcmp(name, "exec") == 0)
			*ret_code = t;
	}
}

static int responses_has_result(json_t *input)
{
	json_t *it;
	size_t i;
	json_array_foreach(input, i, it)
	{
		const char *type = json_string_value(json_object_get(it, "type"));
		if (type && (strcmp(type, "function_call_output") == 0 ||
			     strcmp(type, "custom_tool_call_output") == 0))
			return 1;
	}
	return 0;
}

/* The JavaScript of Codex's code tool that runs the command through exec_command. */
static char *code_input(const char *cmd)
{
	json_t *s = json_string(cmd);
	char *q = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL, *out = NULL;
	json_decref(s);
	if (q &&
	    asprintf(&out,
		     "const r = await tools.exec_command({cmd: %s});\ntext(JSON.stringify(r));\n",
		     q) < 0)
		out = NULL;
	free(q);
	return out;
}

/* One output item (stolen) as a whole response or as its typed events. */
static enum MHD_Result responses_answer(struct MHD_Connection *c, const struct req *r,
					const char *model, json_t *item, int stream)
{
	json_int_t in = input_tokens(r), out = 8;
	const char *type = json_string_value(json_object_get(item, "type"));
	const char *id = json_string_value(json_object_get(item, "id"));
	int seq = 0;
	if (!stream)
		return send_json(
			c, 200,
			response_object(model, "completed", json_pack("[o]", item), in, out),
			r->latency);
	struct stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->events = calloc(16, sizeof(char *)))) {
		free(s);
		json_decref(item);
		return MHD_NO;
	}
	s->first_delay_ms = r->latency;
	s->delay_ms = r->delay;
	stream_add(s, "response.created",
		   json_pack("{s:s, s:i, s:o}", "type", "response.created", "sequence_number",
			     seq++, "response",
			     response_object(model, "in_progress", json_array(), -1, 0)));
	json_t *added = json_deep_copy(item);
	json_object_set_new(added, "status", json_string("in_progress"));
	if (strcmp(type, "function_call") == 0) {
		json_t *args = json_object_get(item, "arguments");
		json_object_set_new(added, "arguments", json_string(""));
		stream_add(s, "response.output_item.added",
			   json_pack("{s:s, s:i, s:i, s:o}", "type", "response.output_item.added",
				     "sequence_number", seq++, "output_index", 0, "item", added));
		stream_add(s, "response.function_call_arguments.delta",
			   json_pack("{s:s, s:i, s:s, s:i, s:O}", "type",
				     "response.function_call_arguments.delta", "sequence_number",
				     seq++, "item_id", id, "output_index", 0, "delta", args));
		stream_add(s, "response.function_call_arguments.done",
			   json_pack("{s:s, s:i, s:s, s:i, s:O}", "type",
				     "response.function_call_arguments.done", "sequence_number",
				     seq++, "item_id", id, "output_index", 0, "arguments", args));
	} else if (strcmp(type, "custom_tool_call") == 0) {
		json_t *input = json_object_get(item, "input");
		json_object_set_new(added, "input", json_string(""));
		stream_add(s, "response.output_item.added",
			   json_pack("{s:s, s:i, s:i, s:o}", "type", "response.output_item.added",
				     "sequence_number", seq++, "output_index", 0, "item", added));
		stream_add(s, "response.custom_tool_call_input.delta",
			   json_pack("{s:s, s:i, s:s, s:i, s:O}", "type",
				     "response.custom_tool_call_input.delta", "sequence_number",
				     seq++, "item_id", id, "output_index", 0, "delta", input));
		stream_add(s, "response.custom_tool_call_input.done",
			   json_pack("{s:s, s:i, s:s, s:i, s:O}", "type",
				     "response.custom_tool_call_input.done", "sequence_number",
				     seq++, "item_id", id, "output_index", 0, "input", input));
	} else {
		json_object_set_new(added, "content", json_array());
		stream_add(s, "response.output_item.added",
			   json_pack("{s:s, s:i, s:i, s:o}", "type", "response.output_item.added",
				     "sequence_number", seq++, "output_index", 0, "item", added));
		stream_add(s, "response.output_text.delta",
			   json_pack("{s:s, s:i, s:s, s:i, s:i, s:s}", "type",
				     "response.output_text.delta", "sequence_number", seq++,
				     "item_id", id, "output_index", 0, "content_index", 0, "delta",
				     DONE_TEXT));
		stream_add(s, "response.output_text.done",
			   json_pack("{s:s, s:i, s:s, s:i, s:i, s:s}", "type",
				     "response.output_text.done", "sequence_number", seq++,
				     "item_id", id, "output_index", 0, "content_index", 0, "text",
				     DONE_TEXT));
	}
	stream_add(s, "response.output_item.done",
		   json_pack("{s:s, s:i, s:i, s:O}", "type", "response.output_item.done",
			     "sequence_number", seq++, "output_index", 0, "item", item));
	stream_add(s, "response.completed",
		   json_pack("{s:s, s:i, s:o}", "type", "response.completed", "sequence_number",
			     seq++, "response",
			     response_object(model, "completed", json_pack("[o]", item), in, out)));
	return send_stream(c, s);
}

static int responses(struct fake *f, struct MHD_Connection *c, json_t *body, const struct req *r,
		     enum MHD_Result *ret)
{
	const char *model = json_string_value(json_object_get(body, "model"));
	int stream = json_is_true(json_object_get(body, "stream"));
	json_t *input = json_object_get(body, "input"), *fn = NULL, *code = NULL, *it;
	size_t i;
	if (!model)
		return 0;
	if (responses_has_result(input)) {
		*ret = responses_answer(c, r, model, message_item(DONE_TEXT, "completed"), stream);
		return 1;
	}
	responses_find(json_object_get(body, "tools"), &fn, &code);
	json_array_foreach(input, i, it)
	{
		const char *type = json_string_value(json_object_get(it, "type"));
		if (type && strcmp(type, "additional_tools") == 0)
			responses_find(json_object_get(it, "tools"), &fn, &code);
	}
	if (fn) {
		json_t *args = shell_args(schema_props(json_object_get(fn, "parameters")), "cmd",
					  f->tool_command);
		char *a = json_dumps(args, JSON_COMPACT);
		json_decref(args);
		*ret = responses_answer(c, r, model,
					json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type",
						  "function_call", "id", "fc_fake_0001", "call_id",
						  "call_fake_0001", "name", "exec_command",
						  "arguments", a ? a : "{}", "status", "completed"),
					stream);
		free(a);
		return 1;
	}
	if (code) {
		char *js = code_input(f->tool_command);
		*ret = responses_answer(c, r, model,
					json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "type",
						  "custom_tool_call", "id", "ctc_fake_0001",
						  "call_id", "call_fake_0001", "name", "exec",
						  "input", js ? js : "", "status", "completed"),
					stream);
		free(js);
		return 1;
	}
	return 0;
}

/* ---- Gemini ---- */

static json_t *gemini_shell_tool(json_t *body)
{
	json_t *tools = json_object_get(body, "tools"), *t, *d;
	size_t i, k;
	json_array_foreach(tools, i, t)
	{
		json_array_foreach(json_object_get(t, "functionDeclarations"), k, d)
		{
			const char *name = json_string_value(json_object_get(d, "name"));
			if (name && strcmp(name, "run_shell_command") == 0)
				return d;
		}
	}
	return NULL;
}

static int gemini_has_result(json_t *body)
{
	json_t *contents = json_object_get(body, "contents");
	json_t *last = json_array_get(contents, json_array_size(contents) - 1), *p;
	size_t i;
	json_array_foreach(json_object_get(last, "parts"), i, p)
	{
		if (json_object_get(p, "functionResponse"))
			return 1;
	}
	return 0;
}

static int gemini(struct fake *f, struct MHD_Connection *c, json_t *body, const struct req *r,
		  int stream, enum MHD_Result *ret)
{
	json_int_t in = input_tokens(r), out = 8;
	json_t *tool = gemini_shell_tool(body), *answer;
	if (gemini_has_result(body)) {
		answer = gemini_chunk(DONE_TEXT, "STOP", in, out);
	} else if (tool) {
		json_t *schema = json_object_get(tool, "parametersJsonSchema");
		if (!schema)
			schema = json_object_get(tool, "parameters");
		json_t *call = json_pack(
			"{s:{s:s, s:o}}", "functionCall", "name", "run_shell_command", "args",
			shell_args(schema_props(schema), "command", f->tool_command));
		answer = gemini_chunk("", "STOP", in, out);
		json_t *parts = json_object_get(
			json_object_get(json_array_get(json_object_get(answer, "candidates"), 0),
					"content"),
			"parts");
		json_array_clear(parts);
		json_array_append_new(parts, call);
	} else {
		return 0;
	}
	if (!stream) {
		*ret = send_json(c, 200, answer, r->latency);
		return 1;
	}
	struct stream *s = calloc(1, sizeof(*s));
	if (!s || !(s->events = calloc(4, sizeof(char *)))) {
		free(s);
		json_decref(answer);
		*ret = MHD_NO;
		return 1;
	}
	s->first_delay_ms = r->latency;
	s->delay_ms = r->delay;
	stream_add(s, NULL, answer);
	*ret = send_stream(c, s);
	return 1;
}

int fake_toolloop(struct fake *f, struct MHD_Connection *c, enum fake_dialect d, json_t *body,
		  const struct req *r, int stream, enum MHD_Result *ret)
{
	if (!f->tool_command || !json_is_object(body))
		return 0;
	switch (d) {
	case FAKE_ANTHROPIC:
		return anthropic(f, c, body, r, ret);
	case FAKE_RESPONSES:
		return responses(f, c, body, r, ret);
	case FAKE_GEMINI:
		return gemini(f, c, body, r, stream, ret);
	}
	return 0;
}
