/* SPDX-License-Identifier: Apache-2.0 */
/* A growable string for building XML and command lines. Allocation failures are sticky:
 * after one, every append is a no-op and lv_buf_steal returns -ENOMEM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct lv_buf {
	char *s;
	size_t len, cap;
	bool oom;
};

void lv_buf_append(struct lv_buf *b, const char *s);
void lv_buf_appendf(struct lv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with &, <, >, ' and " escaped for XML text and attribute values. */
void lv_buf_append_xml(struct lv_buf *b, const char *s);
/* Hands the string to the caller (*ret); returns 0 or -ENOMEM (buffer freed either way). */
int lv_buf_steal(struct lv_buf *b, char **ret);
void lv_buf_done(struct lv_buf *b);
