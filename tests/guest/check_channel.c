/* SPDX-License-Identifier: Apache-2.0 */
/* The host channel seen from a raw NDJSON peer: malformed host messages get errors and
 * change nothing; methods are refused before hello; after a reconnect running agents
 * keep running, their output arrives, and an unacknowledged task.exit is sent again. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <jansson.h>

#include "harness.h"

#define RAW_BUF (4 * 1024 * 1024)

struct raw {
	int fd;
	pid_t pid;
	char root[64];
	char *buf;
	size_t len;
	/* what the supervisor sent besides responses */
	char out[8192];
	size_t out_len;
	int exits_seen;
	bool ack_exits;
	json_t *last_exit;
};

static void rm_rf(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--one-file-system", path, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

static pid_t start_supervisor(const char *root, const char *connect, int fd3)
{
	char exe[PATH_MAX], uid[16];
	snprintf(exe, sizeof(exe), "%s/guest/orch-supervisor", h_builddir());
	snprintf(uid, sizeof(uid), "%d", H_UID_BASE + 10);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (fd3 >= 0 && dup2(fd3, 3) < 0)
			_exit(127);
		execl(exe, exe, "--connect", connect, "--slots", "2", "--workspace-root", root,
		      "--uid-base", uid, "--cgroup-name", h_cgroup_name("ch"), "--heartbeat-ms",
		      "200", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static void raw_init(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->ack_exits = true;
	r->buf = malloc(RAW_BUF);
	snprintf(r->root, sizeof(r->root), "/tmp/orch-chtest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(r->root));
	chmod(r->root, 0711);
}

static void raw_done(struct raw *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGTERM);
		waitpid(r->pid, NULL, 0);
	}
	if (r->fd >= 0)
		close(r->fd);
	free(r->buf);
	json_decref(r->last_exit);
	rm_rf(r->root);
}

static void raw_send(struct raw *r, const char *s)
{
	size_t len = strlen(s), off = 0;
	while (off < len) {
		ssize_t n = write(r->fd, s + off, len - off);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {r->fd, POLLOUT, 0};
			poll(&p, 1, 1000);
			continue;
		}
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
}

static void raw_sendj(struct raw *r, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	raw_send(r, s);
	raw_send(r, "\n");
	free(s);
}

/* Next message, or NULL at EOF / after timeout_ms. */
static json_t *raw_read(struct raw *r, int timeout_ms)
{
	uint64_t end = orch_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			size_t l = (size_t)(nl - r->buf);
			json_error_t jerr;
			json_t *j = json_loadb(r->buf, l, 0, &jerr);
			memmove(r->buf, nl + 1, r->len - l - 1);
			r->len -= l + 1;
			ck_assert_msg(j, "supervisor sent invalid JSON: %s", jerr.text);
			return j;
		}
		uint64_t now = orch_now_ms();
		if (now >= end)
			return NULL;
		struct pollfd p = {r->fd, POLLIN, 0};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t n = read(r->fd, r->buf + r->len, RAW_BUF - r->len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return NULL;
		r->len += (size_t)n;
	}
}

/* Handles what is not a response (exits, output, heartbeats); returns responses. */
static json_t *raw_next_response(struct raw *r, int timeout_ms)
{
	uint64_t end = orch_now_ms() + (uint64_t)timeout_ms;
	while (orch_now_ms() < end) {
		json_t *m = raw_read(r, (int)(end - orch_now_ms()));
		if (!m)
			return NULL;
		const char *method = json_string_value(json_object_get(m, "method"));
		if (!method)
			return m;
		json_t *params = json_object_get(m, "params");
		if (!strcmp(method, "task.output")) {
			struct orch_task_output o;
			struct orch_error err;
			ck_assert_int_eq(orch_task_output_parse(params, &o, &err), 0);
			if (r->out_len + o.len < sizeof(r->out)) {
				memcpy(r->out + r->out_len, o.data, o.len);
				r->out_len += o.len;
			}
			orch_task_output_done(&o);
		} else if (!strcmp(method, "task.exit")) {
			r->exits_seen++;
			json_decref(r->last_exit);
			r->last_exit = json_incref(params);
			if (r->ack_exits)
				raw_sendj(r, json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id",
						       json_object_get(m, "id"), "result"));
		}
		json_decref(m);
	}
	return NULL;
}

static json_t *raw_hello(struct raw *r, bool reply)
{
	json_t *m = raw_read(r, 15000);
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(json_string_value(json_object_get(m, "method")), "hello");
	if (reply)
		raw_sendj(r, json_pack("{s:s, s:O, s:{s:i, s:i, s:s}}", "jsonrpc", "2.0", "id",
				       json_object_get(m, "id"), "result", "protocol", 1,
				       "heartbeat_ms", 200, "name", "raw"));
	return m;
}

