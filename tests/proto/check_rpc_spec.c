/* SPDX-License-Identifier: Apache-2.0 */
/* Every example of the JSON-RPC 2.0 specification, section 7
 * (https://www.jsonrpc.org/specification), sent byte for byte to an orch_rpc peer; the
 * replies must match the specification's: same members, codes and ids, batch responses
 * in any order; error messages must start with the specification's text (orch appends
 * detail after it). "--> nothing" cases are checked by a sentinel request that must be
 * the next reply. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>

#include "check-run.h"
#include "cleanup.h"
#include "rpc.h"
#include "rpc-test-util.h"

struct ctx {
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	struct raw_peer raw;
	int notified;
};

static int m_subtract(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	json_int_t a, b;

	if (json_is_array(params)) {
		if (json_unpack(params, "[II!]", &a, &b) < 0)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS, "Invalid params");
	} else if (json_unpack(params, "{s:I,s:I!}", "minuend", &a, "subtrahend", &b) < 0) {
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "Invalid params");
	}
	return orch_rpc_reply(req, json_integer(a - b));
}

static int m_sum(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		 struct orch_error *err)
{
	json_int_t s = 0;
	size_t i;
	json_t *v;

	json_array_foreach(params, i, v) s += json_integer_value(v);
	if (!req) {
		((struct ctx *)data)->notified++;
		return 0;
	}
	return orch_rpc_reply(req, json_integer(s));
}

static int m_notify(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	((struct ctx *)data)->notified++;
	return 0;
}

static int m_get_data(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	return orch_rpc_reply(req, json_pack("[s,i]", "hello", 5));
}

static const struct orch_rpc_method methods[] = {
	{"subtract", ORCH_RPC_M_REQUEST, 0, m_subtract},
	{"sum", ORCH_RPC_M_REQUEST | ORCH_RPC_M_NOTIFY, 0, m_sum},
	{"update", ORCH_RPC_M_NOTIFY, 0, m_notify},
	{"notify_hello", ORCH_RPC_M_NOTIFY, 0, m_notify},
	{"notify_sum", ORCH_RPC_M_NOTIFY, 0, m_notify},
	{"get_data", ORCH_RPC_M_REQUEST, 0, m_get_data},
};

static struct ctx *ctx_new(void)
{
	struct ctx *c = calloc(1, sizeof(*c));
	int sv[2];

	ck_assert_int_eq(orch_loop_new(&c->loop), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(
		orch_rpc_new(c->loop, sv[0], methods, ELEMENTSOF(methods), NULL, c, &c->rpc), 0);
	c->raw.loop = c->loop;
	c->raw.fd = sv[1];
	return c;
}

static void ctx_free(struct ctx *c)
{
	orch_rpc_unref(c->rpc);
	close(c->raw.fd);
	orch_loop_free(c->loop);
	free(c);
}

/* expected vs got: equal, except error messages compare by prefix and arrays of responses
 * compare as multisets. */
static bool resp_equal(json_t *exp, json_t *got);

static bool error_equal(json_t *exp, json_t *got)
{
	const char *em, *gm;

	if (!json_is_object(got) || json_object_size(exp) != json_object_size(got))
		return false;
	if (!json_equal(json_object_get(exp, "code"), json_object_get(got, "code")))
		return false;
	em = json_string_value(json_object_get(exp, "message"));
	gm = json_string_value(json_object_get(got, "message"));
	return em && gm && strncmp(em, gm, strlen(em)) == 0;
}

static bool obj_equal(json_t *exp, json_t *got)
{
	const char *k;
	json_t *v;

	if (!json_is_object(got) || json_object_size(exp) != json_object_size(got))
		return false;
	json_object_foreach(exp, k, v)
	{
		json_t *g = json_object_get(got, k);
		if (!g)
			return false;
		if (strcmp(k, "error") == 0 ? !error_equal(v, g) : !json_equal(v, g))
			return false;
	}
	return true;
}

