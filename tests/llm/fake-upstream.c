/* SPDX-License-Identifier: Apache-2.0 */
/* A loopback fake of the Anthropic Messages API, the OpenAI Chat Completions and
 * Responses APIs and the Gemini API (generateContent, streamGenerateContent?alt=sse,
 * countTokens), for tests and benchmarks. Listens on 127.0.0.1:<port> (0: any free port), prints the port on
 * stdout, and serves until killed.
 *
 *   llm-fake-upstream [--port N] [--key KEY] [--record FILE] [--latency-ms N]
 *                     [--event-delay-ms N] [--error STATUS] [--tool-command CMD]
 *
 * --key         the key a request must carry (x-api-key, Authorization: Bearer or
 *               x-goog-api-key)
 * --record      each request is appended as one JSON line {method,path,headers,body,t_ms}
 *               (t_ms: when it arrived, ms since the epoch)
 * --latency-ms  delay before the first byte of each answer
 * --event-delay-ms  delay between streamed events
 * --error       answer every request with this HTTP status and the provider's error JSON
 * --tls-cert, --tls-key  serve HTTPS with this PEM certificate and key (exit 3 when this
 *               libmicrohttpd has no TLS)
 * --tool-command  the scripted tool loop (fake-toolloop.c): a request offering the agent's
 *               shell tool is answered with a call running CMD, one carrying its result
 *               with "done"
 * Per request, these headers override: x-fake-latency-ms, x-fake-error,
 * x-fake-event-delay-ms, x-fake-events (number of text deltas in a stream, default 6),
 * x-fake-stall (1: a stream stops after its first event and holds the connection open
 * until the fake is stopped), and so does a directive in the body (see struct req) that
 * survives a proxy. Waits end at once when the fake is stopped. */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <microhttpd.h>

#include "fake-upstream.h"

#define MAX_BODY (32u * 1024 * 1024)
#define MAX_EVENTS 100000

/* Set when the fake stops: every wait ends (MHD_stop_daemon joins the connections). */
static atomic_int stopping;

