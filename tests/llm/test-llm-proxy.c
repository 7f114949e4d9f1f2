/* SPDX-License-Identifier: Apache-2.0 */
/* Integration test of the host proxy pieces: llm_proxy with real libcurl (multi interface
 * on orch_loop), a real SQLite ledger, against the fake upstream started here. Checks both
 * APIs streamed and not, usage settled in the ledger, the real key sent upstream and never
 * shown to the agent, stripped tools, refusals (model, size, budget) in the provider's
 * shape with nothing forwarded, concurrent requests against a small budget, a disconnect
 * mid-stream that is still billed, upstream errors and an unreachable upstream.
 *   test-llm-proxy <path to llm-fake-upstream>
 *   test-llm-proxy <path to llm-fake-upstream> tls   HTTPS upstreams: a certificate the
 *                                                    client trusts, one it does not, and
 *                                                    one for another host name */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "check-run.h"
#include "cleanup.h"
#include "loop.h"
#include "llm-ledger.h"
#include "sqlite-util.h"
#include "llm-proxy.h"
#include "llm-test-util.h"

static const char *fake_path;
static unsigned fake_port;
static char tmpdir[64], keypath[128], recpath[128];

struct fixture {
	struct orch_loop *loop;
	sqlite3 *db;
	struct llm_config cfg;
	struct llm_proxy *proxy;
	struct orch_timer *guard;
};
static struct fixture fx;

struct result {
	bool done;
	int status;
	json_t *headers;
	char *body;
	size_t len;
	int chunks;
	int detach_after;
	struct llm_exchange *ex;
	struct llm_outcome o;
	char settled[32];
};

static void on_guard(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	orch_loop_quit(loop);
}

