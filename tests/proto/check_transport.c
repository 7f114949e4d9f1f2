/* SPDX-License-Identifier: Apache-2.0 */
/* Transports: address parsing, socketpair (fd:) and AF_UNIX end to end through orch_rpc,
 * peer credentials, the hybrid vsock handshake against an in-test AF_UNIX server, and the
 * virtio-serial path with a pty standing in for the port's character device (a real
 * /dev/vport* needs a VM). AF_VSOCK is in check_transport_vsock.c. */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "cleanup.h"
#include "frame.h"
#include "loop.h"
#include "rpc.h"
#include "transport.h"

START_TEST(test_addr_parse)
{
	static const char *const ok[] = {"fd:3",
					 "unix:/run/orch.sock",
					 "unix:@abstract",
					 "vsock:2:1024",
					 "vsock:any:1024",
					 "vsock:4294967294:1",
					 "hvsock:/tmp/v.sock:52",
					 "serial:/dev/vport0p1"};
	static const char *const bad[] = {
		"",	     "fd:",	    "fd:-1",	 "fd:x",	  "unix:",
		"vsock:2",   "vsock:x:1",   "vsock:2:",	 "vsock:2:1x",	  "vsock:4294967296:1",
		"hvsock:/p", "hvsock:/p:x", "hvsock::1", "tcp:1.2.3.4:5", "serial:",
	};
	struct orch_error err;
	struct orch_addr a;
	char buf[200];

	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		ck_assert_msg(orch_addr_parse(ok[i], &a, &err) == 0, "%s: %s", ok[i], err.msg);
		ck_assert_int_gt(orch_addr_format(&a, buf, sizeof(buf)), 0);
		ck_assert_str_eq(buf, ok[i]);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		ck_assert_msg(orch_addr_parse(bad[i], &a, &err) < 0, "accepted '%s'", bad[i]);
	ck_assert_int_eq(orch_addr_parse("vsock:host:9", &a, &err), 0);
	ck_assert_uint_eq(a.cid, ORCH_VSOCK_CID_HOST);
	ck_assert_int_eq(orch_addr_parse("vsock:any:9", &a, &err), 0);
	ck_assert_uint_eq(a.cid, ORCH_VSOCK_CID_ANY);
	ck_assert_int_eq(orch_addr_parse("hvsock:/a:b/c.sock:77", &a, &err), 0);
	ck_assert_str_eq(a.path, "/a:b/c.sock");
	ck_assert_uint_eq(a.port, 77);
	char longp[200] = "unix:/";
	memset(longp + 6, 'x', 150);
	longp[156] = '\0';
	ck_assert_int_eq(orch_addr_parse(longp, &a, &err), -ENAMETOOLONG);
	ck_assert_int_eq(orch_addr_parse("unix:/x", &a, &err), 0);
	ck_assert_int_eq(orch_addr_format(&a, buf, 4), -ENOBUFS);
}
END_TEST

/* ---- rpc over a dialed/accepted pair ---- */

static int m_echo(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return orch_rpc_reply(req, json_incref(params));
}

static const struct orch_rpc_method methods[] = {{"echo", ORCH_RPC_M_REQUEST, 0, m_echo}};

static void on_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
		     json_t *err_data, void *data)
{
	int *got = data;
	ck_assert_ptr_null(err);
	*got = (int)json_integer_value(json_array_get(result, 0));
}

static void rpc_round_trip(int fd_a, int fd_b)
{
	struct orch_loop *loop;
	struct orch_rpc *a, *b;
	int got = 0;

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(orch_rpc_new(loop, fd_a, methods, 1, NULL, NULL, &a), 0);
	ck_assert_int_eq(orch_rpc_new(loop, fd_b, methods, 1, NULL, NULL, &b), 0);
	ck_assert_int_eq(orch_rpc_call(a, "echo", json_pack("[i]", 42), 0, on_reply, &got), 0);
	for (int i = 0; i < 200 && !got; i++)
		orch_loop_run_once(loop, 10);
	ck_assert_int_eq(got, 42);
	got = 0;
	ck_assert_int_eq(orch_rpc_call(b, "echo", json_pack("[i]", 7), 0, on_reply, &got), 0);
	for (int i = 0; i < 200 && !got; i++)
		orch_loop_run_once(loop, 10);
	ck_assert_int_eq(got, 7);
	orch_rpc_unref(a);
	orch_rpc_unref(b);
	orch_loop_free(loop);
}

static void assert_fd_flags(int fd)
{
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
}

START_TEST(test_fd_socketpair)
{
	int sv[2];
	char s[32];
	struct orch_addr a;
	struct orch_error err;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0); /* blocking, inheritable */
	snprintf(s, sizeof(s), "fd:%d", sv[0]);
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);
	int fa = orch_transport_dial(&a, 0, &err);
	ck_assert_int_eq(fa, sv[0]);
	assert_fd_flags(fa);
	snprintf(s, sizeof(s), "fd:%d", sv[1]);
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);
	int fb = orch_transport_dial(&a, 0, &err);
	rpc_round_trip(fa, fb);
	ck_assert_int_eq(orch_addr_parse("fd:999", &a, &err), 0);
	ck_assert_int_lt(orch_transport_dial(&a, 0, &err), 0);
}
END_TEST

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "/tmp/orch-test-%d-%s", (int)getpid(), name);
}