static char *read_pem(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *buf = calloc(1, 65536);
	size_t n = 0;

	if (!fp || !buf) {
		if (fp)
			fclose(fp);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Sleeps ms (UINT_MAX: until the fake stops), in steps that notice the fake stopping. */
static void sleep_ms(unsigned ms)
{
	while (ms && !atomic_load(&stopping)) {
		unsigned step = ms < 50 ? ms : 50;
		struct timespec ts = {0, (long)step * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		if (ms != UINT_MAX)
			ms -= step;
	}
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static unsigned hdr_uint(struct MHD_Connection *c, const char *name, unsigned def, unsigned max)
{
	const char *v = hdr(c, name);
	char *end;
	unsigned long n;

	if (!v)
		return def;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n > max)
		return def;
	return (unsigned)n;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	json_object_set_new(cls, key, json_string(value ? value : ""));
	return MHD_YES;
}

static void record(struct fake *f, struct MHD_Connection *c, const char *method, const char *url,
		   const struct req *r)
{
	json_t *headers, *line;
	char *s;

	if (!f->record)
		return;
	headers = json_object();
	MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, headers);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	line = json_pack("{s:s, s:s, s:o, s:s%, s:I}", "method", method, "path", url, "headers",
			 headers, "body", r->body ? r->body : "", r->len, "t_ms",
			 (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	s = line ? json_dumps(line, JSON_COMPACT) : NULL;
	if (s) {
		pthread_mutex_lock(&f->record_lock);
		fprintf(f->record, "%s\n", s);
		fflush(f->record);
		pthread_mutex_unlock(&f->record_lock);
	}
	free(s);
	json_decref(line);
}

enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j, unsigned latency_ms)
{
	char *s = json_dumps(j, JSON_COMPACT);
	struct MHD_Response *resp;
	enum MHD_Result ret;

	json_decref(j);
	if (!s)
		return MHD_NO;
	sleep_ms(latency_ms);
	resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "request-id", "req_fake_0001");
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static json_t *anthropic_error(const char *type, const char *msg)
{
	return json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type", type, "message",
			 msg);
}

static json_t *openai_error(const char *type, const char *code, const char *msg)
{
	return json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type", type, "param",
			 "code", code);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int openai, unsigned status,
				  const char *msg, unsigned latency)
{
	const char *atype = status == 401   ? "authentication_error"
			    : status == 429 ? "rate_limit_error"
			    : status == 529 ? "overloaded_error"
			    : status >= 500 ? "api_error"
					    : "invalid_request_error";

	if (openai == 2)
		return send_json(c, status,
				 json_pack("{s:{s:i, s:s, s:s}}", "error", "code", (int)status,
					   "message", msg, "status",
					   status == 401   ? "UNAUTHENTICATED"
					   : status == 429 ? "RESOURCE_EXHAUSTED"
					   : status >= 500 ? "INTERNAL"
							   : "INVALID_ARGUMENT"),
				 latency);
	if (openai)
		return send_json(
			c, status,
			openai_error(status >= 500 ? "server_error" : "invalid_request_error",
				     atype, msg),
			latency);
	return send_json(c, status, anthropic_error(atype, msg), latency);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *s = cls;
	size_t len, n;

	if (s->next >= s->n)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (s->stall && s->next >= 1 && s->off == 0) {
		sleep_ms(UINT_MAX);
		return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	if (!s->started) {
		sleep_ms(s->first_delay_ms);
		s->started = 1;
	} else if (s->off == 0) {
		sleep_ms(s->delay_ms);
	}
	len = strlen(s->events[s->next]);
	n = len - s->off < max ? len - s->off : max;
	memcpy(buf, s->events[s->next] + s->off, n);
	s->off += n;
	if (s->off == len) {
		s->off = 0;
		s->next++;
	}
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct stream *s = cls;

	for (size_t i = 0; i < s->n; i++)
		free(s->events[i]);
	free(s->events);
	free(s);
}

void stream_add(struct stream *s, const char *event, json_t *data_new)
{
	char *d = json_dumps(data_new, JSON_COMPACT);
	char *line = NULL;

	json_decref(data_new);
	if (event) {
		if (asprintf(&line, "event: %s\ndata: %s\n\n", event, d ? d : "{}") < 0)
			line = NULL;
	} else if (asprintf(&line, "data: %s\n\n", d ? d : "{}") < 0) {
		line = NULL;
	}
	free(d);
	if (line)
		s->events[s->n++] = line;
}

enum MHD_Result send_stream(struct MHD_Connection *c, struct stream *s)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s,
						 stream_free);
	MHD_add_response_header(resp, "Content-Type", "text/event-stream");
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	ret = MHD_queue_response(c, 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

static const char *const words[] = {"Hello", " from", " the", " fake", " upstream", "."};

/* Input a request names but does not carry: a stored response, conversation or prompt,
 * a cached context, an uploaded or remote file, an image or document by URL. A real
 * upstream bills what it pulls in; the fake bills it as REMOTE_INPUT_TOKENS more. */
#define REMOTE_INPUT_TOKENS 1900
static bool names_remote_input(const struct req *r)
{
	static const char *const marks[] = {
		"\"previous_response_id\"",
		"\"conversation\"",
		"\"prompt\":{",
		"\"cachedContent\"",
		"\"fileData\"",
		"\"file_url\"",
		"\"file_id\"",
		"\"url\":\"http",
		"\"source\":{\"type\":\"url\"",
	};
	for (size_t i = 0; r->body && i < sizeof(marks) / sizeof(marks[0]); i++)
		if (memmem(r->body, r->len, marks[i], strlen(marks[i])))
			return true;
	return false;
}

/* Deterministic usage: input tokens from the body length (plus what it only names), two
 * output tokens per delta. */
json_int_t input_tokens(const struct req *r)
{
	return (json_int_t)(r->len / 4 + 1) + (names_remote_input(r) ? REMOTE_INPUT_TOKENS : 0);
}

static void directive(struct req *r, const char *d)
{
	static const char *const keys[] = {"events=", "delay=", "latency=", "error=", "stall="};
	unsigned *dst[] = {&r->events, &r->delay, &r->latency, &r->error, &r->stall};

	if (!d || strncmp(d, "fake:", 5) != 0)
		return;
	for (const char *p = d + 5; *p;) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strncmp(p, keys[i], strlen(keys[i])) == 0) {
				unsigned long v = strtoul(p + strlen(keys[i]), NULL, 10);
				*dst[i] = v > 600000 ? 600000 : (unsigned)v;
			}
		p = strchr(p, ';');
		if (!p)
			break;
		p++;
	}
}

