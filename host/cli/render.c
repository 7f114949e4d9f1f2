/* SPDX-License-Identifier: Apache-2.0 */
/* Readable agent output (render.h). The stream-json shapes are Claude Code's: "system"
 * (init), "assistant" and "user" messages with content blocks, "result". */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "render.h"

#define SUMMARY_MAX 200

void cli_render_init(struct cli_render *r, FILE *out)
{
	*r = (struct cli_render){.out = out};
}

void cli_render_done(struct cli_render *r)
{
	free(r->line);
	free(r->result);
	*r = (struct cli_render){0};
}

static void keep_tail(struct cli_render *r, const char *buf, size_t len)
{
	if (len >= sizeof(r->tail)) {
		memcpy(r->tail, buf + len - sizeof(r->tail) + 1, sizeof(r->tail) - 1);
		r->tail_len = sizeof(r->tail) - 1;
		return;
	}
	if (r->tail_len + len >= sizeof(r->tail)) {
		size_t drop = r->tail_len + len - (sizeof(r->tail) - 1);
		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, buf, len);
	r->tail_len += len;
}

/* One line of at most SUMMARY_MAX bytes of s, control characters as spaces. */
static void put_summary(FILE *f, const char *s)
{
	size_t n = 0;
	for (; s && *s && n < SUMMARY_MAX; s++, n++)
		fputc((unsigned char)*s < 0x20 ? ' ' : *s, f);
	if (s && *s)
		fputs("...", f);
}

/* What a tool call is about: its command, path or pattern, else its input as JSON. */
static void put_tool_use(FILE *f, json_t *b)
{
	static const char *const keys[] = {"command", "file_path", "path",
					   "pattern", "url",	   "description"};
	json_t *in = json_object_get(b, "input");
	const char *name = json_string_value(json_object_get(b, "name"));
	fprintf(f, "→ %s", name ? name : "tool");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(in, keys[i]));
		if (v) {
			fputs(": ", f);
			put_summary(f, v);
			fputc('\n', f);
			return;
		}
	}
	char *s = json_dumps(in, JSON_COMPACT);
	if (s) {
		fputc(' ', f);
		put_summary(f, s);
	}
	free(s);
	fputc('\n', f);
}

static void put_tool_result(FILE *f, json_t *b)
{
	json_t *c = json_object_get(b, "content");
	const char *text = json_string_value(c);
	if (!text && json_is_array(c))
		text = json_string_value(json_object_get(json_array_get(c, 0), "text"));
	fprintf(f, "  ← %s", json_is_true(json_object_get(b, "is_error")) ? "error: " : "");
	put_summary(f, text && *text ? text : "(no output)");
	fputc('\n', f);
}

static void put_message(FILE *f, json_t *msg)
{
	json_t *b;
	size_t i;
	json_array_foreach(json_object_get(msg, "content"), i, b)
	{
		const char *type = json_string_value(json_object_get(b, "type"));
		if (!type)
			continue;
		if (strcmp(type, "text") == 0) {
			const char *t = json_string_value(json_object_get(b, "text"));
			if (t && *t)
				fprintf(f, "%s\n", t);
		} else if (strcmp(type, "tool_use") == 0) {
			put_tool_use(f, b);
		} else if (strcmp(type, "tool_result") == 0) {
			put_tool_result(f, b);
		}
	}
}

/* Renders a stream-json object; false when the line is not one (it passes through). */
static bool stream_json(struct cli_render *r, const char *line, size_t len)
{
	json_error_t jerr;
	if (len < 2 || line[0] != '{')
		return false;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *type = json_string_value(json_object_get(j, "type"));
	if (!type || !json_is_string(json_object_get(j, "session_id"))) {
		json_decref(j);
		return false;
	}
	FILE *f = r->out;
	if (strcmp(type, "result") == 0) {
		const char *res = json_string_value(json_object_get(j, "result"));
		free(r->result);
		r->result = strdup(res ? res : "");
		if (f) {
			fprintf(f, "● %s after %.1f s, %lld turn(s)",
				json_is_true(json_object_get(j, "is_error")) ? "failed" : "done",
				(double)json_integer_value(json_object_get(j, "duration_ms")) /
					1000,
				(long long)json_integer_value(json_object_get(j, "num_turns")));
			if (json_is_true(json_object_get(j, "is_error")) && res) {
				fputs(": ", f);
				put_summary(f, res);
			}
			fputc('\n', f);
		}
	} else if (f && strcmp(type, "system") == 0) {
		const char *sub = json_string_value(json_object_get(j, "subtype"));
		if (sub && strcmp(sub, "init") == 0)
			fprintf(f, "● Claude Code %s, model %s, in %s\n",
				json_string_value(json_object_get(j, "claude_code_version")) ?: "?",
				json_string_value(json_object_get(j, "model")) ?: "?",
				json_string_value(json_object_get(j, "cwd")) ?: "?");
	} else if (f && (strcmp(type, "assistant") == 0 || strcmp(type, "user") == 0)) {
		put_message(f, json_object_get(j, "message"));
	}
	json_decref(j);
	return true;
}

static void emit_line(struct cli_render *r, const char *line, size_t len, bool nl)
{
	if (!r->overflow && stream_json(r, line, len))
		return;
	keep_tail(r, line, len);
	if (nl)
		keep_tail(r, "\n", 1);
	if (r->out) {
		fwrite(line, 1, len, r->out);
		if (nl)
			fputc('\n', r->out);
	}
}

void cli_render_feed(struct cli_render *r, const char *buf, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t n = nl ? (size_t)(nl - buf) : len;
		if (r->overflow || r->len + n > CLI_RENDER_LINE_MAX) {
			/* too long to be rendered: what was held, then the rest, raw */
			if (!r->overflow && r->len)
				emit_line(r, r->line, r->len, false);
			r->len = 0;
			r->overflow = true;
			emit_line(r, buf, n, nl != NULL);
		} else if (nl) {
			if (r->len) {
				char *l = realloc(r->line, r->len + n + 1);
				if (!l)
					return;
				r->line = l;
				memcpy(r->line + r->len, buf, n);
				emit_line(r, r->line, r->len + n, true);
				r->len = 0;
			} else {
				emit_line(r, buf, n, true);
			}
		} else {
			char *l = realloc(r->line, r->len + n + 1);
			if (!l)
				return;
			r->line = l;
			memcpy(r->line + r->len, buf, n);
			r->len += n;
		}
		if (nl)
			r->overflow = false;
		buf += n + (nl ? 1 : 0);
		len -= n + (nl ? 1 : 0);
	}
	if (r->out)
		fflush(r->out);
}

void cli_render_flush(struct cli_render *r)
{
	if (r->len)
		emit_line(r, r->line, r->len, false);
	r->len = 0;
	if (r->out)
		fflush(r->out);
}

const char *cli_render_message(struct cli_render *r)
{
	if (r->result)
		return r->result;
	/* The end of stdout: trailing white space trimmed, ANSI escapes removed. */
	size_t n = r->tail_len, o = 0;
	while (n > 0 && strchr(" \t\r\n", r->tail[n - 1]))
		n--;
	for (size_t i = 0; i < n; i++) {
		if (r->tail[i] == '\033') {
			i++;
			if (i < n && r->tail[i] == '[')
				while (i + 1 < n &&
				       !(r->tail[i + 1] >= '@' && r->tail[i + 1] <= '~'))
					i++;
			i++;
			continue;
		}
		r->tail[o++] = r->tail[i];
	}
	r->tail[o] = 0;
	r->tail_len = o;
	return r->tail;
}