static void setup(void)
{
	struct orch_error err = {0};
	char url[64];

	ck_assert_int_eq(orch_loop_new(&fx.loop), 0);
	ck_assert_int_eq(sqlite3_open(":memory:", &fx.db), SQLITE_OK);
	ck_assert_int_eq(store_migrate(fx.db, &err), 0);
	ck_assert_int_eq(llm_config_init(&fx.cfg), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", fake_port);
	ck_assert_int_eq(llm_config_add_upstream(&fx.cfg, "anthropic", LLM_API_ANTHROPIC, url,
						 keypath, &err),
			 0);
	ck_assert_int_eq(
		llm_config_add_upstream(&fx.cfg, "openai", LLM_API_OPENAI, url, keypath, &err), 0);
	ck_assert_int_eq(llm_config_add_upstream(&fx.cfg, "down", LLM_API_ANTHROPIC,
						 "http://127.0.0.1:1", keypath, &err),
			 0);
	ck_assert_int_eq(
		llm_config_add_model(&fx.cfg, "claude-sonnet-4-5", "anthropic", 3, 15, &err), 0);
	ck_assert_int_eq(llm_config_add_model(&fx.cfg, "gpt-4.1", "openai", 2, 8, &err), 0);
	ck_assert_int_eq(llm_config_add_model(&fx.cfg, "claude-down", "down", 3, 15, &err), 0);
	ck_assert_int_eq(
		llm_config_add_upstream(&fx.cfg, "gemini", LLM_API_GEMINI, url, keypath, &err), 0);
	ck_assert_int_eq(llm_config_add_model(&fx.cfg, "gemini-2.5-pro", "gemini", 1, 10, &err), 0);
	fx.cfg.policy.max_request_bytes = 64 * 1024;
	fx.cfg.policy.max_tokens_cap = 4096;
	ck_assert_int_eq(llm_config_load_keys(&fx.cfg, &err), 0);
	ck_assert_int_eq(llm_proxy_new(fx.loop, fx.db, &fx.cfg, &fx.proxy, &err), 0);
	ck_assert_int_eq(orch_timer_add(fx.loop, 30000, 0, on_guard, NULL, &fx.guard), 0);
}

static void teardown(void)
{
	llm_proxy_free(fx.proxy);
	orch_timer_free(fx.guard);
	llm_config_done(&fx.cfg);
	sqlite3_close(fx.db);
	orch_loop_free(fx.loop);
}

static void s_head(void *data, int status, json_t *headers)
{
	struct result *r = data;

	r->status = status;
	r->headers = json_deep_copy(headers);
}

static bool s_body(void *data, const void *buf, size_t len, bool can_pause)
{
	struct result *r = data;

	r->body = realloc(r->body, r->len + len + 1);
	memcpy(r->body + r->len, buf, len);
	r->len += len;
	r->body[r->len] = '\0';
	r->chunks++;
	if (r->detach_after && r->chunks == r->detach_after)
		llm_exchange_detach(r->ex);
	return false;
}

static void s_done(void *data, const struct llm_outcome *o)
{
	struct result *r = data;

	r->done = true;
	r->o = *o;
	r->o.msg = NULL;
	r->o.model = NULL;
	snprintf(r->settled, sizeof(r->settled), "%s", o->settled);
	r->o.settled = r->settled;
}

static const struct llm_sink sink = {s_head, s_body, s_done};

static void result_free(struct result *r)
{
	json_decref(r->headers);
	free(r->body);
}

static size_t record_count(void)
{
	_cleanup_free_ char *s = llm_test_read_file(recpath, NULL);
	size_t n = 0;

	for (char *p = s; p && (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

/* The last request the fake upstream saw. */
static json_t *last_record(void)
{
	_cleanup_free_ char *s = llm_test_read_file(recpath, NULL);
	char *last, *end;

	ck_assert_ptr_nonnull(s);
	end = s + strlen(s) - 1; /* the final '\n' */
	*end = '\0';
	last = strrchr(s, '\n');
	return json_loads(last ? last + 1 : s, 0, NULL);
}

static void start_beta(struct result *r, const char *agent, const char *task, const char *method,
		       const char *path, const char *body, const char *beta)
{
	_cleanup_json_ json_t *h =
		json_pack("{s:s, s:s, s:s}", "anthropic-version", "2023-06-01", "x-api-key",
			  "placeholder-key", "authorization", "Bearer placeholder-key");
	struct llm_call call = {
		.agent = agent,
		.task = task,
		.method = method,
		.path = path,
		.headers = h,
		.body = body,
		.body_len = body ? strlen(body) : 0,
	};

	if (beta)
		json_object_set_new(h, "anthropic-beta", json_string(beta));
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(llm_proxy_start(fx.proxy, &call, &sink, r, &r->ex), 0);
}

static void start(struct result *r, const char *agent, const char *task, const char *method,
		  const char *path, const char *body)
{
	start_beta(r, agent, task, method, path, body, NULL);
}

static void run_until_idle(void)
{
	while (llm_proxy_inflight(fx.proxy) > 0)
		ck_assert_int_ge(orch_loop_run_once(fx.loop, 1000), 0);
}

/* Runs one call to completion and checks that the key never reached the agent. */
static void call(struct result *r, const char *agent, const char *task, const char *method,
		 const char *path, const char *body)
{
	_cleanup_free_ char *h = NULL;

	start(r, agent, task, method, path, body);
	run_until_idle();
	ck_assert(r->done);
	h = r->headers ? json_dumps(r->headers, 0) : NULL;
	ck_assert(!r->body || !strstr(r->body, LLM_TEST_KEY));
	ck_assert(!h || !strstr(h, LLM_TEST_KEY));
}

static int64_t spent(const char *scope, const char *id)
{
	struct llm_budget b = {0};

	llm_ledger_get(fx.db, scope, id, &b, NULL);
	ck_assert_int_eq(b.reserved_micro, 0);
	return b.spent_micro;
}

static json_t *body_json(const struct result *r)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);

	ck_assert_msg(j != NULL, "body is not JSON: %s", r->body);
	return j;
}

#define ANTHROPIC_BODY(extra)                                                                    \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1000,\"messages\":[{\"role\":\"user\"," \
	"\"content\":\"Say hello\"}]" extra "}"

START_TEST(test_anthropic_stream)
{
	struct result r;
	_cleanup_json_ json_t *rec = NULL;
	json_t *hdrs, *tools;
	int64_t cost;

	call(&r, "vm/0", "t-1", "POST", "/v1/messages",
	     ANTHROPIC_BODY(",\"stream\":true,\"tools\":[{\"type\":\"web_search_20250305\","
			    "\"name\":\"web_search\",\"max_uses\":5},{\"name\":\"get_weather\","
			    "\"input_schema\":{\"type\":\"object\"}}]"));
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(json_string_value(json_object_get(r.headers, "content-type")),
			 "text/event-stream");
	ck_assert_ptr_nonnull(strstr(r.body, "event: message_start"));
	ck_assert_ptr_nonnull(strstr(r.body, "event: message_stop"));
	ck_assert_int_eq(r.o.code, 0);
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 12);
	ck_assert_int_gt(r.o.usage.input, 0);
	cost = r.o.usage.input * 3 + 12 * 15;
	ck_assert_int_eq(r.o.cost_micro, cost);
	ck_assert_int_eq(spent("agent", "vm/0"), cost);
	ck_assert_int_eq(spent("task", "t-1"), cost);

	rec = last_record();
	hdrs = json_object_get(rec, "headers");
	ck_assert_str_eq(json_string_value(json_object_get(hdrs, "x-api-key")), LLM_TEST_KEY);
	ck_assert_ptr_null(json_object_get(hdrs, "authorization"));
	ck_assert_ptr_null(json_object_get(hdrs, "Authorization"));
	ck_assert_str_eq(json_string_value(json_object_get(hdrs, "anthropic-version")),
			 "2023-06-01");
	json_t *sent = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
	tools = json_object_get(sent, "tools");
	ck_assert_int_eq(json_array_size(tools), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(tools, 0), "name")),
			 "get_weather");
	json_decref(sent);
	result_free(&r);
}
END_TEST

