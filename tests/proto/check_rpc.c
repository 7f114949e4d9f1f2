/* SPDX-License-Identifier: Apache-2.0 */
/* orch_rpc as a peer: calls and replies between two rpcs, timeouts, close with pending
 * calls, duplicate and unknown responses, state gating, deferred replies (also inside
 * batches), bounded in-flight requests, output backpressure, oversized lines, and
 * handlers that close or free the rpc from inside callbacks. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>

#include "check-run.h"
#include "cleanup.h"
#include "rpc.h"
#include "rpc-test-util.h"

#define ST_READY (1u << 1)

struct ctx {
	struct orch_loop *loop;
	struct orch_rpc *a, *b;
	struct raw_peer raw;
	struct orch_rpc_req *held[8];
	int n_held;
	int replies, closes_a, closes_b, close_code, drains, notes;
	int last_code;
	json_t *last_result;
	char last_msg[ORCH_ERROR_MSG_MAX];
};

static int m_echo(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	if (!req) {
		((struct ctx *)data)->notes++;
		return 0;
	}
	return orch_rpc_reply(req, json_incref(params));
}

static int m_fail(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	if (params)
		return orch_rpc_reply_error(req, ORCH_RPC_LIMIT, "over budget",
					    json_pack("{s:i}", "left", 0));
	return orch_err(err, ORCH_RPC_CONFLICT, "wrong state for %s", orch_rpc_req_method(req));
}

static int m_errno(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	return orch_errno(err, -EIO, "disk");
}

static int m_hold(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	struct ctx *c = data;

	ck_assert_int_lt(c->n_held, 8);
	c->held[c->n_held++] = orch_rpc_req_ref(req);
	return 0;
}

static int m_bye(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		 struct orch_error *err)
{
	struct ctx *c = data;

	orch_rpc_reply(req, json_string("bye"));
	ck_assert_int_eq(orch_rpc_reply(req, NULL), -EALREADY);
	orch_rpc_close(rpc);
	orch_rpc_unref(c->b); /* the test's own reference: freed while dispatching */
	c->b = NULL;
	return 0;
}

static int m_drop(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	/* A handler that returns >= 0 and never keeps req: the last unref answers. */
	return 0;
}

static const struct orch_rpc_method methods[] = {
	{"echo", ORCH_RPC_M_REQUEST | ORCH_RPC_M_NOTIFY, 0, m_echo},
	{"fail", ORCH_RPC_M_REQUEST, 0, m_fail},
	{"errno", ORCH_RPC_M_REQUEST, 0, m_errno},
	{"hold", ORCH_RPC_M_REQUEST, 0, m_hold},
	{"bye", ORCH_RPC_M_REQUEST, 0, m_bye},
	{"drop", ORCH_RPC_M_REQUEST, 0, m_drop},
	{"ready_only", ORCH_RPC_M_REQUEST | ORCH_RPC_M_NOTIFY, ST_READY, m_echo},
};

static void on_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
		     json_t *err_data, void *data)
{
	struct ctx *c = data;

	c->replies++;
	json_decref(c->last_result);
	c->last_result = NULL;
	if (err) {
		c->last_code = err->code;
		snprintf(c->last_msg, sizeof(c->last_msg), "%s", err->msg);
		if (err_data)
			c->last_result = json_incref(err_data);
	} else {
		c->last_code = 0;
		c->last_result = json_incref(result);
	}
}

static void on_close_a(struct orch_rpc *rpc, int code, void *data)
{
	struct ctx *c = data;
	c->closes_a++;
	c->close_code = code;
}

static void on_close_b(struct orch_rpc *rpc, int code, void *data)
{
	((struct ctx *)data)->closes_b++;
}

static void on_drain(struct orch_rpc *rpc, void *data)
{
	((struct ctx *)data)->drains++;
}

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* a <-> b, two rpcs on one loop. */
static struct ctx *ctx_pair(const struct orch_rpc_opts *bopts)
{
	struct ctx *c = calloc(1, sizeof(*c));
	int sv[2];