static enum MHD_Result anthropic_messages(struct fake *f, struct MHD_Connection *c, json_t *body,
					  struct req *r)
{
	const char *model = NULL;
	json_int_t max_tokens = 0;
	int stream = 0;
	unsigned n_events = r->events, latency = r->latency;
	json_int_t in = input_tokens(r), out;
	struct stream *s;

	if (json_unpack(body, "{s:s, s:I, s?b}", "model", &model, "max_tokens", &max_tokens,
			"stream", &stream) < 0 ||
	    max_tokens < 1)
		return send_error(c, 0, 400, "model and max_tokens are required", latency);
	out = 2 * (json_int_t)n_events;
	if (out > max_tokens)
		out = max_tokens;
	if (!stream) {
		json_t *text = json_string("Hello from the fake upstream.");
		return send_json(c, 200,
				 json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:o}], s:s, s:n, "
					   "s:{s:I, s:I, s:I, s:I}}",
					   "id", "msg_fake_0001", "type", "message", "role",
					   "assistant", "model", model, "content", "type", "text",
					   "text", text, "stop_reason", "end_turn", "stop_sequence",
					   "usage", "input_tokens", in, "output_tokens", out,
					   "cache_creation_input_tokens", (json_int_t)0,
					   "cache_read_input_tokens", (json_int_t)0),
				 latency);
	}
	s = calloc(1, sizeof(*s));
	s->events = calloc(n_events + 8, sizeof(char *));
	s->first_delay_ms = latency;
	s->delay_ms = r->delay;
	s->stall = r->stall;
	stream_add(
		s, "message_start",
		json_pack("{s:s, s:{s:s, s:s, s:s, s:[], s:s, s:n, s:n, s:{s:I, s:I, s:I, s:I}}}",
			  "type", "message_start", "message", "id", "msg_fake_0001", "type",
			  "message", "role", "assistant", "content", "model", model, "stop_reason",
			  "stop_sequence", "usage", "input_tokens", in,
			  "cache_creation_input_tokens", (json_int_t)0, "cache_read_input_tokens",
			  (json_int_t)0, "output_tokens", (json_int_t)1));
	stream_add(s, "content_block_start",
		   json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_start", "index", 0,
			     "content_block", "type", "text", "text", ""));
	stream_add(s, "ping", json_pack("{s:s}", "type", "ping"));
	for (unsigned i = 0; i < n_events; i++)
		stream_add(s, "content_block_delta",
			   json_pack("{s:s, s:i, s:{s:s, s:s}}", "type", "content_block_delta",
				     "index", 0, "delta", "type", "text_delta", "text",
				     words[i % (sizeof(words) / sizeof(words[0]))]));
	stream_add(s, "content_block_stop",
		   json_pack("{s:s, s:i}", "type", "content_block_stop", "index", 0));
	stream_add(s, "message_delta",
		   json_pack("{s:s, s:{s:s, s:n}, s:{s:I}}", "type", "message_delta", "delta",
			     "stop_reason", "end_turn", "stop_sequence", "usage", "output_tokens",
			     out));
	stream_add(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
	return send_stream(c, s);
}

static enum MHD_Result openai_chat(struct fake *f, struct MHD_Connection *c, json_t *body,
				   struct req *r)
{
	const char *model = NULL;
	int stream = 0, include_usage = 0;
	unsigned n_events = r->events, latency = r->latency;
	json_int_t in = input_tokens(r), out = 2 * (json_int_t)n_events, mt;
	json_t *so;
	struct stream *s;