START_TEST(test_anthropic_json)
{
	struct result r;
	_cleanup_json_ json_t *j = NULL;

	call(&r, "vm/0", NULL, "POST", "/v1/messages", ANTHROPIC_BODY(""));
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "message");
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 12);
	ck_assert_int_eq(spent("agent", "vm/0"), r.o.cost_micro);
	result_free(&r);

	call(&r, "vm/0", NULL, "POST", "/v1/messages/count_tokens",
	     "{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.settled, "free");
	ck_assert_ptr_nonnull(strstr(r.body, "input_tokens"));
	result_free(&r);

	call(&r, "vm/0", NULL, "GET", "/v1/models", NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"claude-sonnet-4-5\""));
	ck_assert_ptr_nonnull(strstr(r.body, "\"gpt-4.1\""));
	result_free(&r);
}
END_TEST

START_TEST(test_openai)
{
	struct result r;
	_cleanup_json_ json_t *rec = NULL, *sent = NULL, *j = NULL;
	json_t *hdrs;

	call(&r, "vm/1", "t-2", "POST", "/v1/chat/completions",
	     "{\"model\":\"gpt-4.1\",\"stream\":true,\"messages\":[{\"role\":\"user\","
	     "\"content\":\"hi\"}]}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "data: [DONE]"));
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 12);
	ck_assert_int_eq(r.o.cost_micro, r.o.usage.input * 2 + 12 * 8);
	ck_assert_int_eq(spent("task", "t-2"), r.o.cost_micro);
	rec = last_record();
	hdrs = json_object_get(rec, "headers");
	ck_assert_str_eq(json_string_value(json_object_get(hdrs, "Authorization")),
			 "Bearer " LLM_TEST_KEY);
	sent = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
	ck_assert(json_is_true(
		json_object_get(json_object_get(sent, "stream_options"), "include_usage")));
	ck_assert_int_eq(json_integer_value(json_object_get(sent, "max_completion_tokens")), 4096);
	result_free(&r);

	call(&r, "vm/1", "t-2", "POST", "/v1/chat/completions",
	     "{\"model\":\"gpt-4.1\",\"max_tokens\":10,\"messages\":[]}");
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion");
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 10);
	result_free(&r);
}
END_TEST

/* The Responses API (Codex): streamed and not, settled on the usage of the final
 * response.completed event / the answer's usage, with the real key and the capped bound. */
START_TEST(test_openai_responses)
{
	struct result r;
	_cleanup_json_ json_t *rec = NULL, *sent = NULL, *j = NULL;

	call(&r, "vm/1", "t-r", "POST", "/v1/responses",
	     "{\"model\":\"gpt-4.1\",\"stream\":true,\"input\":\"hi\"}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "event: response.completed"));
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 12);
	ck_assert_int_gt(r.o.usage.input, 0);
	ck_assert_int_eq(r.o.cost_micro, r.o.usage.input * 2 + 12 * 8);
	ck_assert_int_eq(spent("task", "t-r"), r.o.cost_micro);
	rec = last_record();
	ck_assert_str_eq(json_string_value(
				 json_object_get(json_object_get(rec, "headers"), "Authorization")),
			 "Bearer " LLM_TEST_KEY);
	sent = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(sent, "max_output_tokens")), 4096);
	result_free(&r);

	call(&r, "vm/1", "t-r", "POST", "/v1/responses",
	     "{\"model\":\"gpt-4.1\",\"max_output_tokens\":10,\"input\":\"hi\"}");
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "response");
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 10);
	result_free(&r);
}
END_TEST

/* The Gemini API (Gemini CLI): the model from the path, the key as x-goog-api-key, a
 * stream asked for as SSE (alt=sse), billed on usageMetadata; hosted tools removed;
 * countTokens free; errors in Gemini's shape. */
