/* SPDX-License-Identifier: Apache-2.0 */
/* The egress lane's frame reader and writer (proto/egress-io.c) on real sockets: DATA
 * spliced from a TCP socket into a lane that takes little at a time, mixed with copied
 * frames and credits, arrives whole and in order; the reader with a sink splices DATA
 * payloads to a TCP socket, hands what that socket does not take to the frame callback,
 * keeps the frames around them intact, and stops at a malformed header or a stream cut
 * inside a payload. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-run.h"
#include "egress-io.h"

#define TOTAL (3u * 1024 * 1024 + 12345)

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + i / 4099);
}

static void nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* A connected TCP pair on loopback: a[0] the connecting end, a[1] the accepted one. */
static void tcp_pair(int a[2])
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(l, 1), 0);
	ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	a[0] = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(a[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
	a[1] = accept(l, NULL, NULL);
	ck_assert_int_ge(a[1], 0);
	close(l);
	nonblock(a[0]);
	nonblock(a[1]);
}

struct got {
	uint8_t *data; /* DATA bytes of conn 7 (the writer test) or conn 1 (the sink test) */
	size_t len, frames, max_frame, credits, other;
	uint8_t *other_data; /* DATA of conn 2 (sink test) */
	size_t other_len;
	/* the sink test */
	int sink_fd;
	size_t sunk;
};

static int on_frame(void *data, const struct orch_egress_hdr *h, const uint8_t *p)
{
	struct got *g = data;

	g->frames++;
	if (h->len > g->max_frame)
		g->max_frame = h->len;
	if (h->type == ORCH_EGRESS_CREDIT) {
		ck_assert_uint_eq(h->len, 4);
		g->credits++;
		return 0;
	}
	ck_assert_int_eq(h->type, ORCH_EGRESS_DATA);
	if (h->conn == 2) {
		memcpy(g->other_data + g->other_len, p, h->len);
		g->other_len += h->len;
		return 0;
	}
	memcpy(g->data + g->len, p, h->len);
	g->len += h->len;
	return 0;
}

START_TEST(test_splice_writer)
{
	int up[2], lane[2];
	struct orch_egress_io *w, *r;
	struct got g = {.data = malloc(TOTAL), .sink_fd = -1};
	uint8_t *src = malloc(TOTAL), buf[65536];
	size_t sent = 0, moved = 0, spliced = 0, copied = 0, busy = 0;
	int small = 16 * 1024, rounds = 0;
	bool eof = false;
	struct orch_error err = {0};

	for (size_t i = 0; i < TOTAL; i++)
		src[i] = pattern(i);
	tcp_pair(up);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, lane), 0);
	nonblock(lane[0]);
	nonblock(lane[1]);
	/* a lane that takes little at a time: partial frames, -EBUSY, EAGAIN */
	ck_assert_int_eq(setsockopt(lane[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	ck_assert_int_eq(orch_egress_io_new(on_frame, &g, &w), 0);
	ck_assert_int_eq(orch_egress_io_new(on_frame, &g, &r), 0);
	while (g.len < TOTAL || !eof) {
		ck_assert_int_lt(++rounds, 1000000);
		if (sent < TOTAL) {
			ssize_t n = send(up[0], src + sent, TOTAL - sent, MSG_DONTWAIT);
			if (n > 0)
				sent += (size_t)n;
			if (sent == TOTAL)
				shutdown(up[0], SHUT_WR);
		}
		if (!eof) {
			ssize_t n = orch_egress_io_splice(w, up[1], ORCH_EGRESS_MAX_PAYLOAD,
							  ORCH_EGRESS_DATA, 7);
			if (n == -EBUSY) { /* the copying path, as orchd takes it */
				busy++;
				uint8_t *b = orch_egress_io_reserve(w, ORCH_EGRESS_MAX_PAYLOAD);
				ck_assert_ptr_nonnull(b);
				n = recv(up[1], b, ORCH_EGRESS_MAX_PAYLOAD, MSG_DONTWAIT);
				if (n > 0) {
					ck_assert_int_eq(orch_egress_io_commit(w, ORCH_EGRESS_DATA,
									       7, (size_t)n),
							 0);
					copied += (size_t)n;
				} else if (n < 0) {
					ck_assert(errno == EAGAIN);
					n = -EAGAIN;
				}
			} else if (n > 0)
				spliced += (size_t)n;
			if (n == 0)
				eof = true;
			else if (n > 0) {
				moved += (size_t)n;
				/* a control frame between data frames */
				ck_assert_int_eq(orch_egress_io_credit(w, 9, 4096), 0);
			} else
				ck_assert_int_eq(n, -EAGAIN);
		}
		ck_assert_int_ge(orch_egress_io_flush(w, lane[0]), 0);
		ck_assert_int_eq(orch_egress_io_read(r, lane[1], 1 << 20, &err), 0);
	}
	while (orch_egress_io_queued(w) > 0) {
		ck_assert_int_ge(orch_egress_io_flush(w, lane[0]), 0);
		ck_assert_int_eq(orch_egress_io_read(r, lane[1], 1 << 20, &err), 0);
	}
	ck_assert_int_eq(orch_egress_io_read(r, lane[1], 1 << 20, &err), 0);
	ck_assert_uint_eq(moved, TOTAL);
	ck_assert_uint_eq(g.len, TOTAL);
	ck_assert_mem_eq(g.data, src, TOTAL);
	ck_assert_uint_le(g.max_frame, ORCH_EGRESS_MAX_PAYLOAD);
	ck_assert_uint_gt(spliced, 0);
	ck_assert_uint_gt(busy, 0); /* the small lane made the pipe wait */
	ck_assert_uint_eq(spliced + copied, TOTAL);
	ck_assert_uint_eq(orch_egress_io_piped(w), 0);
	ck_assert_uint_gt(g.credits, 0);
	orch_egress_io_free(w);
	orch_egress_io_free(r);
	close(up[0]);
	close(up[1]);
	close(lane[0]);
	close(lane[1]);
	free(src);
	free(g.data);
	(void)buf;
}
END_TEST

static int sink(void *data, const struct orch_egress_hdr *h)
{
	struct got *g = data;

	ck_assert_int_eq(h->type, ORCH_EGRESS_DATA);
	/* as the supervisor: not while bytes through the callback wait to be written */
	return h->conn == 1 && g->len == 0 ? g->sink_fd : -1;
}

static void sunk(void *data, const struct orch_egress_hdr *h)
{
	struct got *g = data;

	ck_assert_uint_eq(h->conn, 1);
	ck_assert_uint_gt(h->len, 0);
	g->sunk += h->len;
}

static void put_frame(uint8_t *out, size_t *len, uint8_t type, uint32_t conn, const void *p,
		      size_t n)
{
	orch_egress_hdr_put(out + *len, type, conn, (uint32_t)n);
	memcpy(out + *len + ORCH_EGRESS_HDR_LEN, p, n);
	*len += ORCH_EGRESS_HDR_LEN + n;
}

/* Frames for conn 1 (to the sink's socket), conn 2 (through the callback) and credits,
 * written to the lane in pieces of every size; the agent's socket is read slowly, so
 * some of conn 1's bytes come through the callback. */
START_TEST(test_sink_reader)
{
	int agent[2], lane[2];
	struct orch_egress_io *r;
	struct got g = {.data = malloc(TOTAL), .other_data = malloc(TOTAL)};
	uint8_t *src = malloc(TOTAL), *wire = malloc(2 * TOTAL + 65536), *at_agent = malloc(TOTAL);
	size_t wlen = 0, woff = 0, off = 0, agent_len = 0, other = 0, piece = 1, sock_read = 0,
	       through_cb = 0;
	int small = 32 * 1024, rounds = 0;
	struct orch_error err = {0};
	const uint8_t credit[4] = {0, 0, 16, 0};

	for (size_t i = 0; i < TOTAL; i++)
		src[i] = pattern(i);
	while (off < TOTAL) {
		size_t n = (off * 13 + 1) % ORCH_EGRESS_MAX_PAYLOAD + 1;
		if (n > TOTAL - off)
			n = TOTAL - off;
		put_frame(wire, &wlen, ORCH_EGRESS_DATA, 1, src + off, n);
		off += n;
		if (off % 3 == 0)
			put_frame(wire, &wlen, ORCH_EGRESS_CREDIT, 1, credit, 4);
		size_t m = off % 5000 + 1;
		put_frame(wire, &wlen, ORCH_EGRESS_DATA, 2, src + other, m);
		other += m;
	}
	tcp_pair(agent);
	ck_assert_int_eq(setsockopt(agent[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, lane), 0);
	nonblock(lane[0]);
	nonblock(lane[1]);
	g.sink_fd = agent[1];
	ck_assert_int_eq(orch_egress_io_new(on_frame, &g, &r), 0);
	orch_egress_io_set_sink(r, sink, sunk);
	while (woff < wlen || sock_read < g.sunk || g.len) {
		ck_assert_int_lt(++rounds, 2000000);
		if (woff < wlen) {
			size_t n = piece < wlen - woff ? piece : wlen - woff;
			ssize_t w = send(lane[0], wire + woff, n, MSG_DONTWAIT);
			if (w > 0)
				woff += (size_t)w;
			piece = piece * 3 % 200003 + 1; /* 1 byte to ~200 KB */
		}
		ck_assert_int_eq(orch_egress_io_read(r, lane[1], 1 << 20, &err), 0);
		if (rounds % 4 == 0 || woff == wlen) { /* the agent reads now and then */
			ssize_t n = recv(agent[0], at_agent + agent_len, TOTAL - agent_len,
					 MSG_DONTWAIT);
			if (n > 0) {
				agent_len += (size_t)n;
				sock_read += (size_t)n;
			}
		}
		/* what came through the callback is written once the socket took all
		 * before it, as the supervisor's queue does */
		if (g.len && sock_read == g.sunk) {
			memcpy(at_agent + agent_len, g.data, g.len);
			agent_len += g.len;
			through_cb += g.len;
			g.len = 0;
		}
	}
	ck_assert_uint_eq(agent_len, TOTAL);
	ck_assert_mem_eq(at_agent, src, TOTAL);
	ck_assert_uint_gt(g.sunk, 0);	  /* spliced */
	ck_assert_uint_gt(through_cb, 0); /* and some not taken by the slow socket */
	ck_assert_uint_eq(g.sunk + through_cb, TOTAL);
	ck_assert_uint_eq(g.other_len, other);
	ck_assert_mem_eq(g.other_data, src, other);
	ck_assert_uint_gt(g.credits, 0);
	orch_egress_io_free(r);
	close(agent[0]);
	close(agent[1]);
	close(lane[0]);
	close(lane[1]);
	free(src);
	free(wire);
	free(at_agent);
	free(g.data);
	free(g.other_data);
}
END_TEST

/* With a sink: a bad header after spliced data stops the reader (-EPROTO); a stream cut
 * inside a spliced payload is -EPIPE. */
START_TEST(test_sink_reader_bad)
{
	int agent[2], lane[2];
	struct orch_egress_io *r;
	struct got g = {.data = malloc(1 << 20), .other_data = malloc(1 << 20)};
	uint8_t wire[4096];
	size_t wlen = 0;
	struct orch_error err = {0};
	char drop[4096];

	tcp_pair(agent);
	g.sink_fd = agent[1];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, lane), 0);
	nonblock(lane[1]);
	ck_assert_int_eq(orch_egress_io_new(on_frame, &g, &r), 0);
	orch_egress_io_set_sink(r, sink, sunk);
	put_frame(wire, &wlen, ORCH_EGRESS_DATA, 1, "hello", 5);
	memcpy(wire + wlen, "\x03\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01x", 13); /* flags 1 */
	wlen += 13;
	ck_assert_int_eq(write(lane[0], wire, wlen), (ssize_t)wlen);
	ck_assert_int_eq(orch_egress_io_read(r, lane[1], 1 << 20, &err), -EPROTO);
	ck_assert_uint_eq(g.sunk, 5);
	ck_assert_int_eq(recv(agent[0], drop, sizeof(drop), 0), 5);
	orch_egress_io_free(r);
	close(lane[0]);
	close(lane[1]);

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, lane), 0);
	nonblock(lane[1]);
	ck_assert_int_eq(orch_egress_io_new(on_frame, &g, &r), 0);
	orch_egress_io_set_sink(r, sink, sunk);
	g.sunk = 0;
	wlen = 0;
	orch_egress_hdr_put(wire, ORCH_EGRESS_DATA, 1, 1000);
	memset(wire + ORCH_EGRESS_HDR_LEN, 'a', 100);
	ck_assert_int_eq(write(lane[0], wire, ORCH_EGRESS_HDR_LEN + 100),
			 ORCH_EGRESS_HDR_LEN + 100);
	close(lane[0]);
	ck_assert_int_eq(orch_egress_io_read(r, lane[1], 1 << 20, &err), -EPIPE);
	ck_assert_uint_eq(g.sunk, 100);
	orch_egress_io_free(r);
	close(lane[1]);
	close(agent[0]);
	close(agent[1]);
	free(g.data);
	free(g.other_data);
}
END_TEST