static int error_code(json_t *resp)
{
	json_t *e = json_object_get(resp, "error");
	return e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
}

/* Sends line, expects an error response with code (id must match when id >= 0). */
static void expect_error(struct raw *r, const char *line, int id, int code)
{
	raw_send(r, line);
	raw_send(r, "\n");
	json_t *resp = raw_next_response(r, 10000);
	ck_assert_msg(resp, "no response to %s", line);
	ck_assert_msg(error_code(resp) == code, "expected %d for %.80s, got %d", code, line,
		      error_code(resp));
	if (id >= 0)
		ck_assert_int_eq(json_integer_value(json_object_get(resp, "id")), id);
	json_decref(resp);
}

static void start_pair(struct raw *r)
{
	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	r->pid = start_supervisor(r->root, "fd:3", sp[1]);
	close(sp[1]);
	r->fd = sp[0];
}

START_TEST(test_before_hello)
{
	struct raw r;
	raw_init(&r);
	start_pair(&r);
	json_decref(raw_hello(&r, false));
	expect_error(&r,
		     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"early\",\"slot\":0,\"argv\":[\"true\"]}}",
		     1, ORCH_RPC_NOT_ALLOWED);
	raw_done(&r);
}
END_TEST

START_TEST(test_malformed)
{
	struct raw r;
	raw_init(&r);
	start_pair(&r);
	json_decref(raw_hello(&r, true));

	expect_error(&r, "this is not json", -1, ORCH_RPC_PARSE_ERROR);
	expect_error(
		&r,
		"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"task.run\",\"params\":{\"task\":5}}", 2,
		ORCH_RPC_INVALID_PARAMS);
	expect_error(&r,
		     "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"no.such.method\",\"params\":{}}",
		     3, ORCH_RPC_METHOD_NOT_FOUND);
	expect_error(&r, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"task.run\",\"params\":[1,2]}",
		     4, ORCH_RPC_INVALID_PARAMS);
	expect_error(&r,
		     "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"x\",\"slot\":0,\"argv\":[\"true\"],\"bogus\":1}}",
		     5, ORCH_RPC_INVALID_PARAMS);
	expect_error(&r,
		     "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"../../x\",\"slot\":0,\"argv\":[\"true\"]}}",
		     6, ORCH_RPC_INVALID_PARAMS);
	expect_error(&r,
		     "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"y\",\"slot\":9,\"argv\":[\"true\"]}}",
		     7, ORCH_RPC_INVALID_PARAMS);
	expect_error(&r,
		     "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"z\",\"slot\":0,\"argv\":[]}}",
		     8, ORCH_RPC_INVALID_PARAMS);
	expect_error(
		&r,
		"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"task.cancel\",\"params\":{\"task\":"
		"\"ghost\"}}",
		9, ORCH_RPC_NOT_FOUND);
	expect_error(&r, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"hello\",\"params\":{}}", 10,
		     ORCH_RPC_METHOD_NOT_FOUND);

	/* An oversized line (2 MiB) is skipped. */
	char *big = malloc(2 * 1024 * 1024 + 1);
	memset(big, 'a', 2 * 1024 * 1024);
	big[2 * 1024 * 1024] = 0;
	raw_send(&r, big);
	raw_send(&r, "\n");
	free(big);

	/* And the supervisor keeps serving. */
	raw_send(&r, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"alive\",\"slot\":0,\"argv\":[\"echo\",\"alive\"]}}\n");
	json_t *resp = NULL;
	for (int i = 0; i < 3 && !resp; i++) {
		resp = raw_next_response(&r, 10000);
		if (resp && json_integer_value(json_object_get(resp, "id")) != 11) {
			json_decref(resp); /* the error for the oversized line, if any */
			resp = NULL;
		}
	}
	ck_assert_msg(resp && json_object_get(resp, "result"), "no result for task.run");
	json_decref(resp);
	uint64_t end = orch_now_ms() + 20000;
	while (r.exits_seen == 0 && orch_now_ms() < end)
		json_decref(raw_next_response(&r, 500));
	ck_assert_int_eq(r.exits_seen, 1);
	ck_assert_str_eq(json_string_value(json_object_get(r.last_exit, "status")), "exited");
	ck_assert_int_eq(r.out_len, 6);
	ck_assert_mem_eq(r.out, "alive\n", 6);
	raw_done(&r);
}
END_TEST