START_TEST(test_gemini)
{
	struct result r;
	_cleanup_json_ json_t *rec = NULL, *sent = NULL, *j = NULL;
	static const char body[] =
		"{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi\"}]}],"
		"\"tools\":[{\"googleSearch\":{}},{\"functionDeclarations\":[{\"name\":\"ls\"}],"
		"\"codeExecution\":{}}]}";

	call(&r, "vm/1", "t-g", "POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
	     body);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"finishReason\":\"STOP\""));
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 12);
	ck_assert_int_gt(r.o.usage.input, 0);
	ck_assert_int_eq(r.o.cost_micro, r.o.usage.input * 1 + 12 * 10);
	ck_assert_int_eq(spent("task", "t-g"), r.o.cost_micro);
	rec = last_record();
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(rec, "headers"),
							   "x-goog-api-key")),
			 LLM_TEST_KEY);
	sent = json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_object_get(sent, "generationConfig"), "maxOutputTokens")),
			 4096);
	ck_assert_uint_eq(json_array_size(json_object_get(sent, "tools")), 1);
	ck_assert_ptr_nonnull(json_object_get(json_array_get(json_object_get(sent, "tools"), 0),
					      "functionDeclarations"));
	ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(sent, "tools"), 0),
					   "codeExecution"));
	result_free(&r);

	call(&r, "vm/1", "t-g", "POST", "/v1beta/models/gemini-2.5-pro:generateContent",
	     "{\"contents\":[],\"generationConfig\":{\"maxOutputTokens\":10}}");
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_ptr_nonnull(json_object_get(j, "usageMetadata"));
	ck_assert_str_eq(r.settled, "ok");
	ck_assert_int_eq(r.o.usage.output, 10);
	result_free(&r);

	call(&r, "vm/1", "t-g", "POST", "/v1beta/models/gemini-2.5-pro:countTokens",
	     "{\"contents\":[]}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "totalTokens"));
	result_free(&r);

	/* The model list in Gemini's shape, Gemini models only. */
	call(&r, "vm/1", NULL, "GET", "/v1beta/models", NULL);
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "\"name\":\"models/gemini-2.5-pro\""));
	ck_assert_ptr_null(strstr(r.body, "claude-sonnet-4-5"));
	result_free(&r);

	/* A long model name (the path is longer than the other APIs' paths): judged by the
	 * allowlist, not refused as an unknown endpoint. */
	call(&r, "vm/1", "t-g", "POST",
	     "/v1beta/models/gemini-2.5-flash-preview-09-2025-with-a-much-longer-name-than-"
	     "usual:streamGenerateContent",
	     "{\"contents\":[]}");
	ck_assert_int_eq(r.status, 403);
	result_free(&r);

	/* A model not in the allowlist, in Gemini's error shape. */
	call(&r, "vm/1", "t-g", "POST", "/v1beta/models/gemini-9-ultra:generateContent",
	     "{\"contents\":[]}");
	ck_assert_int_eq(r.status, 403);
	json_decref(j);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "status")),
			 "PERMISSION_DENIED");
	result_free(&r);
}
END_TEST

START_TEST(test_refusals_forward_nothing)
{
	struct result r;
	_cleanup_json_ json_t *j = NULL, *o = NULL;
	size_t before = record_count();
	char *big;

	call(&r, "vm/2", NULL, "POST", "/v1/messages",
	     "{\"model\":\"claude-opus-4-1\",\"max_tokens\":10,\"messages\":[]}");
	ck_assert_int_eq(r.status, 403);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
			 "permission_error");
	ck_assert_ptr_nonnull(
		strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
		       "claude-opus-4-1"));
	result_free(&r);

	big = malloc(100 * 1024);
	memset(big, 'a', 100 * 1024 - 1);
	big[100 * 1024 - 1] = '\0';
	memcpy(big, "{\"model\":\"gpt-4.1\",\"messages\":[],\"x\":\"", 38);
	call(&r, "vm/2", NULL, "POST", "/v1/chat/completions", big);
	free(big);
	ck_assert_msg(r.status == 413, "%d %s", r.status, r.body);
	o = body_json(&r);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(o, "error"), "message"));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "error"), "code")),
			 "request_too_large");
	result_free(&r);

	call(&r, "vm/2", NULL, "POST", "/v1/files", "{}");
	ck_assert_int_eq(r.status, 404);
	result_free(&r);
	call(&r, "vm/2", NULL, "POST", "/v1/messages", "{\"model\":\"claude-sonnet-4-5\"}");
	ck_assert_int_eq(r.status, 400);
	ck_assert_ptr_nonnull(strstr(r.body, "invalid_request_error"));
	result_free(&r);

	/* A budget smaller than the worst case: refused before the upstream. */
	ck_assert_int_eq(llm_ledger_set_limit(fx.db, "agent", "vm/3", 100, 0, NULL), 0);
	call(&r, "vm/3", NULL, "POST", "/v1/messages", ANTHROPIC_BODY(""));
	ck_assert_int_eq(r.status, 403);
	ck_assert_ptr_nonnull(strstr(r.body, "permission_error"));
	ck_assert_ptr_nonnull(strstr(r.body, "exhausted"));
	result_free(&r);
	call(&r, "vm/3", NULL, "POST", "/v1/chat/completions",
	     "{\"model\":\"gpt-4.1\",\"messages\":[]}");
	ck_assert_int_eq(r.status, 403);
	ck_assert_ptr_nonnull(strstr(r.body, "insufficient_quota"));
	result_free(&r);

	ck_assert_int_eq(record_count(), before);
	ck_assert_int_eq(spent("agent", "vm/3"), 0);
}
END_TEST

#define N_CONCURRENT 20

