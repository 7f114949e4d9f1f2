/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: request policy (routes, validation, max_tokens cap, stripped tools, OpenAI
 * usage in streams) and prices. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "check-run.h"
#include "cleanup.h"
#include "llm-policy.h"
#include "llm-price.h"
#include "llm-errors.h"

static struct llm_policy pol;

static void setup(void)
{
	ck_assert_int_eq(llm_policy_init_default(&pol), 0);
}

static void teardown(void)
{
	llm_policy_done(&pol);
}

/* Applies the policy and returns the rewritten body as JSON (or NULL with *ret_r set). */
static json_t *apply(enum llm_route route, const char *body, struct llm_request_info *info,
		     int *ret_r)
{
	struct orch_error err = {0};
	char *out = NULL;
	size_t len = 0;
	json_t *j;

	*ret_r = llm_policy_apply(&pol, route, body, strlen(body), &out, &len, info, &err);
	if (*ret_r < 0) {
		ck_assert_str_ne(err.msg, "");
		return NULL;
	}
	j = json_loadb(out, len, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(info->input_estimate, (int64_t)len);
	free(out);
	return j;
}

START_TEST(test_routes)
{
	enum llm_route r;

	ck_assert_int_eq(llm_route_parse("POST", "/v1/messages", &r), 0);
	ck_assert_int_eq(r, LLM_ROUTE_MESSAGES);
	ck_assert_int_eq(llm_route_parse("POST", "/v1/messages/count_tokens", &r), 0);
	ck_assert_int_eq(r, LLM_ROUTE_COUNT_TOKENS);
	ck_assert_int_eq(llm_route_parse("GET", "/v1/models", &r), 0);
	ck_assert_int_eq(llm_route_parse("POST", "/v1/chat/completions", &r), 0);
	ck_assert_int_eq(llm_route_api(r), LLM_API_OPENAI);
	ck_assert_int_eq(llm_route_parse("POST", "/v1/responses", &r), 0);
	ck_assert_int_eq(r, LLM_ROUTE_RESPONSES);
	ck_assert_int_eq(llm_route_api(r), LLM_API_OPENAI);
	ck_assert_int_eq(llm_route_parse("GET", "/v1/responses", &r), -ENOENT);
	ck_assert_int_eq(llm_route_parse("GET", "/v1/messages", &r), -ENOENT);
	ck_assert_int_eq(llm_route_parse("POST", "/v1/messages/../models", &r), -ENOENT);
	ck_assert_int_eq(llm_route_parse("POST", "/v1/files", &r), -ENOENT);
}
END_TEST

/* Gemini: routes by path (the model in it), maxOutputTokens capped or set, only
 * functionDeclarations kept, one candidate, countTokens unbounded and never streamed. */
START_TEST(test_gemini)
{
	static const struct {
		const char *method, *path;
		int r;
		enum llm_route route;
	} routes[] = {
		{"POST", "/v1beta/models/gemini-2.5-pro:generateContent", 0,
		 LLM_ROUTE_GEMINI_GENERATE},
		{"POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent", 0,
		 LLM_ROUTE_GEMINI_STREAM},
		{"POST", "/v1/models/gemini-2.5-flash:countTokens", 0, LLM_ROUTE_GEMINI_COUNT},
		{"GET", "/v1beta/models/gemini-2.5-pro:generateContent", -ENOENT, 0},
		{"POST", "/v1beta/models/gemini-2.5-pro:embedContent", -ENOENT, 0},
		{"POST", "/v1beta/models/:generateContent", -ENOENT, 0},
		{"POST", "/v1beta/models/a/b:generateContent", -ENOENT, 0},
		{"POST", "/v1beta/models/a:b:generateContent", -ENOENT, 0},
		{"POST", "/v1beta/models/gemini 2:generateContent", -ENOENT, 0},
		{"POST", "/v1beta/models/gemini-2.5-pro", -ENOENT, 0},
		{"POST", "/v1beta/tunedModels/x:generateContent", -ENOENT, 0},
	};
	for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
		enum llm_route r = 0;
		ck_assert_msg(llm_route_parse(routes[i].method, routes[i].path, &r) == routes[i].r,
			      "%s %s", routes[i].method, routes[i].path);
		if (routes[i].r == 0) {
			ck_assert_int_eq(r, routes[i].route);
			ck_assert_int_eq(llm_route_api(r), LLM_API_GEMINI);
		}
	}

	struct llm_request_info info;
	struct orch_error err = {0};
	char *out = NULL;
	size_t len = 0;
	static const char body[] =
		"{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
		"\"generationConfig\":{\"maxOutputTokens\":900000,\"temperature\":0.5},"
		"\"tools\":[{\"googleSearch\":{}},{\"functionDeclarations\":[{\"name\":\"ls\"}],"
		"\"codeExecution\":{}},{\"urlContext\":{}}],\"toolConfig\":{}}";
	ck_assert_int_eq(
		llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_STREAM,
				      "/v1beta/models/gemini-2.5-pro:streamGenerateContent", body,
				      strlen(body), &out, &len, &info, &err),
		0);
	json_t *j = json_loadb(out, len, 0, NULL);
	free(out);
	ck_assert_str_eq(info.model, "gemini-2.5-pro");
	ck_assert_int_eq(info.api, LLM_API_GEMINI);
	ck_assert(info.stream);
	ck_assert_int_eq(info.max_tokens, 32000);
	ck_assert_uint_eq(info.stripped, 3);
	json_t *gc = json_object_get(j, "generationConfig");
	ck_assert_int_eq(json_integer_value(json_object_get(gc, "maxOutputTokens")), 32000);
	ck_assert_ptr_nonnull(json_object_get(gc, "temperature"));
	ck_assert_uint_eq(json_array_size(json_object_get(j, "tools")), 1);
	ck_assert_ptr_nonnull(json_object_get(j, "toolConfig"));
	json_decref(j);

	/* only hosted tools: tools and toolConfig go; no generationConfig: one is made */
	static const char hosted[] =
		"{\"contents\":[],\"tools\":[{\"googleSearch\":{}}],\"toolConfig\":{}}";
	ck_assert_int_eq(llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_GENERATE,
					       "/v1beta/models/gemini-2.5-pro:generateContent",
					       hosted, strlen(hosted), &out, &len, &info, &err),
			 0);
	j = json_loadb(out, len, 0, NULL);
	free(out);
	ck_assert(!info.stream);
	ck_assert_ptr_null(json_object_get(j, "tools"));
	ck_assert_ptr_null(json_object_get(j, "toolConfig"));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "generationConfig"),
							    "maxOutputTokens")),
			 32000);
	json_decref(j);

	static const char *const bad[] = {
		"{}",
		"{\"contents\":{}}",
		"{\"contents\":[],\"generationConfig\":[]}",
		"{\"contents\":[],\"generationConfig\":{\"candidateCount\":2}}",
		"{\"contents\":[],\"generationConfig\":{\"maxOutputTokens\":-1}}",
		"{\"contents\":[],\"tools\":{}}",
		"{\"contents\":[],\"tools\":[7]}",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		out = NULL;
		ck_assert_msg(llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_GENERATE,
						    "/v1beta/models/gemini-2.5-pro:generateContent",
						    bad[i], strlen(bad[i]), &out, &len, &info,
						    &err) == -EINVAL,
			      "accepted: %s", bad[i]);
		ck_assert_ptr_null(out);
	}
	/* the model comes from the path: none, none valid */
	ck_assert_int_eq(llm_policy_apply(&pol, LLM_ROUTE_GEMINI_GENERATE, "{\"contents\":[]}", 15,
					  &out, &len, &info, &err),
			 -EINVAL);
	ck_assert_int_eq(llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_COUNT,
					       "/v1beta/models/gemini-2.5-pro:countTokens",
					       "{\"contents\":[]}", 15, &out, &len, &info, &err),
			 0);
	ck_assert_int_eq(info.max_tokens, 0);
	ck_assert(!info.stream);
	free(out);
}
END_TEST

