/* SPDX-License-Identifier: Apache-2.0 */
/* NDJSON framing. The reader keeps at most max_line pending bytes plus one read chunk:
 * an over-long line is reported once and skipped up to its newline, never buffered. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"

#define READ_CHUNK (64 * 1024)
#define READ_BUDGET 16 /* reads per orch_frame_read call */
/* Lines delivered per orch_frame_read call, and their bytes: what one peer may make the
 * loop do before others get a turn (the rest waits in the buffer: orch_frame_backlog). */
#define LINE_BUDGET 256
#define LINE_BYTES_BUDGET (256 * 1024)

struct frame_buf {
	char *p;
	size_t cap, start, end; /* data is p[start..end) */
};

struct orch_frame {
	size_t max_line, max_queued;
	orch_frame_line_cb on_line;
	orch_frame_error_cb on_error;
	void *data;

	struct frame_buf in;
	size_t scanned;	 /* in.p[start..start+scanned) is known to hold no '\n' */
	bool discarding; /* inside an over-long line: drop up to the next '\n' */
	bool backlog;	 /* the last read stopped at its line budget */

	struct frame_buf out;
	int is_sock; /* -1 unknown, 0 no, 1 yes (send with MSG_NOSIGNAL) */
};

int orch_frame_new(size_t max_line, size_t max_queued, orch_frame_line_cb on_line,
		   orch_frame_error_cb on_error, void *data, struct orch_frame **ret)
{
	struct orch_frame *f;

	if (!on_line)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->max_line = max_line ? max_line : ORCH_FRAME_DEFAULT_MAX_LINE;
	f->max_queued = max_queued ? max_queued : ORCH_FRAME_DEFAULT_MAX_QUEUED;
	f->on_line = on_line;
	f->on_error = on_error;
	f->data = data;
	f->is_sock = -1;
	*ret = f;
	return 0;
}

void orch_frame_free(struct orch_frame *f)
{
	if (!f)
		return;
	free(f->in.p);
	free(f->out.p);
	free(f);
}

size_t orch_frame_queued(const struct orch_frame *f)
{
	return f->out.end - f->out.start;
}

size_t orch_frame_max_line(const struct orch_frame *f)
{
	return f->max_line;
}

/* Makes room for at least want more bytes at the end, compacting first; never grows the
 * buffer beyond limit. Returns the free space (may be < want when at the limit). */
static int buf_reserve(struct frame_buf *b, size_t want, size_t limit, size_t *ret_space)
{
	size_t len = b->end - b->start;

	if (b->start > 0 && b->cap - b->end < want) {
		memmove(b->p, b->p + b->start, len);
		b->start = 0;
		b->end = len;
	}
	if (b->cap - b->end < want && b->cap < limit) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - len < want && cap < limit)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	*ret_space = b->cap - b->end;
	return 0;
}

static void report(struct orch_frame *f, int code, const char *msg)
{
	if (f->on_error)
		f->on_error(f->data, code, msg);
}

struct budget {
	size_t lines, bytes;
};

/* Delivers the complete lines in the input buffer, while budget lasts (NULL: all).
 * Returns 0 or a callback's < 0 (the remaining bytes stay buffered for the next call). */