START_TEST(test_unix_end_to_end)
{
	char path[108], s[128];
	struct orch_error err;
	struct orch_addr a;
	struct stat st;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int lfd, cfd, sfd;

	tmp_path(path, sizeof(path), "unix.sock");
	snprintf(s, sizeof(s), "unix:%s", path);
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);
	lfd = orch_transport_listen(&a, 0600, &err);
	ck_assert_msg(lfd >= 0, "%s", err.msg);
	assert_fd_flags(lfd);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(
		orch_transport_accept(lfd, ORCH_TRANSPORT_UNIX, ORCH_VSOCK_CID_ANY, NULL, &err),
		-EAGAIN);
	cfd = orch_transport_dial(&a, 1000, &err);
	ck_assert_msg(cfd >= 0, "%s", err.msg);
	assert_fd_flags(cfd);
	sfd = orch_transport_accept(lfd, ORCH_TRANSPORT_UNIX, ORCH_VSOCK_CID_ANY, NULL, &err);
	ck_assert_msg(sfd >= 0, "%s", err.msg);
	assert_fd_flags(sfd);
	ck_assert_int_eq(orch_transport_peercred(sfd, &pid, &uid, &gid), 0);
	ck_assert_int_eq(pid, getpid());
	ck_assert_int_eq(uid, getuid());
	ck_assert_int_eq(gid, getgid());
	rpc_round_trip(cfd, sfd);
	close(lfd);

	/* a stale socket file is replaced */
	lfd = orch_transport_listen(&a, 0666, &err);
	ck_assert_msg(lfd >= 0, "%s", err.msg);
	close(lfd);
	unlink(path);
	/* nobody listening */
	ck_assert_int_eq(orch_transport_dial(&a, 200, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, path));
	/* a regular file is never removed */
	int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_ge(f, 0);
	close(f);
	ck_assert_int_eq(orch_transport_listen(&a, 0600, &err), -EEXIST);
	ck_assert_int_eq(access(path, F_OK), 0);
	unlink(path);
	/* serial/hvsock cannot listen */
	ck_assert_int_eq(orch_addr_parse("serial:/dev/null", &a, &err), 0);
	ck_assert_int_eq(orch_transport_listen(&a, 0, &err), -EOPNOTSUPP);
}
END_TEST

START_TEST(test_unix_abstract)
{
	char s[128];
	struct orch_error err;
	struct orch_addr a;

	snprintf(s, sizeof(s), "unix:@orch-test-%d", (int)getpid());
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);
	int lfd = orch_transport_listen(&a, 0, &err);
	ck_assert_msg(lfd >= 0, "%s", err.msg);
	int cfd = orch_transport_dial(&a, 1000, &err);
	ck_assert_int_ge(cfd, 0);
	int sfd = orch_transport_accept(lfd, ORCH_TRANSPORT_UNIX, ORCH_VSOCK_CID_ANY, NULL, &err);
	ck_assert_int_ge(sfd, 0);
	rpc_round_trip(cfd, sfd);
	close(lfd);
}
END_TEST

/* ---- hybrid vsock: a tiny server speaking the Firecracker handshake ---- */

enum hv_mode { HV_OK, HV_REFUSE, HV_SILENT, HV_CLOSE };

static pid_t hv_server(const char *path, enum hv_mode mode, uint32_t want_port)
{
	struct orch_error err;
	struct orch_addr a;
	char s[128];
	int lfd;
	pid_t pid;

	snprintf(s, sizeof(s), "unix:%s", path);
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);
	lfd = orch_transport_listen(&a, 0600, &err);
	ck_assert_msg(lfd >= 0, "%s", err.msg);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0) {
		close(lfd);
		return pid;
	}
	/* child: blocking, simple */
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		_exit(10);
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		_exit(11);
	char line[64];
	size_t off = 0;
	while (off < sizeof(line) - 1 && read(c, line + off, 1) == 1 && line[off] != '\n')
		off++;
	line[off] = '\0';
	char expect[64];
	snprintf(expect, sizeof(expect), "CONNECT %u", want_port);
	if (strcmp(line, expect) != 0)
		_exit(12);
	switch (mode) {
	case HV_OK: {
		/* reply and the first message in one write: the dialer must not eat it */
		const char *r = "OK 1073741824\n{\"jsonrpc\":\"2.0\",\"method\":\"hi\"}\n";
		if (write(c, r, strlen(r)) != (ssize_t)strlen(r))
			_exit(13);
		break;
	}
	case HV_REFUSE:
		if (write(c, "NOPE\n", 5) != 5)
			_exit(13);
		break;
	case HV_SILENT:
		poll(NULL, 0, 2000);
		break;
	case HV_CLOSE:
		break;
	}
	close(c);
	_exit(0);
}