/* The Responses API: max_output_tokens capped or set, hosted tools removed whatever
 * strip_tools says (client-side function/custom/local_shell kept), a tool_choice naming
 * a removed tool dropped, background runs and malformed members refused. */
START_TEST(test_responses)
{
	struct llm_request_info info;
	int r;
	json_t *j = apply(LLM_ROUTE_RESPONSES,
			  "{\"model\":\"gpt-4.1\",\"input\":[{\"role\":\"user\",\"content\":"
			  "\"hi\"}],\"max_output_tokens\":900000,\"stream\":true,\"tools\":["
			  "{\"type\":\"web_search_preview\"},{\"type\":\"file_search\","
			  "\"vector_store_ids\":[\"v\"]},{\"type\":\"code_interpreter\","
			  "\"container\":{\"type\":\"auto\"}},{\"type\":\"image_generation\"},"
			  "{\"type\":\"mcp\",\"server_label\":\"s\",\"server_url\":\"https://x\"},"
			  "{\"type\":\"computer_use_preview\"},{\"type\":\"function\",\"name\":"
			  "\"f\",\"parameters\":{}},{\"type\":\"custom\",\"name\":\"apply_patch\"},"
			  "{\"type\":\"local_shell\"}],\"tool_choice\":{\"type\":"
			  "\"file_search\"}}",
			  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(info.api, LLM_API_OPENAI);
	ck_assert_str_eq(info.model, "gpt-4.1");
	ck_assert(info.stream);
	ck_assert_int_eq(info.max_tokens, 32000);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_output_tokens")), 32000);
	json_t *tools = json_object_get(j, "tools");
	ck_assert_uint_eq(json_array_size(tools), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(tools, 0), "type")),
			 "function");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(tools, 2), "type")),
			 "local_shell");
	ck_assert_uint_eq(info.stripped, 6);
	ck_assert_ptr_null(json_object_get(j, "tool_choice"));
	json_decref(j);

	/* no max_output_tokens: the cap is set; a function tool_choice stays */
	j = apply(LLM_ROUTE_RESPONSES,
		  "{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":[{\"type\":\"function\","
		  "\"name\":\"f\"}],\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"}}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_output_tokens")), 32000);
	ck_assert_ptr_nonnull(json_object_get(j, "tool_choice"));
	ck_assert(!info.stream);
	json_decref(j);

	/* only hosted tools: tools and tool_choice ("required") both go */
	j = apply(LLM_ROUTE_RESPONSES,
		  "{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"max_output_tokens\":50,"
		  "\"tools\":[{\"type\":\"web_search\"}],\"tool_choice\":\"required\"}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(info.max_tokens, 50);
	ck_assert_ptr_null(json_object_get(j, "tools"));
	ck_assert_ptr_null(json_object_get(j, "tool_choice"));
	json_decref(j);

	/* Codex: tools as input[] items of type additional_tools, grouped in namespaces;
	 * hosted tools go there too (also inside a namespace), namespace tools stay, an
	 * emptied namespace and an emptied item go; the top-level tool_choice stays. */
	j = apply(LLM_ROUTE_RESPONSES,
		  "{\"model\":\"gpt-4.1\",\"tool_choice\":\"auto\",\"input\":["
		  "{\"type\":\"additional_tools\",\"role\":\"developer\",\"tools\":["
		  "{\"type\":\"namespace\",\"name\":\"functions\",\"tools\":["
		  "{\"type\":\"custom\",\"name\":\"exec\"},{\"type\":\"function\","
		  "\"name\":\"wait\"},{\"type\":\"web_search\"}]},"
		  "{\"type\":\"namespace\",\"name\":\"web\",\"tools\":[{\"type\":"
		  "\"web_search_preview\"}]},{\"type\":\"image_generation\"},"
		  "{\"type\":\"function\",\"name\":\"g\"}]},"
		  "{\"type\":\"additional_tools\",\"tools\":[{\"type\":\"mcp\","
		  "\"server_label\":\"s\"}]},"
		  "{\"role\":\"user\",\"content\":\"hi\"}]}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	json_t *input = json_object_get(j, "input");
	ck_assert_uint_eq(json_array_size(input), 2);
	json_t *at = json_object_get(json_array_get(input, 0), "tools");
	ck_assert_uint_eq(json_array_size(at), 2);
	json_t *ns = json_array_get(at, 0);
	ck_assert_str_eq(json_string_value(json_object_get(ns, "name")), "functions");
	ck_assert_uint_eq(json_array_size(json_object_get(ns, "tools")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(ns, "tools"), 1), "name")),
			 "wait");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(at, 1), "name")), "g");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(input, 1), "role")),
			 "user");
	ck_assert_uint_eq(info.stripped, 5);
	ck_assert_str_eq(json_string_value(json_object_get(j, "tool_choice")), "auto");
	json_decref(j);
	/* a namespace at the top level is filtered the same way */
	j = apply(LLM_ROUTE_RESPONSES,
		  "{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":[{\"type\":"
		  "\"namespace\",\"name\":\"n\",\"tools\":[{\"type\":\"file_search\"},"
		  "{\"type\":\"function\",\"name\":\"f\"}]}]}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_uint_eq(json_array_size(json_object_get(
				  json_array_get(json_object_get(j, "tools"), 0), "tools")),
			  1);
	ck_assert_uint_eq(info.stripped, 1);
	json_decref(j);

	static const char *const bad[] = {
		"{\"model\":\"gpt-4.1\",\"input\":[{\"type\":\"additional_tools\",\"tools\":{}}]}",
		"{\"model\":\"gpt-4.1\",\"input\":[{\"type\":\"additional_tools\"}]}",
		"{\"model\":\"gpt-4.1\",\"input\":[{\"type\":\"additional_tools\",\"tools\":[7]}]}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":[{\"type\":\"namespace\","
		"\"tools\":[{\"type\":\"namespace\",\"tools\":[{\"type\":\"namespace\",\"tools\":"
		"[{\"type\":\"namespace\",\"tools\":[{\"type\":\"namespace\",\"tools\":["
		"{\"type\":\"namespace\",\"tools\":[]}]}]}]}]}]}]}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"background\":true}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"background\":\"yes\"}",
		"{\"model\":\"gpt-4.1\",\"input\":7}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"max_output_tokens\":0}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"max_output_tokens\":\"9\"}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":{}}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":[{\"name\":\"x\"}]}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":[7]}",
		"{\"model\":\"bad model\",\"input\":\"hi\"}",
		"{\"input\":\"hi\"}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"stream\":1}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"max_tokens\":10}",
		"{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"max_completion_tokens\":10}",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		j = apply(LLM_ROUTE_RESPONSES, bad[i], &info, &r);
		ck_assert_msg(r == -EINVAL && !j, "accepted: %s", bad[i]);
	}
}
END_TEST