	ck_assert_int_eq(orch_loop_new(&c->loop), 0);
	pair(sv);
	ck_assert_int_eq(orch_rpc_new(c->loop, sv[0], methods, ELEMENTSOF(methods), NULL, c, &c->a),
			 0);
	ck_assert_int_eq(
		orch_rpc_new(c->loop, sv[1], methods, ELEMENTSOF(methods), bopts, c, &c->b), 0);
	orch_rpc_set_close_cb(c->a, on_close_a);
	orch_rpc_set_close_cb(c->b, on_close_b);
	c->raw.fd = -1;
	return c;
}

/* b is an rpc, raw is its peer. */
static struct ctx *ctx_raw(const struct orch_rpc_opts *bopts)
{
	struct ctx *c = calloc(1, sizeof(*c));
	int sv[2];

	ck_assert_int_eq(orch_loop_new(&c->loop), 0);
	pair(sv);
	ck_assert_int_eq(
		orch_rpc_new(c->loop, sv[0], methods, ELEMENTSOF(methods), bopts, c, &c->b), 0);
	orch_rpc_set_close_cb(c->b, on_close_b);
	c->raw.loop = c->loop;
	c->raw.fd = sv[1];
	return c;
}

static void ctx_free(struct ctx *c)
{
	for (int i = 0; i < c->n_held; i++)
		orch_rpc_req_unref(c->held[i]);
	orch_rpc_unref(c->a);
	orch_rpc_unref(c->b);
	if (c->raw.fd >= 0)
		close(c->raw.fd);
	json_decref(c->last_result);
	orch_loop_free(c->loop);
	free(c);
}

static void run_until(struct ctx *c, int *counter, int want)
{
	for (int i = 0; i < 400 && *counter < want; i++)
		ck_assert_int_eq(orch_loop_run_once(c->loop, 5), 0);
	ck_assert_int_ge(*counter, want);
}

START_TEST(test_call_result_and_errors)
{
	struct ctx *c = ctx_pair(NULL);

	ck_assert_int_eq(orch_rpc_call(c->a, "echo", json_pack("{s:i}", "x", 1), 0, on_reply, c),
			 0);
	run_until(c, &c->replies, 1);
	ck_assert_int_eq(c->last_code, 0);
	ck_assert_int_eq(json_integer_value(json_object_get(c->last_result, "x")), 1);

	ck_assert_int_eq(orch_rpc_call(c->a, "fail", NULL, 0, on_reply, c), 0);
	run_until(c, &c->replies, 2);
	ck_assert_int_eq(c->last_code, ORCH_RPC_CONFLICT);
	ck_assert_str_eq(c->last_msg, "wrong state for fail");

	ck_assert_int_eq(orch_rpc_call(c->a, "fail", json_array(), 0, on_reply, c), 0);
	run_until(c, &c->replies, 3);
	ck_assert_int_eq(c->last_code, ORCH_RPC_LIMIT);
	ck_assert_int_eq(json_integer_value(json_object_get(c->last_result, "left")), 0);

	ck_assert_int_eq(orch_rpc_call(c->a, "errno", NULL, 0, on_reply, c), 0);
	run_until(c, &c->replies, 4);
	ck_assert_int_eq(c->last_code, ORCH_RPC_INTERNAL_ERROR);
	ck_assert_ptr_nonnull(strstr(c->last_msg, "disk"));

	ck_assert_int_eq(orch_rpc_call(c->a, "drop", NULL, 0, on_reply, c), 0);
	run_until(c, &c->replies, 5);
	ck_assert_int_eq(c->last_code, ORCH_RPC_INTERNAL_ERROR);

	ck_assert_int_eq(orch_rpc_call(c->a, "nope", NULL, 0, on_reply, c), 0);
	run_until(c, &c->replies, 6);
	ck_assert_int_eq(c->last_code, ORCH_RPC_METHOD_NOT_FOUND);

	ck_assert_int_eq(orch_rpc_notify(c->a, "echo", json_pack("[i]", 1)), 0);
	run_until(c, &c->notes, 1);
	ctx_free(c);
}
END_TEST

