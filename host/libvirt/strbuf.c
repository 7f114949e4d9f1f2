/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

static bool reserve(struct lv_buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

static void append_n(struct lv_buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

void lv_buf_append(struct lv_buf *b, const char *s)
{
	append_n(b, s, strlen(s));
}

void lv_buf_appendf(struct lv_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void lv_buf_append_xml(struct lv_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			lv_buf_append(b, "&amp;");
			break;
		case '<':
			lv_buf_append(b, "&lt;");
			break;
		case '>':
			lv_buf_append(b, "&gt;");
			break;
		case '\'':
			lv_buf_append(b, "&apos;");
			break;
		case '"':
			lv_buf_append(b, "&quot;");
			break;
		default:
			append_n(b, s, 1);
		}
	}
}

int lv_buf_steal(struct lv_buf *b, char **ret)
{
	if (b->oom || !reserve(b, 0)) {
		lv_buf_done(b);
		return -ENOMEM;
	}
	*ret = b->s;
	b->s = NULL;
	b->len = b->cap = 0;
	return 0;
}

void lv_buf_done(struct lv_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}