	if (json_unpack(body, "{s:s, s?b}", "model", &model, "stream", &stream) < 0)
		return send_error(c, 1, 400, "model is required", latency);
	mt = json_integer_value(json_object_get(body, "max_completion_tokens"));
	if (!mt)
		mt = json_integer_value(json_object_get(body, "max_tokens"));
	if (mt > 0 && out > mt)
		out = mt;
	so = json_object_get(body, "stream_options");
	include_usage = json_is_true(json_object_get(so, "include_usage"));
	if (!stream)
		return send_json(c, 200,
				 json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], "
					   "s:{s:I, s:I, s:I}}",
					   "id", "chatcmpl-fake", "object", "chat.completion",
					   "created", (json_int_t)1700000000, "model", model,
					   "choices", "index", 0, "message", "role", "assistant",
					   "content", "Hello from the fake upstream.",
					   "finish_reason", "stop", "usage", "prompt_tokens", in,
					   "completion_tokens", out, "total_tokens", in + out),
				 latency);
	s = calloc(1, sizeof(*s));
	s->events = calloc(n_events + 8, sizeof(char *));
	s->first_delay_ms = latency;
	s->delay_ms = r->delay;
	s->stall = r->stall;
	for (unsigned i = 0; i <= n_events; i++) {
		json_t *delta =
			i == 0 ? json_pack("{s:s, s:s}", "role", "assistant", "content", "")
			       : json_pack("{s:s}", "content",
					   words[(i - 1) % (sizeof(words) / sizeof(words[0]))]);
		json_t *chunk = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n}]}", "id",
					  "chatcmpl-fake", "object", "chat.completion.chunk",
					  "created", (json_int_t)1700000000, "model", model,
					  "choices", "index", 0, "delta", delta, "finish_reason");
		if (include_usage)
			json_object_set_new(chunk, "usage", json_null());
		stream_add(s, NULL, chunk);
	}
	stream_add(s, NULL,
		   json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{}, s:s}]}", "id", "chatcmpl-fake",
			     "object", "chat.completion.chunk", "created", (json_int_t)1700000000,
			     "model", model, "choices", "index", 0, "delta", "finish_reason",
			     "stop"));
	if (include_usage)
		stream_add(s, NULL,
			   json_pack("{s:s, s:s, s:I, s:s, s:[], s:{s:I, s:I, s:I}}", "id",
				     "chatcmpl-fake", "object", "chat.completion.chunk", "created",
				     (json_int_t)1700000000, "model", model, "choices", "usage",
				     "prompt_tokens", in, "completion_tokens", out, "total_tokens",
				     in + out));
	s->events[s->n++] = strdup("data: [DONE]\n\n");
	return send_stream(c, s);
}

/* POST /v1/responses: a message output item; streamed as the Responses API's typed
 * events, the last (response.completed) carrying the usage. */
json_t *response_object(const char *model, const char *status, json_t *output_new, json_int_t in,
			json_int_t out)
{
	json_t *usage =
		in < 0 ? json_null()
		       : json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}", "input_tokens", in,
				   "input_tokens_details", "cached_tokens", (json_int_t)0,
				   "output_tokens", out, "output_tokens_details",
				   "reasoning_tokens", (json_int_t)0, "total_tokens", in + out);
	return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o}", "id", "resp_fake_0001", "object",
			 "response", "created_at", (json_int_t)1700000000, "status", status,
			 "model", model, "output", output_new, "usage", usage);
}

json_t *message_item(const char *text, const char *status)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s, s:[]}]}", "type", "message", "id",
			 "msg_fake_0001", "status", status, "role", "assistant", "content", "type",
			 "output_text", "text", text, "annotations");
}

static enum MHD_Result openai_responses(struct fake *f, struct MHD_Connection *c, json_t *body,
					struct req *r)
{
	const char *model = NULL;
	int stream = 0;
	unsigned n_events = r->events, latency = r->latency;
	json_int_t in = input_tokens(r), out = 2 * (json_int_t)n_events, mt;
	struct stream *s;
	char text[4096] = "";
	int seq = 0;