START_TEST(test_timeout_then_late_reply_dropped)
{
	struct ctx *c = ctx_pair(NULL);
	struct orch_rpc_stats st;

	ck_assert_int_eq(orch_rpc_call(c->a, "hold", NULL, 20, on_reply, c), 0);
	run_until(c, &c->replies, 1);
	ck_assert_int_eq(c->last_code, ORCH_RPC_TIMEOUT);
	ck_assert_int_eq(c->n_held, 1);
	ck_assert_str_eq(orch_rpc_req_method(c->held[0]), "hold");
	ck_assert_ptr_eq(orch_rpc_req_rpc(c->held[0]), c->b);
	ck_assert_int_eq(orch_rpc_reply(c->held[0], json_true()), 0);
	for (int i = 0; i < 20; i++)
		orch_loop_run_once(c->loop, 2);
	orch_rpc_get_stats(c->a, &st);
	ck_assert_uint_eq(st.dropped_responses, 1);
	ck_assert_int_eq(c->replies, 1);
	ctx_free(c);
}
END_TEST

START_TEST(test_close_with_pending)
{
	struct ctx *c = ctx_pair(NULL);

	ck_assert_int_eq(orch_rpc_call(c->a, "hold", NULL, 0, on_reply, c), 0);
	ck_assert_int_eq(orch_rpc_call(c->a, "hold", NULL, 0, on_reply, c), 0);
	run_until(c, &c->n_held, 2);
	orch_rpc_close(c->a);
	ck_assert_int_eq(c->replies, 2);
	ck_assert_int_eq(c->last_code, ORCH_RPC_CLOSED);
	ck_assert_int_eq(c->closes_a, 1);
	orch_rpc_close(c->a); /* idempotent */
	ck_assert_int_eq(c->closes_a, 1);
	ck_assert(orch_rpc_is_closed(c->a));
	ck_assert_int_eq(orch_rpc_call(c->a, "echo", json_array(), 0, on_reply, c), -ENOTCONN);
	ck_assert_int_eq(orch_rpc_notify(c->a, "echo", NULL), -ENOTCONN);
	run_until(c, &c->closes_b, 1); /* b sees EOF */
	ck_assert_int_eq(orch_rpc_reply(c->held[0], NULL), -ENOTCONN);
	ck_assert_int_eq(orch_rpc_reply_error(c->held[1], ORCH_RPC_BUSY, "x", NULL), -ENOTCONN);
	ctx_free(c);
}
END_TEST

START_TEST(test_unref_fails_pending)
{
	struct ctx *c = ctx_pair(NULL);

	ck_assert_int_eq(orch_rpc_call(c->a, "hold", NULL, 0, on_reply, c), 0);
	orch_rpc_unref(c->a);
	c->a = NULL;
	ck_assert_int_eq(c->replies, 1);
	ck_assert_int_eq(c->last_code, ORCH_RPC_CLOSED);
	ck_assert_int_eq(c->closes_a, 0); /* the owner let go: no close callback */
	ctx_free(c);
}
END_TEST

