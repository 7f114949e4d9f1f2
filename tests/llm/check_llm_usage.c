/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: usage extraction from realistic Anthropic and OpenAI answers, streamed (fed
 * in every possible split) and not, and hostile streams. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "llm-usage.h"

static const char anthropic_stream[] =
	"event: message_start\n"
	"data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
	"\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":"
	"null,"
	"\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":"
	"100,"
	"\"cache_read_input_tokens\":2048,\"output_tokens\":2}}}\n"
	"\n"
	"event: content_block_start\n"
	"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
	"\"text\":\"\"}}\n"
	"\n"
	"event: ping\n"
	"data: {\"type\": \"ping\"}\n"
	"\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
	"\"text\":\"Hello\"}}\n"
	"\n"
	"event: content_block_delta\n"
	"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
	"\"text\":\"! usage: {\\\"output_tokens\\\": 99999}\"}}\n"
	"\n"
	"event: content_block_stop\n"
	"data: {\"type\":\"content_block_stop\",\"index\":0}\n"
	"\n"
	"event: message_delta\n"
	"data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\","
	"\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n"
	"\n"
	"event: message_stop\n"
	"data: {\"type\":\"message_stop\"}\n"
	"\n";

static const char openai_stream[] =
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
	"\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
	"\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
	"\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
	"\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
	"\"model\":\"gpt-4.1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
	"\"usage\":null}\r\n\r\n"
	"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
	"\"model\":\"gpt-4.1\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,"
	"\"completion_tokens\":10,\"total_tokens\":29,\"prompt_tokens_details\":"
	"{\"cached_tokens\":0}}}\r\n\r\n"
	"data: [DONE]\r\n\r\n";

/* The Responses API: typed events, the usage in the final response.completed; a text
 * delta that looks like usage is not usage, and there is no [DONE]. */
static const char responses_stream[] =
	"event: response.created\n"
	"data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":"
	"\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\",\"output\":[],"
	"\"usage\":null}}\n\n"
	"event: response.output_text.delta\n"
	"data: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"item_id\":"
	"\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\",\"usage\":"
	"{\"output_tokens\":99999}}\n\n"
	"event: response.completed\n"
	"data: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":"
	"\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"output\":[],"
	"\"usage\":{\"input_tokens\":31,\"input_tokens_details\":{\"cached_tokens\":0},"
	"\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":2},"
	"\"total_tokens\":38}}}\n\n";

static struct llm_sse *feed_split(enum llm_api api, const char *s, size_t len, size_t a, size_t b)
{
	struct llm_sse *sse;

	ck_assert_int_eq(llm_sse_new(api, 0, &sse), 0);
	llm_sse_feed(sse, s, a);
	llm_sse_feed(sse, s + a, b - a);
	llm_sse_feed(sse, s + b, len - b);
	return sse;
}

START_TEST(test_anthropic_every_split)
{
	size_t len = strlen(anthropic_stream);

	for (size_t a = 0; a <= len; a += 31)
		for (size_t b = a; b <= len; b += 37) {
			struct llm_sse *s =
				feed_split(LLM_API_ANTHROPIC, anthropic_stream, len, a, b);
			struct llm_usage u;
			llm_sse_usage(s, &u);
			ck_assert(u.seen);
			ck_assert_int_eq(u.input, 472);
			ck_assert_int_eq(u.cache_write, 100);
			ck_assert_int_eq(u.cache_read, 2048);
			ck_assert_int_eq(u.output, 15);
			ck_assert(llm_sse_complete(s));
			ck_assert(!llm_sse_saw_error(s));
			ck_assert_int_eq(llm_sse_events(s), 8);
			llm_sse_free(s);
		}
}
END_TEST

START_TEST(test_openai_every_split)
{
	size_t len = strlen(openai_stream);

	for (size_t a = 0; a <= len; a += 17)
		for (size_t b = a; b <= len; b += 19) {
			struct llm_sse *s = feed_split(LLM_API_OPENAI, openai_stream, len, a, b);
			struct llm_usage u;
			llm_sse_usage(s, &u);
			ck_assert(u.seen);
			ck_assert_int_eq(u.input, 19);
			ck_assert_int_eq(u.output, 10);
			ck_assert(llm_sse_complete(s));
			llm_sse_free(s);
		}
}
END_TEST

