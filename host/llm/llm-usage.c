/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "cleanup.h"
#include "llm-usage.h"

#define MAX_TOKENS_VALUE 1000000000000LL

struct llm_sse {
	enum llm_api api;
	size_t max_line;
	char *line; /* current line, max_line bytes */
	size_t line_len;
	bool overflow; /* current line too long: skipping to its end */
	bool last_cr;  /* previous byte was '\r' (a following '\n' belongs to it) */
	char *data;    /* data of the current event, max_line bytes */
	size_t data_len;
	bool data_overflow, has_data;
	struct llm_usage usage;
	bool complete, error;
	size_t events;
};

int llm_sse_new(enum llm_api api, size_t max_line, struct llm_sse **ret)
{
	struct llm_sse *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->api = api;
	s->max_line = max_line ? max_line : LLM_SSE_DEFAULT_MAX_LINE;
	s->line = malloc(s->max_line);
	s->data = malloc(s->max_line + 1);
	if (!s->line || !s->data) {
		llm_sse_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void llm_sse_free(struct llm_sse *s)
{
	if (!s)
		return;
	free(s->line);
	free(s->data);
	free(s);
}

static bool get_count(json_t *obj, const char *key, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > MAX_TOKENS_VALUE)
		return false;
	*ret = json_integer_value(v);
	return true;
}

static void max_into(int64_t *dst, int64_t v)
{
	if (v > *dst)
		*dst = v;
}

/* Anthropic usage object (message, message_start.message or message_delta). Counts are
 * cumulative, so the largest value seen wins. */
static bool anthropic_usage(json_t *usage, struct llm_usage *u)
{
	int64_t v;
	bool any = false;

	if (!json_is_object(usage))
		return false;
	if (get_count(usage, "input_tokens", &v))
		max_into(&u->input, v), any = true;
	if (get_count(usage, "output_tokens", &v))
		max_into(&u->output, v), any = true;
	if (get_count(usage, "cache_creation_input_tokens", &v))
		max_into(&u->cache_write, v), any = true;
	if (get_count(usage, "cache_read_input_tokens", &v))
		max_into(&u->cache_read, v), any = true;
	if (any)
		u->seen = true;
	return any;
}

static bool openai_usage(json_t *usage, struct llm_usage *u)
{
	int64_t v;
	bool any = false;

	if (!json_is_object(usage))
		return false;
	/* Chat Completions names them prompt/completion, the Responses API input/output. */
	if (get_count(usage, "prompt_tokens", &v) || get_count(usage, "input_tokens", &v))
		max_into(&u->input, v), any = true;
	if (get_count(usage, "completion_tokens", &v) || get_count(usage, "output_tokens", &v))
		max_into(&u->output, v), any = true;
	if (any)
		u->seen = true;
	return any;
}

/* Gemini usageMetadata: promptTokenCount includes the cached part (billed as a cache
 * read here), thoughts are billed as output. Cumulative: the largest value wins. */
static bool gemini_usage(json_t *usage, struct llm_usage *u)
{
	int64_t prompt = 0, cached = 0, cand = 0, thoughts = 0;
	bool any = false;

	if (!json_is_object(usage))
		return false;
	any |= get_count(usage, "promptTokenCount", &prompt);
	(void)get_count(usage, "cachedContentTokenCount", &cached);
	any |= get_count(usage, "candidatesTokenCount", &cand);
	any |= get_count(usage, "thoughtsTokenCount", &thoughts);
	if (!any)
		return false;
	if (cached > prompt)
		cached = prompt;
	max_into(&u->input, prompt - cached);
	max_into(&u->cache_read, cached);
	max_into(&u->output, cand + thoughts);
	u->seen = true;
	return true;
}

/* A Gemini answer (or stream chunk) is final once a candidate has a finishReason. */
static bool gemini_finished(json_t *j)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(j, "candidates"), i, c)
	{
		const char *fr = json_string_value(json_object_get(c, "finishReason"));
		if (fr && *fr && strcmp(fr, "FINISH_REASON_UNSPECIFIED") != 0)
			return true;
	}
	return false;
}