START_TEST(test_duplicate_and_unknown_responses)
{
	struct orch_rpc_stats st;
	struct ctx *c = calloc(1, sizeof(*c));
	int sv[2];
	json_t *req;

	ck_assert_int_eq(orch_loop_new(&c->loop), 0);
	pair(sv);
	ck_assert_int_eq(orch_rpc_new(c->loop, sv[0], methods, ELEMENTSOF(methods), NULL, c, &c->a),
			 0);
	c->raw.loop = c->loop;
	c->raw.fd = sv[1];
	ck_assert_int_eq(orch_rpc_call(c->a, "x", NULL, 0, on_reply, c), 0);
	req = raw_read_json(&c->raw, 1000);
	ck_assert_ptr_nonnull(req);
	json_int_t id = json_integer_value(json_object_get(req, "id"));
	ck_assert_int_ge(id, 1);
	json_decref(req);
	char buf[512];
	snprintf(
		buf, sizeof(buf),
		"{\"jsonrpc\":\"2.0\",\"result\":1,\"id\":%lld}\n"
		"{\"jsonrpc\":\"2.0\",\"result\":2,\"id\":%lld}\n"
		"{\"jsonrpc\":\"2.0\",\"result\":3,\"id\":999}\n"
		"{\"jsonrpc\":\"2.0\",\"result\":4,\"id\":\"%lld\"}\n"
		"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"x\"},\"id\":null}\n",
		(long long)id, (long long)id, (long long)id);
	raw_write(&c->raw, buf);
	for (int i = 0; i < 20; i++)
		orch_loop_run_once(c->loop, 2);
	ck_assert_int_eq(c->replies, 1);
	ck_assert_int_eq(json_integer_value(c->last_result), 1);
	orch_rpc_get_stats(c->a, &st);
	ck_assert_uint_eq(st.dropped_responses, 4);
	/* A malformed response to a pending id fails that call, never crashes. */
	ck_assert_int_eq(orch_rpc_call(c->a, "x", NULL, 0, on_reply, c), 0);
	req = raw_read_json(&c->raw, 1000);
	id = json_integer_value(json_object_get(req, "id"));
	json_decref(req);
	snprintf(buf, sizeof(buf), "{\"jsonrpc\":\"2.0\",\"result\":1,\"error\":{},\"id\":%lld}\n",
		 (long long)id);
	raw_write(&c->raw, buf);
	run_until(c, &c->replies, 2);
	ck_assert_int_eq(c->last_code, ORCH_RPC_INVALID_REQUEST);
	ctx_free(c);
}
END_TEST

START_TEST(test_state_gating)
{
	struct ctx *c = ctx_pair(NULL);

	ck_assert_uint_eq(orch_rpc_get_state(c->b), 1u);
	ck_assert_int_eq(orch_rpc_call(c->a, "ready_only", json_array(), 0, on_reply, c), 0);
	run_until(c, &c->replies, 1);
	ck_assert_int_eq(c->last_code, ORCH_RPC_NOT_ALLOWED);
	ck_assert_int_eq(orch_rpc_notify(c->a, "ready_only", NULL), 0);
	ck_assert_int_eq(orch_rpc_call(c->a, "echo", json_array(), 0, on_reply, c), 0);
	run_until(c, &c->replies, 2); /* b has seen the notification by now */
	orch_rpc_set_state(c->b, ST_READY);
	ck_assert_int_eq(orch_rpc_notify(c->a, "ready_only", NULL), 0);
	ck_assert_int_eq(orch_rpc_call(c->a, "ready_only", json_array(), 0, on_reply, c), 0);
	run_until(c, &c->replies, 3);
	ck_assert_int_eq(c->last_code, 0);
	ck_assert_int_eq(c->notes, 1); /* the first notification was dropped */
	struct orch_rpc_stats st;
	orch_rpc_get_stats(c->b, &st);
	ck_assert_uint_eq(st.dropped_notifications, 1);
	ctx_free(c);
}
END_TEST

START_TEST(test_deferred_reply_in_batch)
{
	struct ctx *c = ctx_raw(NULL);
	json_t *got;

	raw_write(&c->raw, "[{\"jsonrpc\":\"2.0\",\"method\":\"hold\",\"id\":1},"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[2],\"id\":2}]\n");
	ck_assert_ptr_null(raw_read_line(&c->raw, 50)); /* waits for the held one */
	ck_assert_int_eq(c->n_held, 1);
	ck_assert_int_eq(orch_rpc_reply(c->held[0], json_integer(1)), 0);
	got = raw_read_json(&c->raw, 1000);
	ck_assert(json_is_array(got));
	ck_assert_int_eq(json_array_size(got), 2);
	json_decref(got);
	ctx_free(c);
}
END_TEST