START_TEST(test_responses_every_split)
{
	size_t len = strlen(responses_stream);

	for (size_t a = 0; a <= len; a += 13)
		for (size_t b = a; b <= len; b += 23) {
			struct llm_sse *s = feed_split(LLM_API_OPENAI, responses_stream, len, a, b);
			struct llm_usage u;
			llm_sse_usage(s, &u);
			ck_assert(u.seen);
			ck_assert_int_eq(u.input, 31);
			ck_assert_int_eq(u.output, 7);
			ck_assert(llm_sse_complete(s));
			ck_assert(!llm_sse_saw_error(s));
			ck_assert_int_eq(llm_sse_events(s), 3);
			llm_sse_free(s);
		}

	/* Cut before the final event: no usage, not complete. A failed response: its usage,
	 * complete, an error. */
	struct llm_sse *s;
	struct llm_usage u;
	const char *end = strstr(responses_stream, "event: response.completed");
	ck_assert_int_eq(llm_sse_new(LLM_API_OPENAI, 0, &s), 0);
	llm_sse_feed(s, responses_stream, (size_t)(end - responses_stream));
	llm_sse_usage(s, &u);
	ck_assert(!u.seen);
	ck_assert(!llm_sse_complete(s));
	llm_sse_free(s);
	static const char failed[] =
		"data: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\","
		"\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n";
	ck_assert_int_eq(llm_sse_new(LLM_API_OPENAI, 0, &s), 0);
	llm_sse_feed(s, failed, strlen(failed));
	llm_sse_usage(s, &u);
	ck_assert_int_eq(u.input, 5);
	ck_assert(llm_sse_complete(s));
	ck_assert(llm_sse_saw_error(s));
	llm_sse_free(s);
}
END_TEST

/* Gemini: usageMetadata in the last chunk (the one with a finishReason); cached prompt
 * tokens billed as cache reads, thoughts as output. */
START_TEST(test_gemini)
{
	static const char stream[] =
		"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":"
		"\"Hel\"}]},\"index\":0}]}\r\n\r\n"
		"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":"
		"\"lo\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{"
		"\"promptTokenCount\":20,\"cachedContentTokenCount\":5,\"candidatesTokenCount\":4,"
		"\"thoughtsTokenCount\":6,\"totalTokenCount\":30}}\r\n\r\n";
	size_t len = strlen(stream);

	for (size_t a = 0; a <= len; a += 11)
		for (size_t b = a; b <= len; b += 29) {
			struct llm_sse *s = feed_split(LLM_API_GEMINI, stream, len, a, b);
			struct llm_usage u;
			llm_sse_usage(s, &u);
			ck_assert(u.seen);
			ck_assert_int_eq(u.input, 15);
			ck_assert_int_eq(u.cache_read, 5);
			ck_assert_int_eq(u.output, 10);
			ck_assert(llm_sse_complete(s));
			ck_assert(!llm_sse_saw_error(s));
			llm_sse_free(s);
		}
	struct llm_sse *s;
	struct llm_usage u;
	ck_assert_int_eq(llm_sse_new(LLM_API_GEMINI, 0, &s), 0);
	llm_sse_feed(s, stream, (size_t)(strstr(stream, "\r\n\r\n") - stream) + 4);
	ck_assert(!llm_sse_complete(s)); /* no finishReason yet */
	llm_sse_free(s);

	static const char json[] =
		"{\"candidates\":[{\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":"
		"{\"promptTokenCount\":7,\"candidatesTokenCount\":3}}";
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_GEMINI, json, strlen(json), &u), 0);
	ck_assert_int_eq(u.input, 7);
	ck_assert_int_eq(u.output, 3);
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_GEMINI, "{\"usage\":{}}", 12, &u), -ENOENT);
}
END_TEST

START_TEST(test_cut_stream)
{
	struct llm_sse *s;
	struct llm_usage u;
	const char *cut = strstr(anthropic_stream, "event: content_block_stop");

	ck_assert_int_eq(llm_sse_new(LLM_API_ANTHROPIC, 0, &s), 0);
	llm_sse_feed(s, anthropic_stream, (size_t)(cut - anthropic_stream));
	llm_sse_usage(s, &u);
	ck_assert(u.seen);
	ck_assert_int_eq(u.input, 472);
	ck_assert_int_eq(u.output, 2);
	ck_assert(!llm_sse_complete(s));
	llm_sse_feed(s,
		     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
		     "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
		     strlen("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
			    "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"));
	ck_assert(llm_sse_saw_error(s));
	llm_sse_free(s);
}
END_TEST

START_TEST(test_hostile)
{
	struct llm_sse *s;
	struct llm_usage u;
	char *big = malloc(5000);
	static const char tail[] =
		"\n\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n";

	/* A 5000-byte line against a 1024-byte limit is skipped; what follows still counts. */
	ck_assert_int_eq(llm_sse_new(LLM_API_ANTHROPIC, 1024, &s), 0);
	memset(big, 'x', 5000);
	memcpy(big, "data: ", 6);
	llm_sse_feed(s, big, 5000);
	llm_sse_feed(s, tail, strlen(tail));
	/* Garbage, NUL bytes, negative and huge counts, wrong types. */
	llm_sse_feed(s, "data: \0\0\0\n\n", 11);
	llm_sse_feed(s, "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":-5}}\n\n",
		     62);
	llm_sse_feed(s,
		     "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"9\"}}\n\n",
		     63);
	llm_sse_feed(s, "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1e30}}\n\n",
		     64);
	llm_sse_feed(s, "data: [1,2,3]\n\ndata: null\n\n:comment\n\nretry: 5\n\n", 44);
	llm_sse_usage(s, &u);
	ck_assert(u.seen);
	ck_assert_int_eq(u.output, 7);
	ck_assert(!llm_sse_complete(s));
	llm_sse_free(s);
	free(big);
}
END_TEST