START_TEST(test_anthropic_strip_and_cap)
{
	struct llm_request_info info;
	int r;
	json_t *j = apply(LLM_ROUTE_MESSAGES,
			  "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64000,\"stream\":true,"
			  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
			  "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"},"
			  "{\"name\":\"read_file\",\"input_schema\":{\"type\":\"object\"}},"
			  "{\"type\":\"web_fetch_20250910\",\"name\":\"web_fetch\"},"
			  "{\"type\":\"code_execution_20250825\",\"name\":\"code_execution\"},"
			  "{\"type\":\"custom\",\"name\":\"x\",\"input_schema\":{}}],"
			  "\"tool_choice\":{\"type\":\"tool\",\"name\":\"web_search\"}}",
			  &info, &r);
	json_t *tools;

	ck_assert_int_eq(r, 0);
	ck_assert_str_eq(info.model, "claude-sonnet-4-5");
	ck_assert(info.stream);
	ck_assert_int_eq(info.max_tokens, 32000);
	ck_assert_int_eq(info.stripped, 3);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_tokens")), 32000);
	tools = json_object_get(j, "tools");
	ck_assert_int_eq(json_array_size(tools), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(tools, 0), "name")),
			 "read_file");
	ck_assert_ptr_null(json_object_get(j, "tool_choice"));
	json_decref(j);
}
END_TEST

