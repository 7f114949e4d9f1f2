/* SPDX-License-Identifier: Apache-2.0 */
/* Egress lane frame reader and writer (egress-io.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "egress-io.h"

#define RBUF_SIZE (ORCH_EGRESS_HDR_LEN + ORCH_EGRESS_MAX_PAYLOAD + 128 * 1024)
#define MAX_IOV 64

struct block {
	struct block *next;
	size_t len, off; /* of data[] */
	size_t piped;	 /* then this many payload bytes from the io's pipe */
	uint8_t data[];
};

struct orch_egress_io {
	orch_egress_frame_cb cb;
	void *data;
	uint8_t *rbuf;
	size_t rlen;
	struct block *head, *tail;
	size_t queued;
	struct block *spare; /* orch_egress_io_reserve's, not yet queued */
	size_t spare_cap;
	int pipe[2];	 /* orch_egress_io_splice's: one frame's payload at a time */
	size_t pipe_len; /* bytes in it, all of the one block that names them */
	bool no_splice;	 /* the kernel refused: copy instead */
	/* reading with a sink (orch_egress_io_set_sink): frame by frame, exactly */
	orch_egress_sink_cb sink;
	orch_egress_sunk_cb sunk;
	struct orch_egress_hdr sp_hdr; /* the DATA frame whose payload is being spliced */
	size_t sp_left;		       /* of its payload, still on the lane */
	int sp_pipe[2];
	bool sp_broken; /* the kernel cannot splice from the lane: copy */
};

int orch_egress_io_new(orch_egress_frame_cb cb, void *data, struct orch_egress_io **ret)
{
	struct orch_egress_io *io = calloc(1, sizeof(*io));

	if (!io || !(io->rbuf = malloc(RBUF_SIZE))) {
		free(io);
		return -ENOMEM;
	}
	io->cb = cb;
	io->data = data;
	io->pipe[0] = io->pipe[1] = -1;
	io->sp_pipe[0] = io->sp_pipe[1] = -1;
	*ret = io;
	return 0;
}