static void dispatch(struct llm_sse *s)
{
	_cleanup_json_ json_t *j = NULL;
	const char *type;

	if (!s->has_data || s->data_overflow)
		goto out;
	s->events++;
	if (s->data_len == 6 && memcmp(s->data, "[DONE]", 6) == 0) {
		s->complete = true;
		goto out;
	}
	j = json_loadb(s->data, s->data_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j))
		goto out;
	if (s->api == LLM_API_GEMINI) {
		if (json_object_get(j, "error"))
			s->error = true;
		gemini_usage(json_object_get(j, "usageMetadata"), &s->usage);
		if (gemini_finished(j))
			s->complete = true;
		goto out;
	}
	if (s->api == LLM_API_OPENAI) {
		type = json_string_value(json_object_get(j, "type"));
		if (type && strncmp(type, "response.", 9) == 0) {
			/* Responses API: the final event carries the response with its usage
			 * (also when it ended incomplete or failed); there is no [DONE]. */
			if (strcmp(type, "response.completed") == 0 ||
			    strcmp(type, "response.incomplete") == 0 ||
			    strcmp(type, "response.failed") == 0) {
				openai_usage(
					json_object_get(json_object_get(j, "response"), "usage"),
					&s->usage);
				s->complete = true;
				if (strcmp(type, "response.failed") == 0)
					s->error = true;
			}
			goto out;
		}
		if (json_object_get(j, "error") || (type && strcmp(type, "error") == 0))
			s->error = true;
		openai_usage(json_object_get(j, "usage"), &s->usage);
		goto out;
	}
	type = json_string_value(json_object_get(j, "type"));
	if (!type)
		goto out;
	if (strcmp(type, "message_start") == 0)
		anthropic_usage(json_object_get(json_object_get(j, "message"), "usage"), &s->usage);
	else if (strcmp(type, "message_delta") == 0)
		anthropic_usage(json_object_get(j, "usage"), &s->usage);
	else if (strcmp(type, "message_stop") == 0)
		s->complete = true;
	else if (strcmp(type, "error") == 0)
		s->error = true;
out:
	s->data_len = 0;
	s->has_data = false;
	s->data_overflow = false;
}

static void process_line(struct llm_sse *s)
{
	const char *l = s->line, *v;
	size_t n = s->line_len, vlen;

	if (s->overflow) {
		/* A field we could not hold: if it was data, the event is unusable. */
		s->data_overflow = true;
		s->has_data = true;
		return;
	}
	if (n == 0) {
		dispatch(s);
		return;
	}
	if (n < 5 || memcmp(l, "data:", 5) != 0)
		return; /* event:, id:, retry:, comments: not needed for usage */
	v = l + 5;
	vlen = n - 5;
	if (vlen && *v == ' ')
		v++, vlen--;
	if (s->has_data) {
		if (s->data_len + 1 > s->max_line) {
			s->data_overflow = true;
			return;
		}
		s->data[s->data_len++] = '\n';
	}
	s->has_data = true;
	if (s->data_len + vlen > s->max_line) {
		s->data_overflow = true;
		return;
	}
	memcpy(s->data + s->data_len, v, vlen);
	s->data_len += vlen;
}

void llm_sse_feed(struct llm_sse *s, const void *buf, size_t len)
{
	const char *p = buf;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (c == '\n' && s->last_cr) {
			s->last_cr = false;
			continue;
		}
		s->last_cr = c == '\r';
		if (c == '\n' || c == '\r') {
			process_line(s);
			s->line_len = 0;
			s->overflow = false;
			continue;
		}
		if (s->overflow)
			continue;
		if (s->line_len == s->max_line) {
			s->overflow = true;
			continue;
		}
		s->line[s->line_len++] = c;
	}
}

void llm_sse_usage(const struct llm_sse *s, struct llm_usage *ret)
{
	*ret = s->usage;
}

bool llm_sse_complete(const struct llm_sse *s)
{
	return s->complete;
}

bool llm_sse_saw_error(const struct llm_sse *s)
{
	return s->error;
}

size_t llm_sse_events(const struct llm_sse *s)
{
	return s->events;
}

int llm_usage_parse_json(enum llm_api api, const void *body, size_t len, struct llm_usage *ret)
{
	_cleanup_json_ json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	struct llm_usage u = {0};
	bool ok;

	if (!json_is_object(j))
		return -EINVAL;
	ok = api == LLM_API_OPENAI   ? openai_usage(json_object_get(j, "usage"), &u)
	     : api == LLM_API_GEMINI ? gemini_usage(json_object_get(j, "usageMetadata"), &u)
				     : anthropic_usage(json_object_get(j, "usage"), &u);
	if (!ok)
		return -ENOENT;
	*ret = u;
	return 0;
}
