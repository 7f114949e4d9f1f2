/* SPDX-License-Identifier: Apache-2.0 */
/* What the fake upstream's files share (fake-upstream.c: the server and the plain answers;
 * fake-toolloop.c: the scripted tool loop of --tool-command). */
#pragma once

#include <pthread.h>
#include <stdio.h>
#include <jansson.h>
#include <microhttpd.h>

struct fake {
	const char *key;
	FILE *record;
	pthread_mutex_t record_lock;
	unsigned latency_ms;
	unsigned event_delay_ms;
	int error_status;
	/* --tool-command: the shell command a request offering a shell tool is asked to run
	 * (NULL: plain answers only). */
	const char *tool_command;
};

struct req {
	char *body;
	size_t len;
	int too_big;
	/* Knobs of this request: the options, then x-fake-* headers, then a directive in the
	 * body's metadata.user_id (Anthropic) or user (OpenAI), which a proxy passes through:
	 * "fake:events=N;delay=N;latency=N;error=N;stall=1". */
	unsigned latency, events, delay, error, stall;
};

/* One streamed answer: a list of pre-rendered events handed out one by one. */
struct stream {
	char **events;
	size_t n, next;
	size_t off; /* bytes of events[next] already sent */
	unsigned first_delay_ms, delay_ms;
	int started;
	unsigned stall; /* hold after the first event until the fake stops */
};

enum fake_dialect {
	FAKE_ANTHROPIC,
	FAKE_RESPONSES,
	FAKE_GEMINI,
};

/* Sends j (stolen) as the body after latency_ms. */
enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j,
			  unsigned latency_ms);
/* Appends one SSE event (data_new stolen; event NULL: a data-only event); s->events must
 * have room. */
void stream_add(struct stream *s, const char *event, json_t *data_new);
enum MHD_Result send_stream(struct MHD_Connection *c, struct stream *s);
/* Deterministic usage: input tokens from the body length (and what it only names). */
json_int_t input_tokens(const struct req *r);
/* Responses API: a response object (in < 0: usage null) and a message output item. */
json_t *response_object(const char *model, const char *status, json_t *output_new, json_int_t in,
			json_int_t out);
json_t *message_item(const char *text, const char *status);
/* Gemini: one streamed chunk (or the whole answer) holding text. */
json_t *gemini_chunk(const char *text, const char *finish, json_int_t in, json_int_t out);

/* The scripted tool loop (--tool-command): a request that offers the agent's shell tool
 * (Anthropic `Bash`/`bash`, Responses `exec_command` or Codex's `exec` code tool, Gemini
 * `run_shell_command`) is answered with a call of that tool running f->tool_command; a
 * request that carries the tool's result is answered "done". Returns 1 with *ret set when
 * it answered, 0 when the request is none of these (the caller answers as usual). */
int fake_toolloop(struct fake *f, struct MHD_Connection *c, enum fake_dialect d, json_t *body,
		  const struct req *r, int stream, enum MHD_Result *ret);