static bool resp_equal(json_t *exp, json_t *got)
{
	if (json_is_array(exp)) {
		size_t n = json_array_size(exp);
		bool used[16] = {false};
		if (!json_is_array(got) || json_array_size(got) != n || n > 16)
			return false;
		for (size_t i = 0; i < n; i++) {
			bool found = false;
			for (size_t j = 0; j < n && !found; j++)
				if (!used[j] &&
				    obj_equal(json_array_get(exp, i), json_array_get(got, j)))
					used[j] = found = true;
			if (!found)
				return false;
		}
		return true;
	}
	return obj_equal(exp, got);
}

static const char sentinel[] = "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[1,1],"
			       "\"id\":\"sentinel\"}\n";

/* Sends req (a line, '\n' appended) and checks the reply against expected (NULL: no
 * reply at all). */
static void exchange(struct ctx *c, const char *req, const char *expected)
{
	char line[4096];
	json_t *got, *exp = NULL;

	snprintf(line, sizeof(line), "%s\n", req);
	raw_write(&c->raw, line);
	raw_write(&c->raw, sentinel);
	if (expected) {
		exp = json_loads(expected, 0, NULL);
		ck_assert_ptr_nonnull(exp);
		got = raw_read_json(&c->raw, 2000);
		ck_assert_msg(got != NULL, "no reply to %s", req);
		char *g = json_dumps(got, JSON_COMPACT);
		ck_assert_msg(resp_equal(exp, got), "request %s\nexpected %s\n     got %s", req,
			      expected, g);
		free(g);
		json_decref(got);
		json_decref(exp);
	}
	got = raw_read_json(&c->raw, 2000);
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(json_string_value(json_object_get(got, "id")), "sentinel");
	json_decref(got);
}