START_TEST(test_multiline_data)
{
	struct llm_sse *s;
	struct llm_usage u;
	static const char ev[] = "data: {\"type\":\"message_delta\",\n"
				 "data: \"usage\":{\"output_tokens\":42}}\r\r";

	ck_assert_int_eq(llm_sse_new(LLM_API_ANTHROPIC, 0, &s), 0);
	llm_sse_feed(s, ev, strlen(ev));
	llm_sse_usage(s, &u);
	ck_assert_int_eq(u.output, 42);
	llm_sse_free(s);
}
END_TEST

START_TEST(test_json_answers)
{
	static const char a[] =
		"{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
		"\"content\":[{\"type\":\"text\",\"text\":\"Hi\"}],\"stop_reason\":\"end_turn\","
		"\"usage\":{\"input_tokens\":12,\"output_tokens\":6,"
		"\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":3}}";
	static const char o[] = "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[],"
				"\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,"
				"\"total_tokens\":21}}";
	struct llm_usage u;

	ck_assert_int_eq(llm_usage_parse_json(LLM_API_ANTHROPIC, a, strlen(a), &u), 0);
	ck_assert_int_eq(u.input, 12);
	ck_assert_int_eq(u.output, 6);
	ck_assert_int_eq(u.cache_read, 3);
	ck_assert_int_eq(llm_usage_tokens(&u), 21);
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_OPENAI, o, strlen(o), &u), 0);
	ck_assert_int_eq(u.input, 9);
	ck_assert_int_eq(u.output, 12);
	static const char r[] = "{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[],"
				"\"usage\":{\"input_tokens\":40,\"output_tokens\":3,"
				"\"total_tokens\":43}}";
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_OPENAI, r, strlen(r), &u), 0);
	ck_assert_int_eq(u.input, 40);
	ck_assert_int_eq(u.output, 3);
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_OPENAI, "{}", 2, &u), -ENOENT);
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_OPENAI, "{", 1, &u), -EINVAL);
	ck_assert_int_eq(llm_usage_parse_json(LLM_API_ANTHROPIC, "{\"usage\":{\"x\":1}}", 17, &u),
			 -ENOENT);
}
END_TEST

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Mutated realistic streams in random splits: never a crash, never a negative count. */
START_TEST(test_mutations)
{
	size_t len = strlen(anthropic_stream);
	char *buf = malloc(len);

	for (int it = 0; it < 3000; it++) {
		struct llm_sse *s;
		struct llm_usage u;
		size_t off = 0;

		memcpy(buf, it % 2 ? anthropic_stream : openai_stream,
		       it % 2 ? len : strlen(openai_stream));
		size_t n = it % 2 ? len : strlen(openai_stream);
		for (int m = 0; m < 1 + it % 8; m++)
			buf[next_rand() % n] = (char)next_rand();
		ck_assert_int_eq(llm_sse_new(it % 3 ? LLM_API_ANTHROPIC : LLM_API_OPENAI,
					     64 + next_rand() % 512, &s),
				 0);
		while (off < n) {
			size_t k = 1 + next_rand() % 97;
			if (k > n - off)
				k = n - off;
			llm_sse_feed(s, buf + off, k);
			off += k;
		}
		llm_sse_usage(s, &u);
		ck_assert_int_ge(u.input, 0);
		ck_assert_int_ge(u.output, 0);
		ck_assert_int_ge(u.cache_read, 0);
		ck_assert_int_ge(u.cache_write, 0);
		llm_sse_free(s);
		ck_assert_int_le(llm_usage_parse_json(LLM_API_ANTHROPIC, buf, n, &u), 0);
	}
	free(buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("llm_usage");
	TCase *tc = tcase_create("usage");

	tcase_add_test(tc, test_anthropic_every_split);
	tcase_add_test(tc, test_openai_every_split);
	tcase_add_test(tc, test_responses_every_split);
	tcase_add_test(tc, test_gemini);
	tcase_add_test(tc, test_cut_stream);
	tcase_add_test(tc, test_hostile);
	tcase_add_test(tc, test_multiline_data);
	tcase_add_test(tc, test_json_answers);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