START_TEST(test_anthropic_only_server_tools)
{
	struct llm_request_info info;
	int r;
	json_t *j = apply(LLM_ROUTE_MESSAGES,
			  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[],"
			  "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
			  "\"tool_choice\":{\"type\":\"any\"}}",
			  &info, &r);

	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(info.max_tokens, 10);
	ck_assert_ptr_null(json_object_get(j, "tools"));
	ck_assert_ptr_null(json_object_get(j, "tool_choice"));
	json_decref(j);
}
END_TEST

/* The MCP connector is removed whatever strip_tools says (here: nothing at all). */
START_TEST(test_mcp_always)
{
	struct llm_request_info info;
	int r;
	json_t *j;

	llm_policy_done(&pol);
	j = apply(LLM_ROUTE_MESSAGES,
		  "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[],"
		  "\"mcp_servers\":[{\"type\":\"url\",\"url\":\"https://evil.example/mcp\","
		  "\"name\":\"x\"}],"
		  "\"tools\":[{\"type\":\"mcp_toolset\",\"mcp_server_name\":\"x\"},"
		  "{\"name\":\"read\",\"input_schema\":{}}]}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_ptr_null(json_object_get(j, "mcp_servers"));
	ck_assert_int_eq(json_array_size(json_object_get(j, "tools")), 1);
	ck_assert_int_eq(info.stripped, 2);
	ck_assert(llm_policy_strips(&pol, "mcp"));
	ck_assert(llm_policy_strips(&pol, "mcp_toolset"));
	json_decref(j);
}
END_TEST

/* Input a body names but does not carry, per dialect; inline data is no such input. */
START_TEST(test_remote_input)
{
	static const struct {
		enum llm_route route;
		const char *body;
		bool remote;
	} cases[] = {
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":\"x\",\"previous_response_id\":\"r\"}", true},
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":\"x\",\"previous_response_id\":null}", false},
		{LLM_ROUTE_RESPONSES, "{\"model\":\"g\",\"conversation\":{\"id\":\"c\"}}", true},
		{LLM_ROUTE_RESPONSES, "{\"model\":\"g\",\"prompt\":{\"id\":\"p\"}}", true},
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":[{\"type\":\"item_reference\",\"id\":\"i\"}]}", true},
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_"
		 "image\",\"image_url\":\"https://a/b.png\"}]}]}",
		 true},
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_"
		 "image\",\"image_url\":\"data:image/png;base64,AA==\"}]}]}",
		 false},
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_"
		 "file\",\"file_id\":\"f\"}]}]}",
		 true},
		{LLM_ROUTE_RESPONSES,
		 "{\"model\":\"g\",\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_"
		 "file\",\"file_data\":\"AA==\",\"filename\":\"a\"}]}]}",
		 false},
		{LLM_ROUTE_CHAT,
		 "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_"
		 "url\",\"image_url\":{\"url\":\"http://a/b\"}}]}]}",
		 true},
		{LLM_ROUTE_CHAT,
		 "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_"
		 "url\",\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]}]}",
		 false},
		{LLM_ROUTE_CHAT,
		 "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
		 "\"file\",\"file\":{\"file_id\":\"f\"}}]}]}",
		 true},
		{LLM_ROUTE_CHAT,
		 "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"https://a/b\"}]}",
		 false},
		{LLM_ROUTE_MESSAGES,
		 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
		 "\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://a/b\"}}]}]}",
		 true},
		{LLM_ROUTE_MESSAGES,
		 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
		 "\"type\":\"document\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
		 true},
		{LLM_ROUTE_MESSAGES,
		 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
		 "\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\","
		 "\"source\":{\"type\":\"url\",\"url\":\"https://a\"}}]}]}]}",
		 true},
		{LLM_ROUTE_MESSAGES,
		 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{"
		 "\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/"
		 "png\",\"data\":\"AA==\"}}]}]}",
		 false},
		{LLM_ROUTE_MESSAGES,
		 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"assistant\","
		 "\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"x\",\"input\":{"
		 "\"source\":{\"type\":\"url\"},\"file_id\":\"f\"}}]}]}",
		 false},
		{LLM_ROUTE_MESSAGES,
		 "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[],\"container\":\"c\"}", true},
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct llm_request_info info;
		int r;
		json_t *j = apply(cases[i].route, cases[i].body, &info, &r);
		ck_assert_msg(r == 0, "case %zu: %d", i, r);
		ck_assert_msg(info.remote_input == cases[i].remote, "case %zu: remote %d", i,
			      info.remote_input);
		ck_assert(!info.remote_input || info.remote_what);
		json_decref(j);
	}
}
END_TEST

