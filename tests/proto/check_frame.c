/* SPDX-License-Identifier: Apache-2.0 */
/* NDJSON framing: split lines, many per read, huge lines and resynchronisation, NUL bytes,
 * invalid UTF-8, empty lines, EOF mid-line, callbacks that stop, output backpressure. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-run.h"
#include "frame.h"
#include "rpc.h"
#include "rpc-test-util.h"

struct rec {
	char lines[16][256];
	size_t lens[16];
	int n;
	int errors[8];
	int n_errors;
	int stop_after; /* return -EINTR after this many lines (0: never) */
};

static int on_line(void *data, const char *line, size_t len)
{
	struct rec *r = data;

	ck_assert_int_lt(r->n, 16);
	ck_assert_uint_le(len, sizeof(r->lines[0]));
	memcpy(r->lines[r->n], line, len);
	r->lens[r->n] = len;
	r->n++;
	if (r->stop_after && r->n == r->stop_after)
		return -EINTR;
	return 0;
}

static void on_error(void *data, int code, const char *msg)
{
	struct rec *r = data;

	ck_assert_ptr_nonnull(msg);
	ck_assert_int_lt(r->n_errors, 8);
	r->errors[r->n_errors++] = code;
}

static void line_is(struct rec *r, int i, const char *s, size_t len)
{
	ck_assert_int_gt(r->n, i);
	ck_assert_uint_eq(r->lens[i], len);
	ck_assert(memcmp(r->lines[i], s, len) == 0);
}

START_TEST(test_split_and_many)
{
	struct rec r = {0};
	struct orch_frame *f;
	const char *in = "a\nbb\nccc\n";

	ck_assert_int_eq(orch_frame_new(0, 0, on_line, on_error, &r, &f), 0);
	for (size_t i = 0; i < strlen(in); i++)
		ck_assert_int_eq(orch_frame_feed(f, in + i, 1), 0);
	ck_assert_int_eq(r.n, 3);
	line_is(&r, 0, "a", 1);
	line_is(&r, 2, "ccc", 3);
	ck_assert_int_eq(orch_frame_feed(f, "x\ny\nz", 5), 0);
	ck_assert_int_eq(r.n, 5);
	ck_assert_int_eq(orch_frame_feed(f, "\n", 1), 0);
	ck_assert_int_eq(r.n, 6);
	line_is(&r, 5, "z", 1);
	ck_assert_int_eq(r.n_errors, 0);
	ck_assert_uint_eq(orch_frame_max_line(f), ORCH_FRAME_DEFAULT_MAX_LINE);
	orch_frame_free(f);
	orch_frame_free(NULL);
}
END_TEST

START_TEST(test_empty_cr_nul_utf8)
{
	struct rec r = {0};
	struct orch_frame *f;

	ck_assert_int_eq(orch_frame_new(0, 0, on_line, on_error, &r, &f), 0);
	ck_assert_int_eq(orch_frame_feed(f, "\n\n\na\n\n", 6), 0);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(orch_frame_feed(f, "b\r\n", 3), 0);
	line_is(&r, 1, "b\r", 2);
	ck_assert_int_eq(orch_frame_feed(f, "x\0y\n", 4), 0);
	line_is(&r, 2, "x\0y", 3);
	ck_assert_int_eq(orch_frame_feed(f, "\xff\xfe\xc3\n", 4), 0);
	line_is(&r, 3, "\xff\xfe\xc3", 3);
	ck_assert_int_eq(r.n_errors, 0);
	orch_frame_free(f);
}
END_TEST

