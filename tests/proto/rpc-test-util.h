/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for the rpc tests: a raw peer that writes lines and reads replies. */
#pragma once

#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>

#include "loop.h"

struct raw_peer {
	struct orch_loop *loop;
	int fd;
	char buf[1 << 20];
	size_t len;
};

static inline void raw_write(struct raw_peer *p, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = write(p->fd, s + off, n - off);
		if (w < 0 && errno == EAGAIN) {
			orch_loop_run_once(p->loop, 10);
			continue;
		}
		ck_assert_int_gt(w, 0);
		off += (size_t)w;
	}
}

/* Returns the next line from the rpc side (malloc'd), running the loop meanwhile, or NULL
 * if nothing arrives within about timeout_ms. */
static inline char *raw_read_line(struct raw_peer *p, int timeout_ms)
{
	for (int i = 0; i <= timeout_ms / 5; i++) {
		char *nl = memchr(p->buf, '\n', p->len);
		if (nl) {
			size_t l = (size_t)(nl - p->buf);
			char *s = strndup(p->buf, l);
			memmove(p->buf, nl + 1, p->len - l - 1);
			p->len -= l + 1;
			return s;
		}
		ssize_t n = read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
		if (n > 0) {
			p->len += (size_t)n;
			continue;
		}
		orch_loop_run_once(p->loop, 5);
	}
	return NULL;
}

static inline json_t *raw_read_json(struct raw_peer *p, int timeout_ms)
{
	char *s = raw_read_line(p, timeout_ms);
	json_error_t e;
	json_t *j;

	if (!s)
		return NULL;
	j = json_loads(s, 0, &e);
	ck_assert_msg(j != NULL, "rpc sent invalid JSON: %s (%s)", s, e.text);
	free(s);
	return j;
}