START_TEST(spec_positional)
{
	struct ctx *c = ctx_new();
	exchange(
		c,
		"{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42, 23], \"id\": 1}",
		"{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 1}");
	exchange(
		c,
		"{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [23, 42], \"id\": 2}",
		"{\"jsonrpc\": \"2.0\", \"result\": -19, \"id\": 2}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_named)
{
	struct ctx *c = ctx_new();
	exchange(
		c,
		"{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"subtrahend\": 23, "
		"\"minuend\": 42}, \"id\": 3}",
		"{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 3}");
	exchange(c,
		 "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": {\"minuend\": 42, "
		 "\"subtrahend\": 23}, \"id\": 4}",
		 "{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": 4}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_notification)
{
	struct ctx *c = ctx_new();
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"params\": [1,2,3,4,5]}",
		 NULL);
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"foobar\"}", NULL);
	ck_assert_int_eq(c->notified, 1);
	ctx_free(c);
}
END_TEST

START_TEST(spec_method_not_found)
{
	struct ctx *c = ctx_new();
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"foobar\", \"id\": \"1\"}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32601, \"message\": \"Method not "
		 "found\"}, \"id\": \"1\"}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_invalid_json)
{
	struct ctx *c = ctx_new();
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"foobar, \"params\": \"bar\", \"baz]",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700, \"message\": \"Parse "
		 "error\"}, \"id\": null}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_invalid_request)
{
	struct ctx *c = ctx_new();
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": 1, \"params\": \"bar\"}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_batch_invalid_json)
{
	struct ctx *c;

	/* The specification prints this batch over several lines; NDJSON carries it
	 * on one line, as here. */
	c = ctx_new();
	exchange(c,
		 "[  {\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": "
		 "\"1\"},"
		 "  {\"jsonrpc\": \"2.0\", \"method\" ]",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700, \"message\": \"Parse "
		 "error\"}, \"id\": null}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_empty_array)
{
	struct ctx *c = ctx_new();
	exchange(c, "[]",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null}");
	ctx_free(c);
}
END_TEST

START_TEST(spec_invalid_batch_one)
{
	struct ctx *c = ctx_new();
	exchange(c, "[1]",
		 "[{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null}]");
	ctx_free(c);
}
END_TEST

START_TEST(spec_invalid_batch_three)
{
	struct ctx *c = ctx_new();
	exchange(c, "[1,2,3]",
		 "[{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null},"
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null},"
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null}]");
	ctx_free(c);
}
END_TEST

START_TEST(spec_batch)
{
	struct ctx *c = ctx_new();
	exchange(c,
		 "[{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": [1,2,4], \"id\": \"1\"},"
		 "{\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]},"
		 "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [42,23], \"id\": "
		 "\"2\"},"
		 "{\"foo\": \"boo\"},"
		 "{\"jsonrpc\": \"2.0\", \"method\": \"foo.get\", \"params\": {\"name\": "
		 "\"myself\"}, "
		 "\"id\": \"5\"},"
		 "{\"jsonrpc\": \"2.0\", \"method\": \"get_data\", \"id\": \"9\"} ]",
		 "[{\"jsonrpc\": \"2.0\", \"result\": 7, \"id\": \"1\"},"
		 "{\"jsonrpc\": \"2.0\", \"result\": 19, \"id\": \"2\"},"
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": null},"
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32601, \"message\": \"Method not "
		 "found\"}, \"id\": \"5\"},"
		 "{\"jsonrpc\": \"2.0\", \"result\": [\"hello\", 5], \"id\": \"9\"}]");
	ck_assert_int_eq(c->notified, 1);
	ctx_free(c);
}
END_TEST

START_TEST(spec_batch_all_notifications)
{
	struct ctx *c = ctx_new();
	exchange(c,
		 "[{\"jsonrpc\": \"2.0\", \"method\": \"notify_sum\", \"params\": [1,2,4]},"
		 "{\"jsonrpc\": \"2.0\", \"method\": \"notify_hello\", \"params\": [7]}]",
		 NULL);
	ck_assert_int_eq(c->notified, 2);
	ctx_free(c);
}
END_TEST

/* Beyond the examples: other invalid shapes, each answered with the right code. */
START_TEST(invalid_shapes)
{
	struct ctx *c = ctx_new();
	static const char *const inv =
		"{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		"Request\"}, \"id\": null}";
	exchange(c, "{\"jsonrpc\": \"1.0\", \"method\": \"sum\", \"id\": 7}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": 7}");
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"id\": true}", inv);
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"id\": 1, \"extra\": 1}", inv);
	exchange(c, "\"just a string\"", inv);
	exchange(c, "{}", inv);
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"params\": 3, \"id\": 8}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": 8}");
	/* duplicate keys are rejected by the parser */
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"sum\", \"id\": 1, \"id\": 2}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32700, \"message\": \"Parse "
		 "error\"}, \"id\": null}");
	/* a request to a notification-only method */
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"update\", \"id\": 9}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32600, \"message\": \"Invalid "
		 "Request\"}, \"id\": 9}");
	/* invalid params from the handler */
	exchange(c, "{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [1], \"id\": 10}",
		 "{\"jsonrpc\": \"2.0\", \"error\": {\"code\": -32602, \"message\": \"Invalid "
		 "params\"}, \"id\": 10}");
	/* null id is a request (not a notification) and is echoed */
	exchange(
		c,
		"{\"jsonrpc\": \"2.0\", \"method\": \"subtract\", \"params\": [5,1], \"id\": null}",
		"{\"jsonrpc\": \"2.0\", \"result\": 4, \"id\": null}");
	/* responses are never answered, even malformed ones */
	exchange(c, "{\"jsonrpc\": \"2.0\", \"result\": 1, \"id\": 12345}", NULL);
	exchange(c, "{\"jsonrpc\": \"2.0\", \"error\": 5, \"id\": \"x\"}", NULL);
	ctx_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rpc-spec");
	TCase *tc = tcase_create("spec");

	tcase_add_test(tc, spec_positional);
	tcase_add_test(tc, spec_named);
	tcase_add_test(tc, spec_notification);
	tcase_add_test(tc, spec_method_not_found);
	tcase_add_test(tc, spec_invalid_json);
	tcase_add_test(tc, spec_invalid_request);
	tcase_add_test(tc, spec_batch_invalid_json);
	tcase_add_test(tc, spec_empty_array);
	tcase_add_test(tc, spec_invalid_batch_one);
	tcase_add_test(tc, spec_invalid_batch_three);
	tcase_add_test(tc, spec_batch);
	tcase_add_test(tc, spec_batch_all_notifications);
	tcase_add_test(tc, invalid_shapes);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