void orch_egress_io_free(struct orch_egress_io *io)
{
	if (!io)
		return;
	for (struct block *b = io->head, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	free(io->spare);
	free(io->rbuf);
	for (int i = 0; i < 2; i++) {
		if (io->pipe[i] >= 0)
			close(io->pipe[i]);
		if (io->sp_pipe[i] >= 0)
			close(io->sp_pipe[i]);
	}
	free(io);
}

static void append(struct orch_egress_io *io, struct block *b)
{
	if (io->tail)
		io->tail->next = b;
	else
		io->head = b;
	io->tail = b;
	io->queued += b->len + b->piped;
}

uint8_t *orch_egress_io_reserve(struct orch_egress_io *io, size_t max)
{
	if (max > ORCH_EGRESS_MAX_PAYLOAD)
		max = ORCH_EGRESS_MAX_PAYLOAD;
	if (!io->spare || io->spare_cap < max) {
		free(io->spare);
		io->spare = malloc(sizeof(struct block) + ORCH_EGRESS_HDR_LEN + max);
		io->spare_cap = io->spare ? max : 0;
		if (!io->spare)
			return NULL;
	}
	return io->spare->data + ORCH_EGRESS_HDR_LEN;
}

int orch_egress_io_commit(struct orch_egress_io *io, uint8_t type, uint32_t conn, size_t len)
{
	struct block *b = io->spare;

	if (!b || len > io->spare_cap)
		return -EINVAL;
	if (len == 0)
		return 0;
	io->spare = NULL;
	io->spare_cap = 0;
	b->next = NULL;
	b->off = 0;
	b->piped = 0;
	b->len = ORCH_EGRESS_HDR_LEN + len;
	orch_egress_hdr_put(b->data, type, conn, (uint32_t)len);
	append(io, b);
	return 0;
}

ssize_t orch_egress_io_splice(struct orch_egress_io *io, int fd, size_t max, uint8_t type,
			      uint32_t conn)
{
	struct block *b;
	ssize_t n;

	if (io->no_splice)
		return -EOPNOTSUPP;
	if (io->pipe_len)
		return -EBUSY;
	if (max > ORCH_EGRESS_MAX_PAYLOAD)
		max = ORCH_EGRESS_MAX_PAYLOAD;
	if (max == 0)
		return -EINVAL;
	if (io->pipe[0] < 0) {
		if (pipe2(io->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
			return -errno;
		/* room for a whole frame even in the socket's small pieces */
		(void)fcntl(io->pipe[1], F_SETPIPE_SZ, 4 * ORCH_EGRESS_MAX_PAYLOAD);
	}
	if (!(b = malloc(sizeof(*b) + ORCH_EGRESS_HDR_LEN)))
		return -ENOMEM;
	do
		n = splice(fd, NULL, io->pipe[1], NULL, max, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		int e = errno;
		free(b);
		if (n == 0)
			return 0;
		if (e == EINVAL || e == ENOSYS) { /* not a socket the kernel splices from */
			io->no_splice = true;
			return -EOPNOTSUPP;
		}
		return e == EWOULDBLOCK ? -EAGAIN : -e;
	}
	b->next = NULL;
	b->off = 0;
	b->len = ORCH_EGRESS_HDR_LEN;
	b->piped = (size_t)n;
	orch_egress_hdr_put(b->data, type, conn, (uint32_t)n);
	io->pipe_len = (size_t)n;
	append(io, b);
	return n;
}

/* Hands on the complete frames at the start of rbuf; keeps the rest. */
static int dispatch(struct orch_egress_io *io, struct orch_error *err)
{
	size_t off = 0;
	int r = 0;

	while (io->rlen - off >= ORCH_EGRESS_HDR_LEN) {
		struct orch_egress_hdr h;
		if ((r = orch_egress_hdr_get(io->rbuf + off, &h, err)) < 0)
			break;
		if (io->rlen - off - ORCH_EGRESS_HDR_LEN < h.len)
			break;
		r = io->cb(io->data, &h, io->rbuf + off + ORCH_EGRESS_HDR_LEN);
		off += ORCH_EGRESS_HDR_LEN + h.len;
		if (r < 0)
			break;
	}
	if (off) {
		memmove(io->rbuf, io->rbuf + off, io->rlen - off);
		io->rlen -= off;
	}
	return r < 0 ? r : 0;
}

void orch_egress_io_set_sink(struct orch_egress_io *io, orch_egress_sink_cb sink,
			     orch_egress_sunk_cb sunk)
{
	io->sink = sink;
	io->sunk = sunk;
}

/* A piece of the payload being spliced: from the lane into the pipe, from there to the
 * sink's socket, and what that socket did not take through the callback as DATA. 0 or
 * 1 (nothing to read now), or < 0 as orch_egress_io_read. */
static int splice_piece(struct orch_egress_io *io, int fd, size_t *done)
{
	struct orch_egress_hdr piece = io->sp_hdr;
	int out = io->sp_broken ? -1 : io->sink(io->data, &io->sp_hdr);
	size_t want = io->sp_left < ORCH_EGRESS_MAX_PAYLOAD ? io->sp_left : ORCH_EGRESS_MAX_PAYLOAD;
	ssize_t n;

	if (out >= 0 && io->sp_pipe[0] < 0) {
		if (pipe2(io->sp_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
			out = -1;
		else
			(void)fcntl(io->sp_pipe[1], F_SETPIPE_SZ, 4 * ORCH_EGRESS_MAX_PAYLOAD);
	}
	if (out >= 0) {
		do
			n = splice(fd, NULL, io->sp_pipe[1], NULL, want,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		while (n < 0 && errno == EINTR);
		if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
			io->sp_broken = true; /* copied from here on */
			out = -1;
		}
	}
	if (out < 0) { /* through the buffer */
		do
			n = read(fd, io->rbuf, want);
		while (n < 0 && errno == EINTR);
		if (n > 0) {
			piece.len = (uint32_t)n;
			io->sp_left -= (size_t)n;
			*done += (size_t)n;
			return io->cb(io->data, &piece, io->rbuf);
		}
	}
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
	if (n == 0)
		return -EPIPE;
	io->sp_left -= (size_t)n;
	*done += (size_t)n;
	size_t moved = 0;
	while (moved < (size_t)n) {
		ssize_t w = splice(io->sp_pipe[0], NULL, out, NULL, (size_t)n - moved,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* full, or gone: the rest through the callback, which finds out */
		moved += (size_t)w;
	}
	if (moved) {
		piece.len = (uint32_t)moved;
		io->sunk(io->data, &piece);
	}
	if (moved < (size_t)n) {
		size_t rest = (size_t)n - moved, got = 0;
		while (got < rest) {
			ssize_t r = read(io->sp_pipe[0], io->rbuf + got, rest - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return -EIO; /* the pipe holds what it was given: cannot be */
			got += (size_t)r;
		}
		piece.len = (uint32_t)rest;
		return io->cb(io->data, &piece, io->rbuf);
	}
	return 0;
}

/* Frame by frame: exactly a header, then exactly its payload, or its payload spliced. */
static int read_sink(struct orch_egress_io *io, int fd, size_t budget, struct orch_error *err)
{
	size_t done = 0;
	int r;

	while (done < budget) {
		if (io->sp_left) {
			if ((r = splice_piece(io, fd, &done)) != 0)
				return r > 0 ? 0 : r;
			continue;
		}
		struct orch_egress_hdr h;
		size_t need = ORCH_EGRESS_HDR_LEN - io->rlen;
		if (io->rlen >= ORCH_EGRESS_HDR_LEN) {
			if ((r = orch_egress_hdr_get(io->rbuf, &h, err)) < 0)
				return r;
			need = ORCH_EGRESS_HDR_LEN + h.len - io->rlen;
		}
		ssize_t n = need ? read(fd, io->rbuf + io->rlen, need) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		if (need && n == 0)
			return -EPIPE;
		io->rlen += (size_t)n;
		done += (size_t)n;
		if (io->rlen < ORCH_EGRESS_HDR_LEN)
			continue;
		if ((r = orch_egress_hdr_get(io->rbuf, &h, err)) < 0)
			return r;
		if (io->rlen == ORCH_EGRESS_HDR_LEN && h.type == ORCH_EGRESS_DATA) {
			io->sp_hdr = h; /* its payload: spliced where the sink says */
			io->sp_left = h.len;
			io->rlen = 0;
			continue;
		}
		if (io->rlen < ORCH_EGRESS_HDR_LEN + h.len)
			continue;
		io->rlen = 0;
		if ((r = io->cb(io->data, &h, io->rbuf + ORCH_EGRESS_HDR_LEN)) < 0)
			return r;
	}
	return 0;
}

int orch_egress_io_read(struct orch_egress_io *io, int fd, size_t budget, struct orch_error *err)
{
	size_t done = 0;
	int r;

	if (io->sink)
		return read_sink(io, fd, budget, err);
	while (done < budget) {
		ssize_t n = read(fd, io->rbuf + io->rlen, RBUF_SIZE - io->rlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		if (n == 0)
			return -EPIPE;
		io->rlen += (size_t)n;
		done += (size_t)n;
		if ((r = dispatch(io, err)) < 0)
			return r;
	}
	return 0;
}

int orch_egress_io_queue(struct orch_egress_io *io, uint8_t type, uint32_t conn,
			 const void *payload, size_t len)
{
	struct block *b;

	if (len > ORCH_EGRESS_MAX_PAYLOAD)
		return -EMSGSIZE;
	b = malloc(sizeof(*b) + ORCH_EGRESS_HDR_LEN + len);
	if (!b)
		return -ENOMEM;
	b->next = NULL;
	b->off = 0;
	b->piped = 0;
	b->len = ORCH_EGRESS_HDR_LEN + len;
	orch_egress_hdr_put(b->data, type, conn, (uint32_t)len);
	if (len)
		memcpy(b->data + ORCH_EGRESS_HDR_LEN, payload, len);
	append(io, b);
	return 0;
}

int orch_egress_io_credit(struct orch_egress_io *io, uint32_t conn, uint32_t n)
{
	uint8_t p[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
	return orch_egress_io_queue(io, ORCH_EGRESS_CREDIT, conn, p, sizeof(p));
}

size_t orch_egress_io_queued(const struct orch_egress_io *io)
{
	return io->queued;
}

static void pop(struct orch_egress_io *io)
{
	struct block *b = io->head;

	io->head = b->next;
	if (!io->head)
		io->tail = NULL;
	free(b);
}

/* A lane the kernel cannot splice into: the head block's payload is read out of the pipe
 * into a block of its own that takes the head's place (its header is out already), and
 * frames are copied from then on. */
static int unpipe(struct orch_egress_io *io)
{
	struct block *b = io->head, *nb = malloc(sizeof(*nb) + b->piped);
	size_t got = 0;

	if (!nb)
		return -ENOMEM;
	while (got < b->piped) {
		ssize_t r = read(io->pipe[0], nb->data + got, b->piped - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(nb);
			return -EIO;
		}
		got += (size_t)r;
	}
	nb->next = b->next;
	nb->off = 0;
	nb->len = got;
	nb->piped = 0;
	io->head = nb;
	if (io->tail == b)
		io->tail = nb;
	io->pipe_len = 0;
	io->no_splice = true;
	free(b);
	return 0;
}

/* The payload of the head block, from the pipe. 0: all of it went (or it is a plain
 * block now); 1: the lane is full. */
static int flush_piped(struct orch_egress_io *io, int fd)
{
	struct block *b = io->head;

	while (b->piped > 0) {
		ssize_t w = splice(io->pipe[0], NULL, fd, NULL, b->piped,
				   SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS))
			return unpipe(io);
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		if (w == 0)
			return -EIO; /* the pipe holds less than it was given: cannot be */
		b->piped -= (size_t)w;
		io->pipe_len -= (size_t)w;
		io->queued -= (size_t)w;
	}
	pop(io);
	return 0;
}

size_t orch_egress_io_piped(const struct orch_egress_io *io)
{
	return io->pipe_len;
}

int orch_egress_io_flush(struct orch_egress_io *io, int fd)
{
	while (io->head) {
		struct iovec iov[MAX_IOV];
		int n = 0, r;

		if (io->head->off == io->head->len) { /* its header is out: its payload next */
			if ((r = flush_piped(io, fd)) != 0)
				return r;
			continue;
		}
		/* whole blocks, up to and including the first with a piped payload */
		for (struct block *b = io->head; b && n < MAX_IOV; b = b->next) {
			iov[n++] = (struct iovec){b->data + b->off, b->len - b->off};
			if (b->piped)
				break;
		}
		ssize_t w = writev(fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		io->queued -= (size_t)w;
		while (w > 0 && io->head) {
			struct block *b = io->head;
			size_t left = b->len - b->off;
			if ((size_t)w < left) {
				b->off += (size_t)w;
				break;
			}
			w -= (ssize_t)left;
			b->off = b->len;
			if (b->piped)
				break; /* its payload: flush_piped */
			pop(io);
		}
	}
	return 0;
}