START_TEST(test_gemini_remote_input)
{
	struct orch_error err = {0};
	struct llm_request_info info;
	char *out = NULL;
	size_t len;
	const char *fd = "{\"contents\":[{\"parts\":[{\"fileData\":{\"fileUri\":\"gs://b/f\"}}]}]}";
	const char *cc = "{\"cachedContent\":\"c/1\",\"contents\":[]}";
	const char *inl = "{\"contents\":[{\"parts\":[{\"inlineData\":{\"data\":\"AA==\"}}]}]}";

	ck_assert_int_eq(llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_GENERATE,
					       "/v1beta/models/g:generateContent", fd, strlen(fd),
					       &out, &len, &info, &err),
			 0);
	ck_assert(info.remote_input);
	free(out);
	ck_assert_int_eq(llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_GENERATE,
					       "/v1beta/models/g:generateContent", cc, strlen(cc),
					       &out, &len, &info, &err),
			 0);
	ck_assert(info.remote_input);
	free(out);
	ck_assert_int_eq(llm_policy_apply_path(&pol, LLM_ROUTE_GEMINI_GENERATE,
					       "/v1beta/models/g:generateContent", inl, strlen(inl),
					       &out, &len, &info, &err),
			 0);
	ck_assert(!info.remote_input);
	free(out);
}
END_TEST