START_TEST(test_max_inflight)
{
	struct orch_rpc_opts o = {.max_inflight = 2};
	struct ctx *c = ctx_raw(&o);
	json_t *got;

	raw_write(&c->raw, "{\"jsonrpc\":\"2.0\",\"method\":\"hold\",\"id\":1}\n"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"hold\",\"id\":2}\n"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"hold\",\"id\":3}\n");
	got = raw_read_json(&c->raw, 1000);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(json_integer_value(json_object_get(got, "id")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(got, "error"), "code")),
			 ORCH_RPC_BUSY);
	json_decref(got);
	/* answering one frees a slot */
	orch_rpc_reply(c->held[0], NULL);
	json_decref(raw_read_json(&c->raw, 1000));
	raw_write(&c->raw, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[],\"id\":4}\n");
	got = raw_read_json(&c->raw, 1000);
	ck_assert_ptr_nonnull(json_object_get(got, "result"));
	json_decref(got);
	ctx_free(c);
}
END_TEST

START_TEST(test_backpressure_and_drain)
{
	struct orch_rpc_opts o = {.max_queued = 4096};
	struct ctx *c = ctx_raw(&o);
	char big[1024];
	int r = 0, sent = 0;

	orch_rpc_set_drain_cb(c->b, on_drain);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* Nobody reads raw: the socket buffer fills, then the queue. */
	while (sent < 100000) {
		r = orch_rpc_notify(c->b, "n", json_pack("[s]", big));
		if (r < 0)
			break;
		sent++;
	}
	ck_assert_int_eq(r, -ENOBUFS);
	ck_assert_uint_le(orch_rpc_queued(c->b), 4096);
	ck_assert_int_eq(c->drains, 0);
	/* Read everything: the queue drains and the producer is told. */
	for (int i = 0; i < 400 && c->drains == 0; i++) {
		char buf[65536];
		while (read(c->raw.fd, buf, sizeof(buf)) > 0)
			;
		orch_loop_run_once(c->loop, 5);
	}
	ck_assert_int_eq(c->drains, 1);
	ck_assert_int_eq(orch_rpc_notify(c->b, "n", NULL), 0);
	ctx_free(c);
}
END_TEST

START_TEST(test_oversized_line)
{
	struct orch_rpc_opts o = {.max_line = 160};
	struct ctx *c = ctx_raw(&o);
	char line[300];
	json_t *got;

	memset(line, ' ', sizeof(line));
	const char *head = "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1,\"params\":[";
	memcpy(line, head, strlen(head));
	line[sizeof(line) - 3] = ']';
	line[sizeof(line) - 2] = '}';
	line[sizeof(line) - 1] = '\0';
	raw_write(&c->raw, line);
	raw_write(&c->raw, "\n{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[],\"id\":2}\n");
	got = raw_read_json(&c->raw, 1000);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(got, "error"), "code")),
			 ORCH_RPC_INVALID_REQUEST);
	ck_assert(json_is_null(json_object_get(got, "id")));
	json_decref(got);
	got = raw_read_json(&c->raw, 1000);
	ck_assert_int_eq(json_integer_value(json_object_get(got, "id")), 2);
	json_decref(got);
	/* A batch response too large for one line becomes one error reply. */
	raw_write(&c->raw, "[1,2,3,4]\n");
	got = raw_read_json(&c->raw, 1000);
	ck_assert_ptr_nonnull(got);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(got, "error"), "code")),
			 ORCH_RPC_INTERNAL_ERROR);
	json_decref(got);
	struct orch_rpc_stats st;
	orch_rpc_get_stats(c->b, &st);
	ck_assert_uint_eq(st.oversized_lines, 1);
	ctx_free(c);
}
END_TEST

START_TEST(test_free_inside_handler)
{
	struct ctx *c = ctx_raw(NULL);
	json_t *got;

	raw_write(&c->raw, "{\"jsonrpc\":\"2.0\",\"method\":\"bye\",\"id\":1}\n"
			   "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[],\"id\":2}\n");
	got = raw_read_json(&c->raw, 1000);
	ck_assert_str_eq(json_string_value(json_object_get(got, "result")), "bye");
	json_decref(got);
	ck_assert_ptr_null(c->b);
	ck_assert_int_eq(c->closes_b, 1);
	ck_assert_ptr_null(raw_read_line(&c->raw, 20)); /* nothing after the close */
	ctx_free(c);
}
END_TEST