START_TEST(test_concurrent_budget)
{
	static struct result r[N_CONCURRENT];
	const char *body =
		ANTHROPIC_BODY(",\"stream\":true,\"metadata\":{\"user_id\":\"fake:latency=200\"}");
	struct llm_budget b;
	int64_t worst;
	int ok = 0, refused = 0;

	/* Worst case of one request: its bytes as input at 1.25 x $3, 1000 output at $15. */
	worst = (int64_t)strlen(body) * 375 / 100 + 1000 * 15;
	ck_assert_int_eq(
		llm_ledger_set_limit(fx.db, "task", "t-budget", worst * 5 + worst / 2, 0, NULL), 0);
	for (int i = 0; i < N_CONCURRENT; i++)
		start(&r[i], "vm/4", "t-budget", "POST", "/v1/messages", body);
	run_until_idle();
	for (int i = 0; i < N_CONCURRENT; i++) {
		ck_assert(r[i].done);
		if (r[i].status == 200) {
			ck_assert_str_eq(r[i].settled, "ok");
			ok++;
		} else {
			ck_assert_int_eq(r[i].status, 429);
			ck_assert_ptr_nonnull(strstr(r[i].body, "rate_limit_error"));
			ck_assert_ptr_nonnull(strstr(r[i].body, "in flight"));
			refused++;
		}
		result_free(&r[i]);
	}
	ck_assert_int_eq(ok, 5);
	ck_assert_int_eq(refused, 15);
	ck_assert_int_eq(llm_ledger_get(fx.db, "task", "t-budget", &b, NULL), 0);
	ck_assert_int_le(b.spent_micro, b.limit_micro);
	ck_assert_int_eq(b.reserved_micro, 0);
}
END_TEST

/* anthropic-beta: only the configured values reach the upstream (the MCP connector's and
 * the Files API's betas are not among the defaults); none left, no header. */
START_TEST(test_betas_filtered)
{
	struct result r;
	json_t *rec, *h;

	start_beta(&r, "vm/1", "t-b", "POST", "/v1/messages", ANTHROPIC_BODY(""),
		   "interleaved-thinking-2025-05-14, mcp-client-2025-04-04,files-api-2025-04-14,"
		   "claude-code-20250219");
	run_until_idle();
	ck_assert_int_eq(r.status, 200);
	result_free(&r);
	rec = last_record();
	h = json_object_get(rec, "headers");
	ck_assert_str_eq(json_string_value(json_object_get(h, "anthropic-beta")),
			 "interleaved-thinking-2025-05-14,claude-code-20250219");
	json_decref(rec);
	start_beta(&r, "vm/1", "t-b", "POST", "/v1/messages", ANTHROPIC_BODY(""),
		   "mcp-client-2025-04-04");
	run_until_idle();
	ck_assert_int_eq(r.status, 200);
	result_free(&r);
	rec = last_record();
	ck_assert_ptr_null(json_object_get(json_object_get(rec, "headers"), "anthropic-beta"));
	json_decref(rec);
}
END_TEST

/* Requests whose input is not all in their body, one of each kind the policy knows. */
static const struct {
	const char *path, *body;
} remote_kinds[] = {
#define RESP(x) "{\"model\":\"gpt-4.1\",\"max_output_tokens\":10," x "}"
	{"/v1/responses", RESP("\"input\":\"go on\",\"previous_response_id\":\"resp_1\"")},
	{"/v1/responses", RESP("\"conversation\":\"conv_1\",\"input\":\"x\"")},
	{"/v1/responses", RESP("\"prompt\":{\"id\":\"pmpt_1\"},\"input\":\"x\"")},
	{"/v1/responses", RESP("\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
			       "\"input_file\",\"file_url\":\"https://x.example/a.pdf\"}]}]")},
#undef RESP
	{"/v1/chat/completions",
	 "{\"model\":\"gpt-4.1\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":"
	 "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.example/a.png\"}}]}]}"},
	{"/v1/messages",
	 "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
	 "\"content\":[{\"type\":\"document\",\"source\":{\"type\":\"url\",\"url\":"
	 "\"https://x.example/a.pdf\"}}]}]}"},
	{"/v1beta/models/gemini-2.5-pro:generateContent",
	 "{\"cachedContent\":\"cachedContents/1\",\"generationConfig\":{\"maxOutputTokens\":10},"
	 "\"contents\":[{\"parts\":[{\"text\":\"x\"}]}]}"},
	{"/v1beta/models/gemini-2.5-pro:generateContent",
	 "{\"generationConfig\":{\"maxOutputTokens\":10},\"contents\":[{\"parts\":[{"
	 "\"fileData\":{\"fileUri\":\"https://x.example/f\",\"mimeType\":\"text/plain\"}}]}]}"},
};

START_TEST(test_remote_input_refused)
{
	size_t before = record_count();

	for (size_t i = 0; i < ELEMENTSOF(remote_kinds); i++) {
		struct result r;
		call(&r, "vm/1", "t-rem", "POST", remote_kinds[i].path, remote_kinds[i].body);
		ck_assert_msg(r.status == 400, "%zu: %d %s", i, r.status, r.body);
		ck_assert_ptr_nonnull(strstr(r.body, "llm.allow_remote_input"));
		result_free(&r);
	}
	ck_assert_int_eq(record_count(), before);
	ck_assert_int_eq(spent("task", "t-rem"), 0);
}
END_TEST

/* Allowed, such a request is reserved at the model's context window: 20 concurrent ones
 * of each kind against a budget of a few cents never overshoot it. (The fake upstream
 * bills what a request only names as 1,900 input tokens; reserved at its body's size,
 * about 20 would be admitted and the budget overshot.) */