START_TEST(test_strip_prefix)
{
	ck_assert(llm_policy_strips(&pol, "web_search"));
	ck_assert(llm_policy_strips(&pol, "web_search_20250305"));
	ck_assert(!llm_policy_strips(&pol, "web_searcher"));
	ck_assert(!llm_policy_strips(&pol, "bash_20250124"));
	ck_assert(!llm_policy_strips(&pol, NULL));
	ck_assert_int_eq(llm_policy_add_strip(&pol, "bash", NULL), 0);
	ck_assert(llm_policy_strips(&pol, "bash_20250124"));
	ck_assert_int_eq(llm_policy_add_strip(&pol, "", NULL), -EINVAL);
}
END_TEST

START_TEST(test_invalid_bodies)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"model\":\"m\"",
		"{\"model\":\"m\",\"model\":\"n\",\"max_tokens\":1,\"messages\":[]}",
		"{\"model\":\"m\",\"messages\":[]}",
		"{\"model\":\"m\",\"max_tokens\":0,\"messages\":[]}",
		"{\"model\":\"m\",\"max_tokens\":\"9\",\"messages\":[]}",
		"{\"model\":\"m\",\"max_tokens\":1}",
		"{\"model\":\"bad model\",\"max_tokens\":1,\"messages\":[]}",
		"{\"model\":7,\"max_tokens\":1,\"messages\":[]}",
		"{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],\"stream\":\"yes\"}",
		"{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],\"tools\":{}}",
		"{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],\"tools\":[1]}",
		"{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],\"tools\":[{\"type\":3}]}",
	};
	struct llm_request_info info;
	int r;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		json_t *j = apply(LLM_ROUTE_MESSAGES, bad[i], &info, &r);
		ck_assert_msg(r == -EINVAL, "case %zu: %d", i, r);
		ck_assert_ptr_null(j);
	}
}
END_TEST