static int reap(pid_t pid, bool do_kill)
{
	int st;
	if (do_kill)
		kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_hvsock_handshake)
{
	char path[108], s[160], buf[128];
	struct orch_error err;
	struct orch_addr a;
	pid_t pid;
	int fd;

	tmp_path(path, sizeof(path), "hv.sock");
	snprintf(s, sizeof(s), "hvsock:%s:5000", path);
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);

	pid = hv_server(path, HV_OK, 5000);
	fd = orch_transport_dial(&a, 3000, &err);
	ck_assert_msg(fd >= 0, "%s", err.msg);
	assert_fd_flags(fd);
	/* what followed "OK ...\n" is still there for the framing layer */
	size_t off = 0;
	for (int i = 0; i < 300 && (off == 0 || buf[off - 1] != '\n'); i++) {
		ssize_t n = read(fd, buf + off, sizeof(buf) - 1 - off);
		if (n > 0)
			off += (size_t)n;
		else
			poll(NULL, 0, 10);
	}
	buf[off] = '\0';
	ck_assert_str_eq(buf, "{\"jsonrpc\":\"2.0\",\"method\":\"hi\"}\n");
	close(fd);
	ck_assert_int_eq(reap(pid, false), 0);

	pid = hv_server(path, HV_REFUSE, 5000);
	ck_assert_int_eq(orch_transport_dial(&a, 3000, &err), -ECONNREFUSED);
	ck_assert_ptr_nonnull(strstr(err.msg, "NOPE"));
	reap(pid, true);

	pid = hv_server(path, HV_CLOSE, 5000);
	ck_assert_int_eq(orch_transport_dial(&a, 3000, &err), -ECONNREFUSED);
	reap(pid, true);

	pid = hv_server(path, HV_SILENT, 5000);
	ck_assert_int_eq(orch_transport_dial(&a, 100, &err), -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(err.msg, "CONNECT 5000"));
	reap(pid, true);
	unlink(path);
}
END_TEST

/* ---- virtio-serial, with a pty standing in for /dev/vport0p1 ---- */

static int on_line_count(void *data, const char *line, size_t len)
{
	int *n = data;
	ck_assert_uint_eq(len, 5);
	ck_assert(memcmp(line, "hello", 5) == 0);
	(*n)++;
	return 0;
}

START_TEST(test_serial_pty)
{
	struct orch_error err;
	struct orch_addr a;
	struct orch_frame *f;
	char s[160], buf[16];
	int master, fd, lines = 0;

	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(master, 0);
	ck_assert_int_eq(grantpt(master), 0);
	ck_assert_int_eq(unlockpt(master), 0);
	snprintf(s, sizeof(s), "serial:%s", ptsname(master));
	ck_assert_int_eq(orch_addr_parse(s, &a, &err), 0);
	fd = orch_transport_dial(&a, 0, &err);
	ck_assert_msg(fd >= 0, "%s", err.msg);
	assert_fd_flags(fd);

	ck_assert_int_eq(orch_frame_new(0, 0, on_line_count, NULL, &lines, &f), 0);
	ck_assert_int_eq(write(master, "hello\nhel", 9), 9);
	ck_assert_int_eq(write(master, "lo\n", 3), 3);
	for (int i = 0; i < 200 && lines < 2; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		poll(&p, 1, 10);
		ck_assert_int_eq(orch_frame_read(f, fd), 0);
	}
	ck_assert_int_eq(lines, 2);
	/* raw mode: no echo back to the host side, bytes unchanged the other way */
	ck_assert_int_eq(orch_frame_queue(f, "a\tb", 3), 0);
	ck_assert_int_eq(orch_frame_flush(f, fd), 0);
	ssize_t n = 0;
	for (int i = 0; i < 200 && n <= 0; i++) {
		n = read(master, buf, sizeof(buf));
		if (n <= 0)
			poll(NULL, 0, 5);
	}
	ck_assert_int_eq(n, 4);
	ck_assert(memcmp(buf, "a\tb\n", 4) == 0);
	orch_frame_free(f);
	close(fd);
	close(master);

	ck_assert_int_eq(orch_addr_parse("serial:/dev/vport-does-not-exist", &a, &err), 0);
	ck_assert_int_eq(orch_transport_dial(&a, 0, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "/dev/vport-does-not-exist"));
}
END_TEST

START_TEST(test_vsock_dial_any_refused)
{
	struct orch_error err;
	struct orch_addr a;

	ck_assert_int_eq(orch_addr_parse("vsock:any:5", &a, &err), 0);
	ck_assert_int_eq(orch_transport_dial(&a, 10, &err), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("transport");
	TCase *tc = tcase_create("transport");

	tcase_add_test(tc, test_addr_parse);
	tcase_add_test(tc, test_fd_socketpair);
	tcase_add_test(tc, test_unix_end_to_end);
	tcase_add_test(tc, test_unix_abstract);
	tcase_add_test(tc, test_hvsock_handshake);
	tcase_add_test(tc, test_serial_pty);
	tcase_add_test(tc, test_vsock_dial_any_refused);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