static int process(struct orch_frame *f, struct budget *budget)
{
	struct frame_buf *b = &f->in;

	f->backlog = false;
	if (!b->p)
		return 0;
	for (;;) {
		if (budget && (budget->lines == 0 || budget->bytes == 0)) {
			f->backlog = b->end > b->start;
			return 0;
		}
		char *base = b->p + b->start;
		size_t avail = b->end - b->start;
		size_t from = f->scanned;
		char *nl = avail > from ? memchr(base + from, '\n', avail - from) : NULL;

		if (!nl) {
			f->scanned = avail;
			if (f->discarding) {
				b->start = b->end = f->scanned = 0;
			} else if (avail > f->max_line) {
				f->discarding = true;
				b->start = b->end = f->scanned = 0;
				report(f, -EMSGSIZE, "line exceeds the maximum length; skipped");
			}
			if (b->start == b->end)
				b->start = b->end = f->scanned = 0;
			return 0;
		}

		size_t len = (size_t)(nl - base);
		b->start += len + 1;
		f->scanned = 0;
		if (f->discarding) {
			f->discarding = false;
			continue;
		}
		if (len > f->max_line) {
			report(f, -EMSGSIZE, "line exceeds the maximum length; skipped");
			continue;
		}
		if (len == 0)
			continue;
		if (budget) {
			budget->lines--;
			budget->bytes = len < budget->bytes ? budget->bytes - len : 0;
		}
		int r = f->on_line(f->data, base, len);
		if (r < 0)
			return r;
	}
}

static size_t in_limit(const struct orch_frame *f)
{
	return f->max_line + 1 + READ_CHUNK;
}

int orch_frame_feed(struct orch_frame *f, const void *buf, size_t len)
{
	const char *p = buf;
	int r;

	r = process(f, NULL);
	if (r < 0)
		return r;
	while (len > 0) {
		size_t space, n;
		r = buf_reserve(&f->in, len < READ_CHUNK ? len : READ_CHUNK, in_limit(f), &space);
		if (r < 0)
			return r;
		n = len < space ? len : space;
		memcpy(f->in.p + f->in.end, p, n);
		f->in.end += n;
		p += n;
		len -= n;
		r = process(f, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

int orch_frame_read(struct orch_frame *f, int fd)
{
	struct budget budget = {LINE_BUDGET, LINE_BYTES_BUDGET};
	int r;

	r = process(f, &budget);
	if (r < 0 || f->backlog)
		return r;
	for (unsigned reads = 0;; reads++) {
		if (reads == READ_BUDGET)
			return 0; /* fairness: a flooding peer must not starve the loop */
		size_t space;
		ssize_t n;

		r = buf_reserve(&f->in, READ_CHUNK, in_limit(f), &space);
		if (r < 0)
			return r;
		n = read(fd, f->in.p + f->in.end, space);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (n == 0) {
			if (f->in.end > f->in.start && !f->discarding)
				report(f, -EPIPE, "connection closed mid-line");
			f->in.start = f->in.end = f->scanned = 0;
			f->discarding = false;
			return -EPIPE;
		}
		f->in.end += (size_t)n;
		r = process(f, &budget);
		if (r < 0 || f->backlog)
			return r;
	}
}

bool orch_frame_backlog(const struct orch_frame *f)
{
	return f->backlog;
}

int orch_frame_queue(struct orch_frame *f, const char *msg, size_t len)
{
	size_t space;
	int r;

	if (len > f->max_line)
		return -EMSGSIZE;
	if (memchr(msg, '\n', len))
		return -EINVAL;
	if (orch_frame_queued(f) + len + 1 > f->max_queued)
		return -ENOBUFS;
	r = buf_reserve(&f->out, len + 1, SIZE_MAX, &space);
	if (r < 0)
		return r;
	memcpy(f->out.p + f->out.end, msg, len);
	f->out.p[f->out.end + len] = '\n';
	f->out.end += len + 1;
	return 0;
}

static ssize_t write_some(struct orch_frame *f, int fd, const char *p, size_t len)
{
	if (f->is_sock != 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0 || errno != ENOTSOCK) {
			f->is_sock = 1;
			return n;
		}
		f->is_sock = 0;
	}
	return write(fd, p, len);
}

ssize_t orch_frame_flush(struct orch_frame *f, int fd)
{
	struct frame_buf *b = &f->out;

	while (b->end > b->start) {
		ssize_t n = write_some(f, fd, b->p + b->start, b->end - b->start);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		b->start += (size_t)n;
	}
	if (b->start == b->end)
		b->start = b->end = 0;
	return (ssize_t)(b->end - b->start);
}