START_TEST(test_huge_line_resync)
{
	struct rec r = {0};
	struct orch_frame *f;

	ck_assert_int_eq(orch_frame_new(10, 0, on_line, on_error, &r, &f), 0);
	/* exactly max_line is fine */
	ck_assert_int_eq(orch_frame_feed(f, "0123456789\n", 11), 0);
	ck_assert_int_eq(r.n, 1);
	/* one over, whole in one feed */
	ck_assert_int_eq(orch_frame_feed(f, "0123456789A\nok\n", 15), 0);
	ck_assert_int_eq(r.n_errors, 1);
	ck_assert_int_eq(r.errors[0], -EMSGSIZE);
	ck_assert_int_eq(r.n, 2);
	line_is(&r, 1, "ok", 2);
	/* spread over many feeds: reported once, nothing after it lost */
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(orch_frame_feed(f, "xxxxxxx", 7), 0);
	ck_assert_int_eq(r.n_errors, 2);
	ck_assert_int_eq(orch_frame_feed(f, "tail\nnext\n", 10), 0);
	ck_assert_int_eq(r.n_errors, 2);
	ck_assert_int_eq(r.n, 3);
	line_is(&r, 2, "next", 4);
	orch_frame_free(f);
}
END_TEST

START_TEST(test_huge_line_from_fd)
{
	struct rec r = {0};
	struct orch_frame *f;
	size_t big = 300 * 1024;
	char *buf = malloc(big + 16);
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(orch_frame_new(1000, 0, on_line, on_error, &r, &f), 0);
	memset(buf, 'q', big);
	memcpy(buf + big, "\nafter\n", 7);
	size_t off = 0;
	while (off < big + 7) {
		ssize_t n = write(sv[1], buf + off, big + 7 - off);
		if (n > 0)
			off += (size_t)n;
		ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
	}
	ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
	ck_assert_int_eq(r.n_errors, 1);
	ck_assert_int_eq(r.n, 1);
	line_is(&r, 0, "after", 5);
	close(sv[1]);
	ck_assert_int_eq(orch_frame_read(f, sv[0]), -EPIPE);
	ck_assert_int_eq(r.n_errors, 1); /* clean EOF after a complete line: no error */
	orch_frame_free(f);
	close(sv[0]);
	free(buf);
}
END_TEST

START_TEST(test_eof_mid_line)
{
	struct rec r = {0};
	struct orch_frame *f;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(orch_frame_new(0, 0, on_line, on_error, &r, &f), 0);
	ck_assert_int_eq(write(sv[1], "one\ntw", 6), 6);
	ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
	ck_assert_int_eq(r.n, 1);
	close(sv[1]);
	ck_assert_int_eq(orch_frame_read(f, sv[0]), -EPIPE);
	ck_assert_int_eq(r.n, 1);
	ck_assert_int_eq(r.n_errors, 1);
	ck_assert_int_eq(r.errors[0], -EPIPE);
	orch_frame_free(f);
	close(sv[0]);
}
END_TEST

struct seqrec {
	unsigned next;
	bool bad;
};