START_TEST(test_remote_input_budget)
{
	static struct result r[N_CONCURRENT];

	fx.cfg.allow_remote_input = true;
	for (size_t i = 0; i < fx.cfg.n_models; i++)
		fx.cfg.models[i].context_window = 2000;
	for (size_t k = 0; k < ELEMENTSOF(remote_kinds); k++) {
		char task[32];
		struct llm_budget b;
		int ok = 0;
		snprintf(task, sizeof(task), "t-remote-%zu", k);
		ck_assert_int_eq(llm_ledger_set_limit(fx.db, "task", task, 50000, 0, NULL), 0);
		for (int i = 0; i < N_CONCURRENT; i++) {
			char agent[16];
			snprintf(agent, sizeof(agent), "vm/%d", i % 8);
			start(&r[i], agent, task, "POST", remote_kinds[k].path,
			      remote_kinds[k].body);
		}
		run_until_idle();
		for (int i = 0; i < N_CONCURRENT; i++) {
			ck_assert(r[i].done);
			ok += r[i].status == 200;
			result_free(&r[i]);
		}
		ck_assert_int_eq(llm_ledger_get(fx.db, "task", task, &b, NULL), 0);
		ck_assert_msg(ok >= 1, "kind %zu: none admitted", k);
		ck_assert_msg(b.spent_micro <= b.limit_micro,
			      "kind %zu: %d admitted spent %lld of %lld", k, ok,
			      (long long)b.spent_micro, (long long)b.limit_micro);
		ck_assert_int_eq(b.reserved_micro, 0);
	}
}
END_TEST