	if (json_unpack(body, "{s:s, s?b}", "model", &model, "stream", &stream) < 0 ||
	    !json_object_get(body, "input"))
		return send_error(c, 1, 400, "model and input are required", latency);
	mt = json_integer_value(json_object_get(body, "max_output_tokens"));
	if (mt > 0 && out > mt)
		out = mt;
	if (!stream)
		return send_json(c, 200,
				 response_object(model, "completed",
						 json_pack("[o]", message_item("Hello from the "
									       "fake upstream.",
									       "completed")),
						 in, out),
				 latency);
	s = calloc(1, sizeof(*s));
	s->events = calloc(n_events + 10, sizeof(char *));
	s->first_delay_ms = latency;
	s->delay_ms = r->delay;
	s->stall = r->stall;
	stream_add(s, "response.created",
		   json_pack("{s:s, s:i, s:o}", "type", "response.created", "sequence_number",
			     seq++, "response",
			     response_object(model, "in_progress", json_array(), -1, 0)));
	stream_add(s, "response.output_item.added",
		   json_pack("{s:s, s:i, s:i, s:o}", "type", "response.output_item.added",
			     "sequence_number", seq++, "output_index", 0, "item",
			     message_item("", "in_progress")));
	for (unsigned i = 0; i < n_events; i++) {
		const char *w = words[i % (sizeof(words) / sizeof(words[0]))];
		if (strlen(text) + strlen(w) < sizeof(text))
			strcat(text, w);
		stream_add(s, "response.output_text.delta",
			   json_pack("{s:s, s:i, s:s, s:i, s:i, s:s}", "type",
				     "response.output_text.delta", "sequence_number", seq++,
				     "item_id", "msg_fake_0001", "output_index", 0, "content_index",
				     0, "delta", w));
	}
	stream_add(s, "response.output_text.done",
		   json_pack("{s:s, s:i, s:s, s:i, s:i, s:s}", "type", "response.output_text.done",
			     "sequence_number", seq++, "item_id", "msg_fake_0001", "output_index",
			     0, "content_index", 0, "text", text));
	stream_add(s, "response.completed",
		   json_pack("{s:s, s:i, s:o}", "type", "response.completed", "sequence_number",
			     seq++, "response",
			     response_object(model, "completed",
					     json_pack("[o]", message_item(text, "completed")), in,
					     out)));
	return send_stream(c, s);
}

/* Gemini: one candidate; a stream is one chunk per text delta, the last with the
 * finishReason and the usageMetadata. */
json_t *gemini_chunk(const char *text, const char *finish, json_int_t in, json_int_t out)
{
	json_t *cand = json_pack("{s:{s:s, s:[{s:s}]}, s:i}", "content", "role", "model", "parts",
				 "text", text, "index", 0);
	json_t *j = json_pack("{s:[o], s:s}", "candidates", cand, "modelVersion", "fake");
	if (finish)
		json_object_set_new(cand, "finishReason", json_string(finish));
	if (in >= 0)
		json_object_set_new(j, "usageMetadata",
				    json_pack("{s:I, s:I, s:I}", "promptTokenCount", in,
					      "candidatesTokenCount", out, "totalTokenCount",
					      in + out));
	return j;
}

static enum MHD_Result gemini_generate(struct fake *f, struct MHD_Connection *c, json_t *body,
				       struct req *r, int stream)
{
	unsigned n_events = r->events, latency = r->latency;
	json_int_t in = input_tokens(r), out = 2 * (json_int_t)n_events, mt;
	struct stream *s;

	if (!json_is_array(json_object_get(body, "contents")))
		return send_error(c, 2, 400, "contents is required", latency);
	mt = json_integer_value(
		json_object_get(json_object_get(body, "generationConfig"), "maxOutputTokens"));
	if (mt > 0 && out > mt)
		out = mt;
	if (!stream)
		return send_json(c, 200,
				 gemini_chunk("Hello from the fake upstream.", "STOP", in, out),
				 latency);
	s = calloc(1, sizeof(*s));
	s->events = calloc(n_events + 4, sizeof(char *));
	s->first_delay_ms = latency;
	s->delay_ms = r->delay;
	s->stall = r->stall;
	for (unsigned i = 0; i < n_events; i++)
		stream_add(s, NULL,
			   gemini_chunk(words[i % (sizeof(words) / sizeof(words[0]))],
					i + 1 == n_events ? "STOP" : NULL,
					i + 1 == n_events ? in : -1, out));
	return send_stream(c, s);
}

static int key_ok(struct fake *f, struct MHD_Connection *c, int openai)
{
	const char *v;

	if (!f->key)
		return 1;
	if (openai == 2) {
		v = hdr(c, "x-goog-api-key");
		return v && strcmp(v, f->key) == 0;
	}
	if (openai) {
		v = hdr(c, "Authorization");
		return v && strncmp(v, "Bearer ", 7) == 0 && strcmp(v + 7, f->key) == 0;
	}
	v = hdr(c, "x-api-key");
	return v && strcmp(v, f->key) == 0;
}

