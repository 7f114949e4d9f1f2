/* SPDX-License-Identifier: Apache-2.0 */
/* Egress lane frame reader and writer (egress-io.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "egress-io.h"

#define RBUF_SIZE (ORCH_EGRESS_HDR_LEN + ORCH_EGRESS_MAX_PAYLOAD + 128 * 1024)
#define MAX_IOV 64

struct block {
	struct block *next;
	size_t len, off;
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
	free(io);
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
	b->len = ORCH_EGRESS_HDR_LEN + len;
	orch_egress_hdr_put(b->data, type, conn, (uint32_t)len);
	if (io->tail)
		io->tail->next = b;
	else
		io->head = b;
	io->tail = b;
	io->queued += b->len;
	return 0;
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

int orch_egress_io_read(struct orch_egress_io *io, int fd, size_t budget, struct orch_error *err)
{
	size_t done = 0;
	int r;

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
	b->len = ORCH_EGRESS_HDR_LEN + len;
	orch_egress_hdr_put(b->data, type, conn, (uint32_t)len);
	if (len)
		memcpy(b->data + ORCH_EGRESS_HDR_LEN, payload, len);
	if (io->tail)
		io->tail->next = b;
	else
		io->head = b;
	io->tail = b;
	io->queued += b->len;
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

int orch_egress_io_flush(struct orch_egress_io *io, int fd)
{
	while (io->head) {
		struct iovec iov[MAX_IOV];
		int n = 0;
		for (struct block *b = io->head; b && n < MAX_IOV; b = b->next, n++)
			iov[n] = (struct iovec){b->data + b->off, b->len - b->off};
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
			io->head = b->next;
			if (!io->head)
				io->tail = NULL;
			free(b);
		}
	}
	return 0;
}
