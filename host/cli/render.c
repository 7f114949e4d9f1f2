/* SPDX-License-Identifier: Apache-2.0 */
/* Readable agent output (render.h). The stream-json shapes are Claude Code's: "system"
 * (init), "assistant" and "user" messages with content blocks, "result". */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "render.h"
#include "visible.h"

#define SUMMARY_MAX 200

void cli_render_init(struct cli_render *r, FILE *out, bool visible)
{
	*r = (struct cli_render){.out = out, .visible = visible};
}

/* Everything shown goes through here: on a terminal with its control bytes made visible
 * (visible.h), the agent's text being the guest's. */
static void out_write(struct cli_render *r, const char *buf, size_t len)
{
	if (!r->out || len == 0)
		return;
	if (!r->visible) {
		fwrite(buf, 1, len, r->out);
		return;
	}
	char *v = malloc(4 * len + 1);
	if (!v)
		return;
	fwrite(v, 1, cli_visible(buf, len, CLI_VISIBLE_LINES | CLI_VISIBLE_SGR, v), r->out);
	free(v);
}

static void out_printf(struct cli_render *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void out_printf(struct cli_render *r, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n > 0)
		out_write(r, s, (size_t)n);
	free(s);
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
static void put_summary(struct cli_render *r, const char *s)
{
	char buf[SUMMARY_MAX + 4];
	size_t n = 0;
	for (; s && *s && n < SUMMARY_MAX; s++)
		buf[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	if (s && *s)
		for (int i = 0; i < 3; i++)
			buf[n++] = '.';
	out_write(r, buf, n);
}

/* What a tool call is about: its command, path or pattern, else its input as JSON. */
static void put_tool_use(struct cli_render *r, json_t *b)
{
	static const char *const keys[] = {"command", "file_path", "path",
					   "pattern", "url",	   "description"};
	json_t *in = json_object_get(b, "input");
	const char *name = json_string_value(json_object_get(b, "name"));
	out_write(r, "→ ", strlen("→ "));
	put_summary(r, name ? name : "tool");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(in, keys[i]));
		if (v) {
			out_write(r, ": ", 2);
			put_summary(r, v);
			out_write(r, "\n", 1);
			return;
		}
	}
	char *s = json_dumps(in, JSON_COMPACT);
	if (s) {
		out_write(r, " ", 1);
		put_summary(r, s);
	}
	free(s);
	out_write(r, "\n", 1);
}

static void put_tool_result(struct cli_render *r, json_t *b)
{
	json_t *c = json_object_get(b, "content");
	const char *text = json_string_value(c);
	if (!text && json_is_array(c))
		text = json_string_value(json_object_get(json_array_get(c, 0), "text"));
	out_printf(r, "  ← %s", json_is_true(json_object_get(b, "is_error")) ? "error: " : "");
	put_summary(r, text && *text ? text : "(no output)");
	out_write(r, "\n", 1);
}

static void put_message(struct cli_render *r, json_t *msg)
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
			if (t && *t) {
				out_write(r, t, strlen(t));
				out_write(r, "\n", 1);
			}
		} else if (strcmp(type, "tool_use") == 0) {
			put_tool_use(r, b);
		} else if (strcmp(type, "tool_result") == 0) {
			put_tool_result(r, b);
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
	bool show = r->out != NULL;
	if (strcmp(type, "result") == 0) {
		const char *res = json_string_value(json_object_get(j, "result"));
		bool failed = json_is_true(json_object_get(j, "is_error"));
		free(r->result);
		r->result = strdup(res ? res : "");
		if (show) {
			out_printf(r, "● %s after %.1f s, %lld turn(s)", failed ? "failed" : "done",
				   (double)json_integer_value(json_object_get(j, "duration_ms")) /
					   1000,
				   (long long)json_integer_value(json_object_get(j, "num_turns")));
			if (failed && res) {
				out_write(r, ": ", 2);
				put_summary(r, res);
			}
			out_write(r, "\n", 1);
		}
	} else if (show && strcmp(type, "system") == 0) {
		const char *sub = json_string_value(json_object_get(j, "subtype"));
		if (sub && strcmp(sub, "init") == 0) {
			out_write(r, "● Claude Code ", strlen("● Claude Code "));
			put_summary(r, json_string_value(json_object_get(j, "claude_code_version"))
					       ?: "?");
			out_write(r, ", model ", 8);
			put_summary(r, json_string_value(json_object_get(j, "model")) ?: "?");
			out_write(r, ", in ", 5);
			put_summary(r, json_string_value(json_object_get(j, "cwd")) ?: "?");
			out_write(r, "\n", 1);
		}
	} else if (show && (strcmp(type, "assistant") == 0 || strcmp(type, "user") == 0)) {
		put_message(r, json_object_get(j, "message"));
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
	out_write(r, line, len);
	if (nl)
		out_write(r, "\n", 1);
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