static enum MHD_Result answer(struct fake *f, struct MHD_Connection *c, const char *method,
			      const char *url, struct req *r)
{
	/* 1: an OpenAI path, 2: a Gemini one (their keys and error shapes) */
	int openai = strncmp(url, "/v1/chat/", 9) == 0 || strcmp(url, "/v1/responses") == 0 ? 1
		     : strncmp(url, "/v1beta/models/", 15) == 0				    ? 2
											    : 0;
	const char *action = openai == 2 ? strrchr(url, ':') : NULL;
	json_t *body = NULL;
	json_error_t jerr;
	enum MHD_Result ret;
	unsigned latency;

	record(f, c, method, url, r);
	r->latency = hdr_uint(c, "x-fake-latency-ms", f->latency_ms, 600000);
	r->error = hdr_uint(c, "x-fake-error", (unsigned)f->error_status, 599);
	r->delay = hdr_uint(c, "x-fake-event-delay-ms", f->event_delay_ms, 600000);
	r->events = hdr_uint(c, "x-fake-events", 6, MAX_EVENTS);
	r->stall = hdr_uint(c, "x-fake-stall", 0, 1);
	if (r->len && !r->too_big) {
		body = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &jerr);
		directive(r, json_string_value(json_object_get(body, "user")));
		directive(r, json_string_value(json_object_get(json_object_get(body, "metadata"),
							       "user_id")));
		if (r->events > MAX_EVENTS)
			r->events = MAX_EVENTS;
	}
	latency = r->latency;
	if (r->too_big)
		ret = send_error(c, openai, 413, "request too large", latency);
	else if (r->error >= 400 && r->error <= 599)
		ret = send_error(c, openai, r->error, "injected error", latency);
	else if (!key_ok(f, c, openai))
		ret = send_error(c, openai, 401, "invalid x-api-key", latency);
	else if (openai == 0 && !hdr(c, "anthropic-version"))
		ret = send_error(c, 0, 400, "anthropic-version: header is required", latency);
	else if (strcmp(method, "GET") == 0 && strcmp(url, "/v1/models") == 0)
		ret = send_json(c, 200,
				json_pack("{s:[{s:s, s:s, s:s, s:s}], s:b, s:s, s:s}", "data",
					  "type", "model", "id", "claude-sonnet-4-5",
					  "display_name", "Claude Sonnet 4.5", "created_at",
					  "2025-09-29T00:00:00Z", "has_more", 0, "first_id",
					  "claude-sonnet-4-5", "last_id", "claude-sonnet-4-5"),
				latency);
	else if (strcmp(method, "POST") != 0)
		ret = send_error(c, openai, 404, "not found", latency);
	else if (!json_is_object(body))
		ret = send_error(c, openai, 400, "body is not a JSON object", latency);
	else if (strcmp(url, "/v1/messages") == 0 &&
		 fake_toolloop(f, c, FAKE_ANTHROPIC, body, r, 0, &ret))
		;
	else if (strcmp(url, "/v1/responses") == 0 &&
		 fake_toolloop(f, c, FAKE_RESPONSES, body, r, 0, &ret))
		;
	else if (action && strcmp(action, ":countTokens") != 0 &&
		 fake_toolloop(f, c, FAKE_GEMINI, body, r,
			       strcmp(action, ":streamGenerateContent") == 0, &ret))
		;
	else if (strcmp(url, "/v1/messages") == 0)
		ret = anthropic_messages(f, c, body, r);
	else if (strcmp(url, "/v1/messages/count_tokens") == 0)
		ret = send_json(c, 200, json_pack("{s:I}", "input_tokens", input_tokens(r)),
				latency);
	else if (strcmp(url, "/v1/chat/completions") == 0)
		ret = openai_chat(f, c, body, r);
	else if (strcmp(url, "/v1/responses") == 0)
		ret = openai_responses(f, c, body, r);
	else if (action && strcmp(action, ":generateContent") == 0)
		ret = gemini_generate(f, c, body, r, 0);
	else if (action && strcmp(action, ":streamGenerateContent") == 0) {
		/* The real API streams Server-Sent Events only with alt=sse (else one JSON
		 * array); this fake answers only that form. */
		const char *alt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "alt");
		ret = alt && strcmp(alt, "sse") == 0
			      ? gemini_generate(f, c, body, r, 1)
			      : send_error(c, 2, 400, "streamGenerateContent needs alt=sse",
					   latency);
	} else if (action && strcmp(action, ":countTokens") == 0)
		ret = send_json(c, 200, json_pack("{s:I}", "totalTokens", input_tokens(r)),
				latency);
	else
		ret = send_error(c, openai, 404, "not found", latency);
	json_decref(body);
	return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	if (!r) {
		*con_cls = calloc(1, sizeof(*r));
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		if (!r->too_big && r->len + *upload_size <= MAX_BODY) {
			char *nb = realloc(r->body, r->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			memcpy(nb + r->len, upload, *upload_size);
			r->body = nb;
			r->len += *upload_size;
			r->body[r->len] = '\0';
		} else {
			r->too_big = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	return answer(cls, c, method, url, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	if (r) {
		free(r->body);
		free(r);
	}
	*con_cls = NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"port", required_argument, NULL, 'p'},
		{"key", required_argument, NULL, 'k'},
		{"record", required_argument, NULL, 'r'},
		{"latency-ms", required_argument, NULL, 'l'},
		{"event-delay-ms", required_argument, NULL, 'd'},
		{"error", required_argument, NULL, 'e'},
		{"tls-cert", required_argument, NULL, 'c'},
		{"tls-key", required_argument, NULL, 'K'},
		{"tool-command", required_argument, NULL, 't'},
		{0},
	};
	struct fake f = {.record_lock = PTHREAD_MUTEX_INITIALIZER};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	unsigned port = 0;
	char *tls_cert = NULL, *tls_key = NULL;
	unsigned flags =
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
	sigset_t ss;
	int c, sig;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = (unsigned)atoi(optarg);
			break;
		case 'k':
			f.key = optarg;
			break;
		case 'r':
			f.record = fopen(optarg, "ae");
			if (!f.record) {
				fprintf(stderr, "cannot open %s: %s\n", optarg, strerror(errno));
				return 1;
			}
			break;
		case 'l':
			f.latency_ms = (unsigned)atoi(optarg);
			break;
		case 'd':
			f.event_delay_ms = (unsigned)atoi(optarg);
			break;
		case 'e':
			f.error_status = atoi(optarg);
			break;
		case 'c':
			tls_cert = read_pem(optarg);
			break;
		case 'K':
			tls_key = read_pem(optarg);
			break;
		case 't':
			f.tool_command = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: %s [--port N] [--key K] [--record FILE] "
				"[--latency-ms N] [--event-delay-ms N] [--error STATUS] "
				"[--tool-command CMD]\n",
				argv[0]);
			return 2;
		}
	}
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (tls_cert || tls_key) {
		if (!tls_cert || !tls_key) {
			fprintf(stderr,
				"--tls-cert and --tls-key go together (and must be readable)\n");
			return 2;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			fprintf(stderr, "this libmicrohttpd has no TLS support\n");
			return 3;
		}
		d = MHD_start_daemon(flags | MHD_USE_TLS, 0, NULL, NULL, handler, &f,
				     MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED,
				     completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 120u,
				     MHD_OPTION_HTTPS_MEM_CERT, tls_cert, MHD_OPTION_HTTPS_MEM_KEY,
				     tls_key, MHD_OPTION_END);
	} else {
		d = MHD_start_daemon(flags, 0, NULL, NULL, handler, &f, MHD_OPTION_SOCK_ADDR, &sa,
				     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				     MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_END);
	}
	if (!d) {
		fprintf(stderr, "cannot start the fake upstream on 127.0.0.1:%u\n", port);
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("%u\n", info ? info->port : 0);
	fflush(stdout);
	sigwait(&ss, &sig);
	atomic_store(&stopping, 1);
	MHD_stop_daemon(d);
	free(tls_cert);
	free(tls_key);
	if (f.record)
		fclose(f.record);
	return 0;
}