/* A lane the kernel cannot splice into (/proc/self/comm takes write(2) but has no
 * splice_write: EINVAL): the frame waiting in the pipe is read out and written plainly,
 * and later frames are copied. */
START_TEST(test_splice_to_unspliceable_lane)
{
	int up[2];
	struct orch_egress_io *w;
	struct got g = {.sink_fd = -1};
	int comm = open("/proc/self/comm", O_WRONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_int_ge(comm, 0);
	tcp_pair(up);
	ck_assert_int_eq(orch_egress_io_new(on_frame, &g, &w), 0);
	ck_assert_int_eq(send(up[0], "abcdefgh", 8, 0), 8);
	do
		n = orch_egress_io_splice(w, up[1], 100, ORCH_EGRESS_DATA, 3);
	while (n == -EAGAIN);
	ck_assert_int_eq(n, 8);
	ck_assert_uint_eq(orch_egress_io_queued(w), ORCH_EGRESS_HDR_LEN + 8);
	ck_assert_uint_eq(orch_egress_io_piped(w), 8);
	ck_assert_int_eq(orch_egress_io_flush(w, comm), 0);
	ck_assert_uint_eq(orch_egress_io_queued(w), 0);
	ck_assert_uint_eq(orch_egress_io_piped(w), 0);
	ck_assert_int_eq(send(up[0], "x", 1, 0), 1);
	ck_assert_int_eq(orch_egress_io_splice(w, up[1], 100, ORCH_EGRESS_DATA, 3), -EOPNOTSUPP);
	orch_egress_io_free(w);
	close(comm);
	close(up[0]);
	close(up[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("egress-io");
	TCase *tc = tcase_create("egress-io");

	signal(SIGPIPE, SIG_IGN);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_splice_writer);
	tcase_add_test(tc, test_sink_reader);
	tcase_add_test(tc, test_sink_reader_bad);
	tcase_add_test(tc, test_splice_to_unspliceable_lane);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