START_TEST(test_disconnect_still_bills)
{
	struct result r;
	sqlite3_stmt *st;
	const char *body = ANTHROPIC_BODY(
		",\"stream\":true,\"metadata\":{\"user_id\":\"fake:events=300;delay=2\"}");

	start(&r, "vm/5", "t-5", "POST", "/v1/messages", body);
	r.detach_after = 1;
	run_until_idle();
	ck_assert(!r.done); /* detached: the agent is not told anything more */
	ck_assert_int_ge(r.chunks, 1);
	ck_assert_ptr_null(strstr(r.body, "message_stop"));
	ck_assert_int_eq(sqlite3_prepare_v2(fx.db,
					    "SELECT outcome, output_tokens, micro FROM llm_spend "
					    "WHERE agent = 'vm/5'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "disconnected");
	ck_assert_int_eq(sqlite3_column_int64(st, 1), 600);
	ck_assert_int_eq(spent("agent", "vm/5"), sqlite3_column_int64(st, 2));
	ck_assert_int_gt(sqlite3_column_int64(st, 2), 600 * 15 - 1);
	sqlite3_finalize(st);
	result_free(&r);
}
END_TEST

START_TEST(test_upstream_failures)
{
	struct result r;

	call(&r, "vm/6", NULL, "POST", "/v1/messages",
	     ANTHROPIC_BODY(",\"metadata\":{\"user_id\":\"fake:error=529\"}"));
	ck_assert_int_eq(r.status, 529);
	ck_assert_ptr_nonnull(strstr(r.body, "overloaded_error"));
	ck_assert_str_eq(r.settled, "released");
	ck_assert_int_eq(spent("agent", "vm/6"), 0);
	result_free(&r);

	call(&r, "vm/6", NULL, "POST", "/v1/messages",
	     "{\"model\":\"claude-down\",\"max_tokens\":10,\"messages\":[]}");
	ck_assert_int_eq(r.status, 502);
	ck_assert_ptr_nonnull(strstr(r.body, "api_error"));
	ck_assert_ptr_nonnull(strstr(r.body, "did not answer"));
	ck_assert_str_eq(r.settled, "released");
	ck_assert_int_eq(spent("agent", "vm/6"), 0);
	result_free(&r);
}
END_TEST

START_TEST(test_rate_limit)
{
	struct result r;
	struct llm_proxy *p2;
	struct llm_proxy *saved = fx.proxy;

	fx.cfg.agent_rpm = 2;
	ck_assert_int_eq(llm_proxy_new(fx.loop, fx.db, &fx.cfg, &p2, NULL), 0);
	fx.proxy = p2;
	for (int i = 0; i < 2; i++) {
		call(&r, "vm/7", NULL, "GET", "/v1/models", NULL);
		ck_assert_int_eq(r.status, 200);
		result_free(&r);
	}
	call(&r, "vm/7", NULL, "GET", "/v1/models", NULL);
	ck_assert_int_eq(r.status, 429);
	ck_assert_ptr_nonnull(json_object_get(r.headers, "retry-after"));
	ck_assert_ptr_nonnull(strstr(r.body, "rate_limit_error"));
	result_free(&r);
	call(&r, "vm/8", NULL, "GET", "/v1/models", NULL);
	ck_assert_int_eq(r.status, 200);
	result_free(&r);
	fx.proxy = saved;
	llm_proxy_free(p2);
}
END_TEST

START_TEST(test_timeout_charges_worst_case)
{
	struct result r;
	struct llm_budget b;

	fx.cfg.timeout_ms = 300; /* read per call */
	call(&r, "vm/10", NULL, "POST", "/v1/messages",
	     ANTHROPIC_BODY(",\"metadata\":{\"user_id\":\"fake:latency=3000\"}"));
	ck_assert_int_eq(r.status, 502);
	ck_assert_ptr_nonnull(strstr(r.body, "did not answer"));
	/* The request was sent: the upstream may bill it, so the worst case is charged. */
	ck_assert_str_eq(r.settled, "incomplete");
	ck_assert_int_eq(llm_ledger_get(fx.db, "agent", "vm/10", &b, NULL), 0);
	ck_assert_int_eq(b.reserved_micro, 0);
	ck_assert_int_gt(b.spent_micro, 1000 * 15 - 1);
	result_free(&r);
}
END_TEST

START_TEST(test_free_in_flight)
{
	struct result r;
	struct orch_error err = {0};

	start(&r, "vm/9", "t-9", "POST", "/v1/messages",
	      ANTHROPIC_BODY(",\"metadata\":{\"user_id\":\"fake:latency=3000\"}"));
	ck_assert_ptr_nonnull(r.ex);
	ck_assert_int_ge(orch_loop_run_once(fx.loop, 50), 0);
	/* orchd stops with a call in flight: nothing is called back, the reservation stays... */
	llm_proxy_free(fx.proxy);
	fx.proxy = NULL;
	ck_assert(!r.done);
	struct llm_budget b;
	ck_assert_int_eq(llm_ledger_get(fx.db, "agent", "vm/9", &b, NULL), 0);
	ck_assert_int_gt(b.reserved_micro, 0);
	/* ...and the next start charges it at its worst case. */
	ck_assert_int_eq(llm_ledger_settle_stale(fx.db, &err), 1);
	ck_assert_int_eq(llm_ledger_get(fx.db, "agent", "vm/9", &b, NULL), 0);
	ck_assert_int_eq(b.reserved_micro, 0);
	ck_assert_int_gt(b.spent_micro, 0);
	result_free(&r);
}
END_TEST

/* ---- TLS ---- */

static unsigned tls_port_ok, tls_port_wrong_host;
static char cert_ok[160], cert_wrong[160];

static void add_tls_upstream(const char *name, unsigned port, const char *ca, const char *model)
{
	struct orch_error err = {0};
	char url[64];

	snprintf(url, sizeof(url), "https://127.0.0.1:%u", port);
	ck_assert_int_eq(
		llm_config_add_upstream(&fx.cfg, name, LLM_API_ANTHROPIC, url, keypath, &err), 0);
	if (ca)
		fx.cfg.upstreams[fx.cfg.n_upstreams - 1].ca_file = strdup(ca);
	ck_assert_int_eq(llm_config_add_model(&fx.cfg, model, name, 3, 15, &err), 0);
}

static void setup_tls(void)
{
	struct orch_error err = {0};

	ck_assert_int_eq(orch_loop_new(&fx.loop), 0);
	ck_assert_int_eq(sqlite3_open(":memory:", &fx.db), SQLITE_OK);
	ck_assert_int_eq(store_migrate(fx.db, &err), 0);
	ck_assert_int_eq(llm_config_init(&fx.cfg), 0);
	add_tls_upstream("trusted", tls_port_ok, cert_ok, "m-trusted");
	add_tls_upstream("system-cas", tls_port_ok, NULL, "m-untrusted");
	add_tls_upstream("wrong-host", tls_port_wrong_host, cert_wrong, "m-wrong-host");
	ck_assert_int_eq(llm_config_load_keys(&fx.cfg, &err), 0);
	ck_assert_int_eq(llm_proxy_new(fx.loop, fx.db, &fx.cfg, &fx.proxy, &err), 0);
	ck_assert_int_eq(orch_timer_add(fx.loop, 30000, 0, on_guard, NULL, &fx.guard), 0);
}

START_TEST(test_tls_verified)
{
	struct result r;

	call(&r, "vm/0", NULL, "POST", "/v1/messages",
	     "{\"model\":\"m-trusted\",\"max_tokens\":10,\"stream\":true,\"messages\":[]}");
	ck_assert_int_eq(r.status, 200);
	ck_assert_ptr_nonnull(strstr(r.body, "message_stop"));
	ck_assert_str_eq(r.settled, "ok");
	result_free(&r);

	call(&r, "vm/0", NULL, "POST", "/v1/messages",
	     "{\"model\":\"m-untrusted\",\"max_tokens\":10,\"messages\":[]}");
	ck_assert_int_eq(r.status, 502);
	ck_assert_msg(strstr(r.body, "certificate") != NULL, "%s", r.body);
	ck_assert_str_eq(r.settled, "released");
	result_free(&r);

	call(&r, "vm/0", NULL, "POST", "/v1/messages",
	     "{\"model\":\"m-wrong-host\",\"max_tokens\":10,\"messages\":[]}");
	ck_assert_int_eq(r.status, 502);
	ck_assert_str_eq(r.settled, "released");
	result_free(&r);
	ck_assert_int_gt(spent("agent", "vm/0"), 0); /* only the trusted call was billed */
}
END_TEST

static int make_cert(const char *name, const char *san, char *ret_cert, size_t len)
{
	char key[160], subj[64];
	char *out = NULL;
	int rc;

	snprintf(ret_cert, len, "%s/%s.crt", tmpdir, name);
	snprintf(key, sizeof(key), "%s/%s.key", tmpdir, name);
	snprintf(subj, sizeof(subj), "/CN=%s", name);
	const char *argv[] = {"openssl",
			      "req",
			      "-x509",
			      "-newkey",
			      "ec",
			      "-pkeyopt",
			      "ec_paramgen_curve:prime256v1",
			      "-nodes",
			      "-keyout",
			      key,
			      "-out",
			      ret_cert,
			      "-days",
			      "1",
			      "-subj",
			      subj,
			      "-addext",
			      san,
			      NULL};
	rc = llm_test_run(argv, NULL, &out);
	free(out);
	return rc;
}

static int run_tls(void)
{
	char key_ok[160], key_wrong[160];
	const char *a1[] = {"--key",	 LLM_TEST_KEY, "--tls-cert", cert_ok,
			    "--tls-key", key_ok,       NULL};
	const char *a2[] = {"--key",	 LLM_TEST_KEY, "--tls-cert", cert_wrong,
			    "--tls-key", key_wrong,    NULL};
	pid_t p1 = 0, p2 = 0;
	Suite *s = suite_create("llm_proxy_tls");
	TCase *tc = tcase_create("tls");

	if (make_cert("ok", "subjectAltName=IP:127.0.0.1", cert_ok, sizeof(cert_ok)) != 0 ||
	    make_cert("wrong", "subjectAltName=DNS:upstream.example", cert_wrong,
		      sizeof(cert_wrong)) != 0) {
		printf("SKIP: openssl could not make test certificates\n");
		return 77;
	}
	snprintf(key_ok, sizeof(key_ok), "%s/ok.key", tmpdir);
	snprintf(key_wrong, sizeof(key_wrong), "%s/wrong.key", tmpdir);
	if (llm_test_spawn_fake(fake_path, a1, &p1, &tls_port_ok) < 0 ||
	    llm_test_spawn_fake(fake_path, a2, &p2, &tls_port_wrong_host) < 0) {
		llm_test_stop(p1);
		printf("SKIP: the fake upstream can not serve TLS (libmicrohttpd without TLS?)\n");
		return 77;
	}
	tcase_add_checked_fixture(tc, setup_tls, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tls_verified);
	suite_add_tcase(s, tc);
	int r = orch_check_run(s);
	llm_test_stop(p1);
	llm_test_stop(p2);
	return r;
}

int main(int argc, char **argv)
{
	const char *args[] = {"--key", LLM_TEST_KEY, "--record", recpath, NULL};
	Suite *s;
	TCase *tc;
	pid_t pid = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s <llm-fake-upstream>\n", argv[0]);
		return 2;
	}
	fake_path = argv[1];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/orch-llm-proxy-XXXXXX");
	if (!mkdtemp(tmpdir) || llm_test_write_key(tmpdir, keypath, sizeof(keypath)) < 0)
		return 1;
	snprintf(recpath, sizeof(recpath), "%s/requests.jsonl", tmpdir);
	if (argc > 2 && strcmp(argv[2], "tls") == 0) {
		int rc = run_tls();
		llm_test_rmtree(tmpdir);
		return rc;
	}
	if (llm_test_spawn_fake(fake_path, args, &pid, &fake_port) < 0) {
		fprintf(stderr, "cannot start %s\n", fake_path);
		return 1;
	}
	s = suite_create("llm_proxy");
	tc = tcase_create("proxy");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_anthropic_stream);
	tcase_add_test(tc, test_anthropic_json);
	tcase_add_test(tc, test_openai);
	tcase_add_test(tc, test_openai_responses);
	tcase_add_test(tc, test_gemini);
	tcase_add_test(tc, test_refusals_forward_nothing);
	tcase_add_test(tc, test_concurrent_budget);
	tcase_add_test(tc, test_betas_filtered);
	tcase_add_test(tc, test_remote_input_refused);
	tcase_add_test(tc, test_remote_input_budget);
	tcase_add_test(tc, test_disconnect_still_bills);
	tcase_add_test(tc, test_upstream_failures);
	tcase_add_test(tc, test_rate_limit);
	tcase_add_test(tc, test_free_in_flight);
	tcase_add_test(tc, test_timeout_charges_worst_case);
	suite_add_tcase(s, tc);
	int r = orch_check_run(s);
	llm_test_stop(pid);
	llm_test_rmtree(tmpdir);
	return r;
}