START_TEST(test_too_large)
{
	struct orch_error err = {0};
	struct llm_request_info info;
	char *out = NULL;
	size_t len;
	char *big;

	pol.max_request_bytes = 1024;
	big = calloc(1, 2048);
	memset(big, ' ', 2047);
	ck_assert_int_eq(
		llm_policy_apply(&pol, LLM_ROUTE_MESSAGES, big, 2047, &out, &len, &info, &err),
		-EMSGSIZE);
	ck_assert_ptr_nonnull(strstr(err.msg, "exceeds"));
	free(big);
}
END_TEST

START_TEST(test_openai)
{
	struct llm_request_info info;
	int r;
	json_t *j = apply(LLM_ROUTE_CHAT,
			  "{\"model\":\"gpt-4.1\",\"stream\":true,\"messages\":[],"
			  "\"web_search_options\":{},"
			  "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
			  &info, &r);

	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(info.api, LLM_API_OPENAI);
	ck_assert(info.stream);
	ck_assert_int_eq(info.max_tokens, 32000);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "max_completion_tokens")), 32000);
	ck_assert(json_is_true(
		json_object_get(json_object_get(j, "stream_options"), "include_usage")));
	ck_assert_ptr_null(json_object_get(j, "web_search_options"));
	ck_assert_int_eq(json_array_size(json_object_get(j, "tools")), 1);
	json_decref(j);

	j = apply(LLM_ROUTE_CHAT,
		  "{\"model\":\"gpt-4.1\",\"max_tokens\":100,\"messages\":[],"
		  "\"stream_options\":{\"include_usage\":false},\"stream\":true}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(info.max_tokens, 100);
	ck_assert_ptr_null(json_object_get(j, "max_completion_tokens"));
	ck_assert(json_is_true(
		json_object_get(json_object_get(j, "stream_options"), "include_usage")));
	json_decref(j);

	j = apply(LLM_ROUTE_CHAT, "{\"model\":\"gpt-4.1\",\"n\":2,\"messages\":[]}", &info, &r);
	ck_assert_int_eq(r, -EINVAL);
	j = apply(LLM_ROUTE_CHAT,
		  "{\"model\":\"gpt-4.1\",\"max_tokens\":50,\"max_completion_tokens\":900000,"
		  "\"messages\":[]}",
		  &info, &r);
	ck_assert_int_eq(r, 0);
	ck_assert_int_eq(info.max_tokens, 32000);
	json_decref(j);
}
END_TEST

START_TEST(test_count_tokens_and_models)
{
	struct llm_request_info info;
	int r;
	json_t *j = apply(LLM_ROUTE_COUNT_TOKENS,
			  "{\"model\":\"m\",\"messages\":[],\"stream\":true,"
			  "\"tools\":[{\"type\":\"web_fetch\",\"name\":\"web_fetch\"}]}",
			  &info, &r);
	struct orch_error err = {0};
	char *out = (char *)1;
	size_t len = 1;

	ck_assert_int_eq(r, 0);
	ck_assert(!info.stream);
	ck_assert_int_eq(info.max_tokens, 0);
	ck_assert_ptr_null(json_object_get(j, "tools"));
	json_decref(j);
	ck_assert_int_eq(llm_policy_apply(&pol, LLM_ROUTE_MODELS, NULL, 0, &out, &len, &info, &err),
			 0);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(len, 0);
}
END_TEST