static void close_unref_cb(struct orch_rpc *rpc, int code, void *data)
{
	struct ctx *c = data;
	c->closes_a++;
	c->close_code = code;
	orch_rpc_unref(c->a);
	c->a = NULL;
}

START_TEST(test_peer_eof_and_unref_in_close_cb)
{
	struct ctx *c = ctx_pair(NULL);

	orch_rpc_set_close_cb(c->a, close_unref_cb);
	ck_assert_int_eq(orch_rpc_call(c->a, "hold", NULL, 0, on_reply, c), 0);
	run_until(c, &c->n_held, 1);
	orch_rpc_req_unref(c->held[0]); /* answered automatically (internal error) */
	c->n_held = 0;
	orch_rpc_close(c->b);
	run_until(c, &c->closes_a, 1);
	ck_assert_ptr_null(c->a);
	ck_assert_int_eq(c->close_code, 0);
	ck_assert_int_eq(c->replies, 1);
	ck_assert_int_eq(c->last_code, ORCH_RPC_INTERNAL_ERROR);
	ctx_free(c);
}
END_TEST

static int reopen_old_fd, reopen_new[2] = {-1, -1};

static void close_reopen_cb(struct orch_rpc *rpc, int code, void *data)
{
	/* a "reconnect" from inside the close callback, while the rpc is still reading */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, reopen_new), 0);
}

static int m_close(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	orch_rpc_close(rpc);
	return 0;
}

START_TEST(test_close_inside_read_keeps_fd_until_read_ends)
{
	static const struct orch_rpc_method m[] = {{"close", ORCH_RPC_M_NOTIFY, 0, m_close}};
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	int sv[2];

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	pair(sv);
	ck_assert_int_eq(orch_rpc_new(loop, sv[0], m, 1, NULL, NULL, &rpc), 0);
	orch_rpc_set_close_cb(rpc, close_reopen_cb);
	reopen_old_fd = sv[0];
	ck_assert_int_eq(write(sv[1], "{\"jsonrpc\":\"2.0\",\"method\":\"close\"}\nmore\n", 40),
			 40);
	for (int i = 0; i < 50 && reopen_new[0] < 0; i++)
		orch_loop_run_once(loop, 5);
	ck_assert_int_ge(reopen_new[0], 0);
	ck_assert_int_ne(reopen_new[0], reopen_old_fd);
	ck_assert_int_ne(reopen_new[1], reopen_old_fd);
	ck_assert_int_eq(orch_rpc_fd(rpc), -1);
	/* the old fd is closed now that the read is over */
	ck_assert_int_lt(fcntl(reopen_old_fd, F_GETFD), 0);
	orch_rpc_unref(rpc);
	close(reopen_new[0]);
	close(reopen_new[1]);
	close(sv[1]);
	orch_loop_free(loop);
}
END_TEST

static void close_unref_b_cb(struct orch_rpc *rpc, int code, void *data)
{
	struct ctx *c = data;
	c->closes_b++;
	c->close_code = code;
	orch_rpc_unref(c->b);
	c->b = NULL;
}

/* A write error inside orch_rpc_notify must not run the close callback there (it may
 * drop the last reference while notify still uses the rpc): the loop closes later. */
START_TEST(test_send_to_gone_peer_closes_from_loop)
{
	struct ctx *c = ctx_raw(NULL);

	orch_rpc_set_close_cb(c->b, close_unref_b_cb);
	close(c->raw.fd);
	c->raw.fd = -1;
	ck_assert_int_eq(orch_rpc_notify(c->b, "n", json_array()), 0);
	ck_assert_int_eq(c->closes_b, 0);
	run_until(c, &c->closes_b, 1);
	ck_assert_ptr_null(c->b);
	ck_assert_int_ne(c->close_code, 0);
	ctx_free(c);
}
END_TEST