static int accept_one(int ls)
{
	struct pollfd p = {ls, POLLIN, 0};
	ck_assert_msg(poll(&p, 1, 20000) == 1, "the supervisor did not (re)connect");
	int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

START_TEST(test_reconnect)
{
	struct raw r;
	raw_init(&r);
	char path[128], addr[160];
	snprintf(path, sizeof(path), "%s/host.sock", r.root);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(ls, 4), 0);
	r.pid = start_supervisor(r.root, addr, -1);

	/* Connection 1: start a task that outlives it. */
	r.fd = accept_one(ls);
	json_t *h1 = raw_hello(&r, true);
	raw_send(&r,
		 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.run\",\"params\":{\"task\":"
		 "\"long\",\"slot\":1,\"argv\":[\"sh\",\"-c\",\"while [ ! -e /workspace/go ]; do "
		 "sleep 0.05; done; echo done\"]}}\n");
	json_t *resp = raw_next_response(&r, 10000);
	ck_assert_ptr_nonnull(json_object_get(resp, "result"));
	json_decref(resp);
	close(r.fd);
	r.len = 0;

	/* Connection 2: the task is still running; its exit comes here; not acknowledged. */
	r.fd = accept_one(ls);
	json_t *h2 = raw_hello(&r, true);
	json_t *p2 = json_object_get(h2, "params");
	ck_assert_str_eq(
		json_string_value(json_object_get(p2, "boot_id")),
		json_string_value(json_object_get(json_object_get(h1, "params"), "boot_id")));
	json_t *running = json_object_get(p2, "running");
	ck_assert_int_eq(json_array_size(running), 1);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(running, 0), "task")),
			 "long");
	r.ack_exits = false;
	char go[PATH_MAX];
	snprintf(go, sizeof(go), "%s/agent-1/go", r.root);
	int gofd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(gofd, 0);
	close(gofd);
	uint64_t end = orch_now_ms() + 20000;
	while (r.exits_seen == 0 && orch_now_ms() < end)
		json_decref(raw_next_response(&r, 500));
	ck_assert_int_eq(r.exits_seen, 1);
	ck_assert_int_eq(r.out_len, 5);
	ck_assert_mem_eq(r.out, "done\n", 5);
	close(r.fd);
	r.len = 0;

	/* Connection 3: the unacknowledged exit is sent again, acknowledged, and only then
	 * forgotten. */
	r.fd = accept_one(ls);
	json_decref(raw_hello(&r, true));
	r.ack_exits = true;
	end = orch_now_ms() + 20000;
	while (r.exits_seen < 2 && orch_now_ms() < end)
		json_decref(raw_next_response(&r, 500));
	ck_assert_int_eq(r.exits_seen, 2);
	ck_assert_str_eq(json_string_value(json_object_get(r.last_exit, "task")), "long");
	/* A following task's exit arrives; "long" is not sent a third time. */
	raw_send(&r, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"next\",\"slot\":1,\"argv\":[\"true\"]}}\n");
	end = orch_now_ms() + 20000;
	while (r.exits_seen < 3 && orch_now_ms() < end)
		json_decref(raw_next_response(&r, 500));
	ck_assert_int_eq(r.exits_seen, 3);
	ck_assert_str_eq(json_string_value(json_object_get(r.last_exit, "task")), "next");
	json_decref(h1);
	json_decref(h2);
	close(ls);
	raw_done(&r);
}
END_TEST

START_TEST(test_hello_refused)
{
	/* A host that refuses hello is dialled again (with backoff); the next hello works. */
	struct raw r;
	raw_init(&r);
	char path[128], addr[160];
	snprintf(path, sizeof(path), "%s/host.sock", r.root);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(ls, 4), 0);
	r.pid = start_supervisor(r.root, addr, -1);

	r.fd = accept_one(ls);
	json_t *h = raw_hello(&r, false);
	raw_sendj(&r, json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id",
				json_object_get(h, "id"), "error", "code", -32005, "message",
				"not this one"));
	json_decref(h);
	/* Methods stay refused on the refused connection; it is closed by the supervisor. */
	json_t *m;
	while ((m = raw_read(&r, 5000)))
		json_decref(m);
	close(r.fd);
	r.len = 0;

	r.fd = accept_one(ls);
	json_decref(raw_hello(&r, true));
	raw_send(&r, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"task.run\",\"params\":{\"task\":"
		     "\"after-refusal\",\"slot\":0,\"argv\":[\"true\"]}}\n");
	json_t *resp = raw_next_response(&r, 10000);
	ck_assert_msg(resp && json_object_get(resp, "result"), "task.run refused after hello");
	json_decref(resp);
	close(ls);
	raw_done(&r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("guest-channel");
	TCase *tc = tcase_create("channel");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_before_hello);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_reconnect);
	tcase_add_test(tc, test_hello_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return h_run_suite(suite(), false);
}
