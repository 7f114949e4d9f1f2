/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: upstream answer bytes through the usage extraction of host/llm/llm-usage.c.
 * The input (after its first byte) is fed to the incremental SSE parser of each API in
 * two pieces, split at a position taken from the first byte (streams arrive in arbitrary
 * pieces), then byte by byte with a small line limit (over-long lines), and finally
 * parsed as a complete JSON answer of each API (Anthropic, OpenAI, Gemini). Usage counts must stay in range and the
 * same bytes must give the same usage however they are split. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm-usage.h"

#define MAX_COUNT 1000000000000LL

static void check_usage(const struct llm_usage *u)
{
	if (u->input < 0 || u->output < 0 || u->cache_write < 0 || u->cache_read < 0 ||
	    u->input > MAX_COUNT || u->output > MAX_COUNT || u->cache_write > MAX_COUNT ||
	    u->cache_read > MAX_COUNT)
		__builtin_trap();
	if (!u->seen && llm_usage_tokens(u) != 0)
		__builtin_trap();
}

static void same_usage(const struct llm_usage *a, const struct llm_usage *b)
{
	if (a->input != b->input || a->output != b->output || a->cache_write != b->cache_write ||
	    a->cache_read != b->cache_read || a->seen != b->seen)
		__builtin_trap();
}

static void run_sse(enum llm_api api, const uint8_t *data, size_t size, size_t split)
{
	struct llm_sse *whole = NULL, *pieces = NULL, *bytes = NULL;
	struct llm_usage uw, up, ub;

	/* 64 KiB lines rather than the proxy's 1 MiB: the same code for inputs of fuzzing
	 * size, and eight times the executions per second under ASan. */
	if (llm_sse_new(api, 65536, &whole) < 0 || llm_sse_new(api, 65536, &pieces) < 0 ||
	    llm_sse_new(api, 64, &bytes) < 0)
		abort();
	llm_sse_feed(whole, data, size);
	llm_sse_feed(pieces, data, split);
	llm_sse_feed(pieces, data + split, size - split);
	for (size_t i = 0; i < size; i++)
		llm_sse_feed(bytes, data + i, 1);

	llm_sse_usage(whole, &uw);
	llm_sse_usage(pieces, &up);
	llm_sse_usage(bytes, &ub);
	check_usage(&uw);
	check_usage(&up);
	check_usage(&ub);
	/* Where the stream was cut must not change what was read from it. */
	same_usage(&uw, &up);
	if (llm_sse_complete(whole) != llm_sse_complete(pieces) ||
	    llm_sse_saw_error(whole) != llm_sse_saw_error(pieces) ||
	    llm_sse_events(whole) != llm_sse_events(pieces))
		__builtin_trap();
	/* A smaller line limit can only drop events, never invent usage. */
	if (llm_sse_events(bytes) > llm_sse_events(whole) || (ub.seen && !uw.seen))
		__builtin_trap();

	llm_sse_free(whole);
	llm_sse_free(pieces);
	llm_sse_free(bytes);
}

static void run_json(enum llm_api api, const uint8_t *data, size_t size)
{
	struct llm_usage u = {.input = -1};
	int r = llm_usage_parse_json(api, data, size, &u);

	if (r == 0) {
		check_usage(&u);
		if (!u.seen)
			__builtin_trap();
	} else if (u.input != -1) {
		__builtin_trap(); /* ret is set only on success */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t split;

	if (size == 0)
		return 0;
	split = size > 1 ? data[0] % size : 0;
	data++, size--;
	if (split > size)
		split = size;
	run_sse(LLM_API_ANTHROPIC, data, size, split);
	run_sse(LLM_API_OPENAI, data, size, split);
	run_sse(LLM_API_GEMINI, data, size, split);
	run_json(LLM_API_ANTHROPIC, data, size);
	run_json(LLM_API_OPENAI, data, size);
	run_json(LLM_API_GEMINI, data, size);
	return 0;
}