/* A peer that sends requests but never reads the replies is disconnected (-ENOBUFS)
 * once replies exceed twice max_queued, instead of growing memory. */
START_TEST(test_peer_not_reading_replies)
{
	struct orch_rpc_opts o = {.max_queued = 4096};
	struct ctx *c = ctx_raw(&o);
	char req[1200];
	int n = snprintf(req, sizeof(req),
			 "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"%01000d\"],"
			 "\"id\":1}\n",
			 0);

	orch_rpc_set_close_cb(c->b, close_unref_b_cb);
	for (int i = 0; i < 20000 && c->closes_b == 0; i++) {
		ssize_t w = write(c->raw.fd, req, (size_t)n);
		ck_assert(w == n ||
			  (w < 0 && (errno == EAGAIN || errno == EPIPE || errno == ECONNRESET)));
		orch_loop_run_once(c->loop, w < 0 ? 5 : 0);
	}
	ck_assert_int_eq(c->closes_b, 1);
	ck_assert_int_eq(c->close_code, -ENOBUFS);
	ctx_free(c);
}
END_TEST

START_TEST(test_outstanding_limit_and_helpers)
{
	struct orch_rpc_opts o = {.max_outstanding = 2, .name = "t"};
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	int sv[2];
	json_t *e;

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	pair(sv);
	ck_assert_int_eq(orch_rpc_new(loop, sv[0], methods, ELEMENTSOF(methods), &o, NULL, &rpc),
			 0);
	ck_assert_int_eq(orch_rpc_fd(rpc), sv[0]);
	ck_assert_int_eq(orch_rpc_call(rpc, "a", NULL, 0, NULL, NULL), 0);
	ck_assert_int_eq(orch_rpc_call(rpc, "a", NULL, 0, NULL, NULL), 0);
	ck_assert_int_eq(orch_rpc_call(rpc, "a", json_array(), 0, NULL, NULL), -EBUSY);
	orch_rpc_set_data(rpc, &o);
	ck_assert_ptr_eq(orch_rpc_get_data(rpc), &o);
	orch_rpc_unref(rpc);
	close(sv[1]);
	orch_loop_free(loop);

	ck_assert(orch_rpc_is_rpc_code(ORCH_RPC_PARSE_ERROR));
	ck_assert(orch_rpc_is_rpc_code(ORCH_RPC_LIMIT));
	ck_assert(!orch_rpc_is_rpc_code(-EIO));
	ck_assert(!orch_rpc_is_rpc_code(0));
	e = orch_rpc_make_error(NULL, -32600, "m", json_true());
	ck_assert(json_is_null(json_object_get(e, "id")));
	ck_assert(json_is_true(json_object_get(json_object_get(e, "error"), "data")));
	json_decref(e);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc");
	TCase *tc = tcase_create("peer");

	tcase_add_test(tc, test_call_result_and_errors);
	tcase_add_test(tc, test_timeout_then_late_reply_dropped);
	tcase_add_test(tc, test_close_with_pending);
	tcase_add_test(tc, test_unref_fails_pending);
	tcase_add_test(tc, test_duplicate_and_unknown_responses);
	tcase_add_test(tc, test_state_gating);
	tcase_add_test(tc, test_deferred_reply_in_batch);
	tcase_add_test(tc, test_max_inflight);
	tcase_add_test(tc, test_backpressure_and_drain);
	tcase_add_test(tc, test_oversized_line);
	tcase_add_test(tc, test_free_inside_handler);
	tcase_add_test(tc, test_peer_eof_and_unref_in_close_cb);
	tcase_add_test(tc, test_outstanding_limit_and_helpers);
	tcase_add_test(tc, test_close_inside_read_keeps_fd_until_read_ends);
	tcase_add_test(tc, test_send_to_gone_peer_closes_from_loop);
	tcase_add_test(tc, test_peer_not_reading_replies);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
