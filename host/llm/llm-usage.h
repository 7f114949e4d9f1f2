/* SPDX-License-Identifier: Apache-2.0 */
/* Reading token usage out of upstream answers, streamed (Server-Sent Events) or not.
 * Anthropic streams report input (and cache) tokens in message_start and cumulative
 * output tokens in message_delta; OpenAI Chat Completions streams report usage in a
 * final chunk when the request asked for stream_options.include_usage, Responses API
 * streams in their final response.completed (.incomplete, .failed) event. The SSE parser is incremental (feed any
 * split of the bytes), bounded (an over-long line is skipped, never buffered without
 * limit) and tolerant: upstream bytes that are not valid events are ignored. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "llm-types.h"

#define LLM_SSE_DEFAULT_MAX_LINE (1024 * 1024)

struct llm_sse;

int llm_sse_new(enum llm_api api, size_t max_line, struct llm_sse **ret);
void llm_sse_free(struct llm_sse *s);
void llm_sse_feed(struct llm_sse *s, const void *buf, size_t len);
/* Usage seen so far (ret->seen false when none). */
void llm_sse_usage(const struct llm_sse *s, struct llm_usage *ret);
/* The stream's own end marker arrived (Anthropic message_stop, OpenAI "[DONE]"). */
bool llm_sse_complete(const struct llm_sse *s);
/* An "error" event arrived (Anthropic overloaded_error mid-stream and the like). */
bool llm_sse_saw_error(const struct llm_sse *s);
/* Events dispatched so far. */
size_t llm_sse_events(const struct llm_sse *s);

/* Usage of a complete JSON answer. -EINVAL when the body is not JSON, -ENOENT when it
 * carries no usage. */
int llm_usage_parse_json(enum llm_api api, const void *body, size_t len, struct llm_usage *ret);