static int on_seq_line(void *data, const char *line, size_t len)
{
	struct seqrec *r = data;
	char want[64];
	int n = snprintf(want, sizeof(want), "{\"seq\":%u,\"pad\":\"%.*s\"}", r->next,
			 (int)(r->next % 37), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	if ((size_t)n != len || memcmp(line, want, len) != 0)
		r->bad = true;
	r->next++;
	return 0;
}

/* One read delivers at most 256 lines: the rest stays buffered (backlog) and comes with
 * the next calls although the socket has nothing new, in order, nothing lost. */
START_TEST(test_read_line_budget)
{
	struct seqrec r = {0};
	struct orch_frame *f;
	unsigned total = 1000, calls = 0;
	char *buf = malloc(total * 64);
	size_t len = 0;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	for (unsigned i = 0; i < total; i++)
		len += (size_t)sprintf(buf + len, "{\"seq\":%u,\"pad\":\"%.*s\"}\n", i,
				       (int)(i % 37), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	ck_assert_int_eq(write(sv[1], buf, len), (ssize_t)len);
	free(buf);
	ck_assert_int_eq(orch_frame_new(200, 0, on_seq_line, NULL, &r, &f), 0);
	ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
	ck_assert_uint_eq(r.next, 256);
	ck_assert(orch_frame_backlog(f));
	do {
		ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
		calls++;
	} while (orch_frame_backlog(f));
	ck_assert(!r.bad);
	ck_assert_uint_eq(r.next, total);
	ck_assert_uint_eq(calls, 3);
	orch_frame_free(f);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* Many lines of varying length, written to a socket in chunks of varying size, so that
 * partial lines sit in the buffer whenever it is compacted or grown. */
START_TEST(test_stream_chunks_no_loss)
{
	struct seqrec r = {0};
	struct orch_frame *f;
	unsigned total = 50000, made = 0;
	size_t len = 0, off = 0, chunk = 1;
	char *buf = malloc(total * 64);
	int sv[2];

	for (; made < total; made++)
		len += (size_t)sprintf(buf + len, "{\"seq\":%u,\"pad\":\"%.*s\"}\n", made,
				       (int)(made % 37),
				       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(orch_frame_new(200, 0, on_seq_line, NULL, &r, &f), 0);
	while (off < len) {
		size_t n = len - off < chunk ? len - off : chunk;
		ssize_t w = write(sv[1], buf + off, n);
		if (w > 0)
			off += (size_t)w;
		ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
		chunk = chunk * 7 % 70001 + 1;
	}
	do /* what the line budget left buffered */
		ck_assert_int_eq(orch_frame_read(f, sv[0]), 0);
	while (orch_frame_backlog(f));
	ck_assert(!r.bad);
	ck_assert_uint_eq(r.next, total);
	/* the same bytes fed in odd pieces */
	r.next = 0;
	for (off = 0, chunk = 3; off < len; off += chunk, chunk = chunk * 5 % 9001 + 1)
		ck_assert_int_eq(
			orch_frame_feed(f, buf + off, len - off < chunk ? len - off : chunk), 0);
	ck_assert(!r.bad);
	ck_assert_uint_eq(r.next, total);
	orch_frame_free(f);
	close(sv[0]);
	close(sv[1]);
	free(buf);
}
END_TEST

START_TEST(test_callback_stops)
{
	struct rec r = {.stop_after = 1};
	struct orch_frame *f;

	ck_assert_int_eq(orch_frame_new(0, 0, on_line, on_error, &r, &f), 0);
	ck_assert_int_eq(orch_frame_feed(f, "a\nb\nc\n", 6), -EINTR);
	ck_assert_int_eq(r.n, 1);
	r.stop_after = 0;
	/* the rest was kept and comes with the next feed */
	ck_assert_int_eq(orch_frame_feed(f, NULL, 0), 0);
	ck_assert_int_eq(r.n, 3);
	line_is(&r, 2, "c", 1);
	orch_frame_free(f);
}
END_TEST

START_TEST(test_queue_backpressure)
{
	struct rec r = {0};
	struct orch_frame *f;
	char msg[1000], buf[65536];
	int sv[2], p[2];
	ssize_t left;

	memset(msg, 'm', sizeof(msg));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(orch_frame_new(2000, 10000, on_line, on_error, &r, &f), 0);
	ck_assert_int_eq(orch_frame_queue(f, "a\nb", 3), -EINVAL);
	ck_assert_int_eq(orch_frame_queue(f, msg, 0), 0);
	char big[2001];
	memset(big, 'b', sizeof(big));
	ck_assert_int_eq(orch_frame_queue(f, big, sizeof(big)), -EMSGSIZE);
	int queued = 0;
	while (orch_frame_queue(f, msg, sizeof(msg)) == 0)
		queued++;
	ck_assert_int_eq(queued, 9); /* 1 + 9 * 1001 <= 10000 */
	ck_assert_int_eq(orch_frame_queue(f, msg, sizeof(msg)), -ENOBUFS);
	ck_assert_uint_eq(orch_frame_queued(f), 1 + 9 * 1001);
	/* the peer does not read: fill its socket buffer until flush leaves bytes queued */
	do {
		left = orch_frame_flush(f, sv[0]);
		ck_assert_int_ge(left, 0);
		while (left == 0 && orch_frame_queue(f, msg, sizeof(msg)) == 0)
			;
	} while (left == 0);
	ck_assert_uint_le(orch_frame_queued(f), 10000);
	while (read(sv[1], buf, sizeof(buf)) > 0)
		;
	while ((left = orch_frame_flush(f, sv[0])) > 0)
		while (read(sv[1], buf, sizeof(buf)) > 0)
			;
	ck_assert_int_eq(left, 0);
	ck_assert_uint_eq(orch_frame_queued(f), 0);
	/* peer gone: -EPIPE, and no SIGPIPE kills us */
	close(sv[1]);
	ck_assert_int_eq(orch_frame_queue(f, "x", 1), 0);
	ck_assert_int_eq(orch_frame_flush(f, sv[0]), -EPIPE);
	close(sv[0]);
	orch_frame_free(f);

	/* pipes (not sockets) work too */
	ck_assert_int_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	ck_assert_int_eq(orch_frame_new(0, 0, on_line, on_error, &r, &f), 0);
	ck_assert_int_eq(orch_frame_queue(f, "hi", 2), 0);
	ck_assert_int_eq(orch_frame_flush(f, p[1]), 0);
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 3);
	orch_frame_free(f);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* The same hostile bytes through orch_rpc: each gets a clear error, the stream goes on. */
static int m_ping(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return orch_rpc_reply(req, json_string("pong"));
}

START_TEST(test_rpc_hostile_lines)
{
	static const struct orch_rpc_method m[] = {{"ping", ORCH_RPC_M_REQUEST, 0, m_ping}};
	struct raw_peer *raw = calloc(1, sizeof(*raw));
	struct orch_rpc *rpc;
	int sv[2];
	json_t *j;

	ck_assert_int_eq(orch_loop_new(&raw->loop), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(orch_rpc_new(raw->loop, sv[0], m, 1, NULL, NULL, &rpc), 0);
	raw->fd = sv[1];
	static const char hostile[] = "\"\xff\xfe\"\n"			 /* invalid UTF-8 */
				      "{\"a\":\"x\0y\"}\n"		 /* raw NUL byte */
				      "{\"a\":\"\\u0000\"}\n"		 /* escaped NUL */
				      "\n\n   \r\n"			 /* blank lines */
				      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n" /* unbalanced */
				      "{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1}\n";
	size_t off = 0;
	while (off < sizeof(hostile) - 1) {
		ssize_t n = write(raw->fd, hostile + off, sizeof(hostile) - 1 - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
	for (int i = 0; i < 4; i++) {
		j = raw_read_json(raw, 1000);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_eq(
			json_integer_value(json_object_get(json_object_get(j, "error"), "code")),
			ORCH_RPC_PARSE_ERROR);
		json_decref(j);
	}
	j = raw_read_json(raw, 1000);
	ck_assert_str_eq(json_string_value(json_object_get(j, "result")), "pong");
	json_decref(j);
	orch_rpc_unref(rpc);
	close(raw->fd);
	orch_loop_free(raw->loop);
	free(raw);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("frame");
	TCase *tc = tcase_create("frame");

	signal(SIGPIPE, SIG_DFL); /* prove MSG_NOSIGNAL: a SIGPIPE would kill the test */
	tcase_add_test(tc, test_split_and_many);
	tcase_add_test(tc, test_empty_cr_nul_utf8);
	tcase_add_test(tc, test_huge_line_resync);
	tcase_add_test(tc, test_huge_line_from_fd);
	tcase_add_test(tc, test_eof_mid_line);
	tcase_add_test(tc, test_read_line_budget);
	tcase_add_test(tc, test_stream_chunks_no_loss);
	tcase_add_test(tc, test_read_line_budget);
	tcase_add_test(tc, test_callback_stops);
	tcase_add_test(tc, test_queue_backpressure);
	tcase_add_test(tc, test_rpc_hostile_lines);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