START_TEST(test_prices)
{
	struct llm_price p;
	struct llm_usage u = {.input = 1000, .output = 100};
	int64_t v;

	ck_assert_int_eq(llm_usd_to_micro(3.0, &p.in_micro_per_mtok), 0);
	ck_assert_int_eq(llm_usd_to_micro(15.0, &p.out_micro_per_mtok), 0);
	ck_assert_int_eq(p.in_micro_per_mtok, 3000000);
	/* 1000 * $3/M + 100 * $15/M = $0.003 + $0.0015 */
	ck_assert_int_eq(llm_cost_micro(&p, &u), 4500);
	u = (struct llm_usage){.cache_write = 1000, .cache_read = 1000};
	ck_assert_int_eq(llm_cost_micro(&p, &u), 3750 + 300);
	u = (struct llm_usage){.input = 1};
	ck_assert_int_eq(llm_cost_micro(&p, &u), 3); /* $0.000003 */
	ck_assert_int_eq(llm_usd_to_micro(0.15, &v), 0);
	p.in_micro_per_mtok = v;
	ck_assert_int_eq(llm_cost_micro(&p, &u), 1); /* 0.15 micro rounds up */
	ck_assert_int_eq(llm_cost_worst_micro(&p, 0, 0), 0);
	p = (struct llm_price){3000000, 15000000};
	ck_assert_int_eq(llm_cost_worst_micro(&p, 1000, 1000), 3750 + 15000);
	ck_assert_int_eq(llm_usd_to_micro(-1, &v), -ERANGE);
	ck_assert_int_eq(llm_usd_to_micro(1e300, &v), -ERANGE);
	u = (struct llm_usage){.input = INT64_MAX, .output = INT64_MAX};
	ck_assert_int_eq(llm_cost_micro(&p, &u), INT64_MAX);
}
END_TEST

START_TEST(test_error_shapes)
{
	json_t *a = llm_error_json(LLM_API_ANTHROPIC, 429, NULL, "slow down");
	json_t *o = llm_error_json(LLM_API_OPENAI, 403, "insufficient_quota", "no money");

	ck_assert_str_eq(json_string_value(json_object_get(a, "type")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "error"), "type")),
			 "rate_limit_error");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "error"), "message")),
			 "slow down");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
			 "insufficient_quota");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "error"), "message")),
			 "no money");
	ck_assert_str_eq(llm_anthropic_error_type(403), "permission_error");
	json_decref(a);
	json_decref(o);
}
END_TEST

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mutated bodies: either a clear error or a rewritten body that is valid JSON and still
 * within the cap. */
START_TEST(test_mutations)
{
	static const char base[] =
		"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":99999,\"stream\":true,"
		"\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":"
		"\"web_search_20250305\",\"name\":\"web_search\"},{\"name\":\"t\"}],"
		"\"tool_choice\":{\"type\":\"tool\",\"name\":\"web_search\"}}";
	static const char charset[] = "{}[]\":,0123456789abc_\\ \x01\xff";
	char buf[sizeof(base)];

	for (int it = 0; it < 5000; it++) {
		struct orch_error err = {0};
		struct llm_request_info info;
		char *out = NULL;
		size_t len = 0;
		int r;

		memcpy(buf, base, sizeof(base));
		for (int m = 0; m < 1 + it % 4; m++)
			buf[next_rand() % (sizeof(base) - 1)] =
				charset[next_rand() % (sizeof(charset) - 1)];
		r = llm_policy_apply(&pol, it % 2 ? LLM_ROUTE_MESSAGES : LLM_ROUTE_CHAT, buf,
				     sizeof(base) - 1, &out, &len, &info, &err);
		if (r < 0) {
			ck_assert_str_ne(err.msg, "");
			continue;
		}
		json_t *j = json_loadb(out, len, 0, NULL);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_le(info.max_tokens, pol.max_tokens_cap);
		size_t i;
		json_t *t;
		json_array_foreach(json_object_get(j, "tools"), i, t) ck_assert(
			!llm_policy_strips(&pol, json_string_value(json_object_get(t, "type"))));
		json_decref(j);
		free(out);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("llm_policy");
	TCase *tc = tcase_create("policy");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_routes);
	tcase_add_test(tc, test_responses);
	tcase_add_test(tc, test_gemini);
	tcase_add_test(tc, test_anthropic_strip_and_cap);
	tcase_add_test(tc, test_anthropic_only_server_tools);
	tcase_add_test(tc, test_strip_prefix);
	tcase_add_test(tc, test_mcp_always);
	tcase_add_test(tc, test_remote_input);
	tcase_add_test(tc, test_gemini_remote_input);
	tcase_add_test(tc, test_invalid_bodies);
	tcase_add_test(tc, test_too_large);
	tcase_add_test(tc, test_openai);
	tcase_add_test(tc, test_count_tokens_and_models);
	tcase_add_test(tc, test_prices);
	tcase_add_test(tc, test_error_shapes);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
