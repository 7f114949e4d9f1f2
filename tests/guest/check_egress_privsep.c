/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's side of the in-jail egress proxy against its own helper gone bad
 * (guest/egress/egress-proxy.h): the bridge runs in this process with a listener on
 * 127.0.0.1 and plays orchd on its lane; the helper it starts is this program again in a
 * hostile mode that, for the connection it accepts, hands the supervisor a pipe instead
 * of the connection, a request claiming another slot or a task, or garbage. Each time no
 * open reaches orchd, the helper is killed (a new one serves the next connection) and
 * the agent's connection ends; an honest request from the real helper reaches orchd
 * stamped with the bridge's slot and the slot's task. The real helper also runs as the
 * slot's egress uid without capabilities. Runs as root (uids); else skips. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "egress-helper.h"
#include "egress-io.h"
#include "egress-proxy.h"
#include "egress.h"
#include "loop.h"
#include "privsep.h"

#define UID_BASE 10600
#define HOSTILE_ARG "--hostile-egress-helper"

/* ---- the hostile helper (fd 3: listener, fd 4: the supervisor) ---- */

static void send_with_fd(const char *msg, int fd)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {(void *)msg, strlen(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	(void)sendmsg(4, &mh, MSG_NOSIGNAL);
}

static _Noreturn void hostile_main(const char *mode)
{
	int c = accept(3, NULL, NULL), p[2];
	const char *good = "{\"slot\":0,\"kind\":\"connect\",\"host\":\"a.test\",\"port\":443}";

	if (c < 0 || pipe(p) < 0)
		_exit(1);
	if (!strcmp(mode, "pipe"))
		send_with_fd(good, p[0]);
	else if (!strcmp(mode, "slot"))
		send_with_fd("{\"slot\":5,\"kind\":\"connect\",\"host\":\"a.test\",\"port\":443}",
			     c);
	else if (!strcmp(mode, "task"))
		send_with_fd("{\"slot\":0,\"task\":\"99\",\"kind\":\"connect\",\"host\":\"a.test\","
			     "\"port\":443}",
			     c);
	else if (!strcmp(mode, "nofd"))
		send_with_fd(good, -1);
	else
		send_with_fd("{not json", c);
	pause();
	_exit(0);
}

/* ---- the test: the bridge in this process, orchd played on the lane ---- */

struct orchd_side {
	struct orch_egress_io *io;
	int fd;
	int opens;
	char last_open[1024];
};

static int on_frame(void *data, const struct orch_egress_hdr *h, const uint8_t *p)
{
	struct orchd_side *o = data;
	if (h->type == ORCH_EGRESS_OPEN) {
		o->opens++;
		snprintf(o->last_open, sizeof(o->last_open), "%.*s", (int)h->len, (const char *)p);
	}
	return 0;
}

static struct orch_loop *loop;
static struct egress_bridge *bridge;
static struct orchd_side side;
static uint16_t port;
static char self[4096];

static void pump(int ms)
{
	uint64_t end = orch_now_ms() + (uint64_t)ms;
	struct orch_error err = {0};
	while (orch_now_ms() < end) {
		orch_loop_run_once(loop, 10);
		(void)orch_egress_io_read(side.io, side.fd, 1 << 20, &err);
		(void)orch_egress_io_flush(side.io, side.fd);
	}
}

/* Connects as an agent, sends a CONNECT; returns the socket. */
static int agent_connect(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	const char *req = "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n";
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	return fd;
}

/* The agent's connection has ended (EOF or reset) within ms. */
static bool ended(int fd, int ms)
{
	uint64_t end = orch_now_ms() + (uint64_t)ms;
	while (orch_now_ms() < end) {
		pump(20);
		char b[256];
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
	}
	return false;
}

static void setup(void)
{
	struct orch_error err = {0};
	int sp[2];
	char addr[32];

	if (geteuid() != 0)
		return;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	ck_assert_int_eq(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
	side = (struct orchd_side){.fd = sp[0]};
	ck_assert_int_eq(orch_egress_io_new(on_frame, &side, &side.io), 0);
	char hello[] = "{\"version\":1}";
	ck_assert_int_eq(orch_egress_io_queue(side.io, ORCH_EGRESS_HELLO, 0, hello, strlen(hello)),
			 0);
	snprintf(addr, sizeof(addr), "fd:%d", sp[1]);
	port = (uint16_t)(20000 + getpid() % 20000);
	ck_assert_int_eq(orch_loop_new(&loop), 0);
	struct egress_bridge_opts o = {
		.connect = addr, .port = port, .slots = 1, .uid_base = UID_BASE};
	ck_assert_msg(egress_bridge_new(loop, &o, &bridge, &err) == 0, "%s", err.msg);
	egress_bridge_set_task(bridge, 0, "7.1");
	pump(300);
	ck_assert(egress_bridge_connected(bridge));
}

static void teardown(void)
{
	if (geteuid() != 0)
		return;
	egress_bridge_free(bridge);
	orch_egress_io_free(side.io);
	close(side.fd);
	orch_loop_free(loop);
}

START_TEST(test_hostile_helper)
{
	static const char *const modes[] = {"pipe", "slot", "task", "nofd", "junk"};
	const char *mode = modes[_i];
	char *argv_helper = NULL;

	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: needs root (the helper's uid)\n");
		return;
	}
	/* The hostile helper: this program with its mode (a wrapper script passes it). */
	char script[256];
	snprintf(script, sizeof(script), "/tmp/orch-egress-hostile-%d.sh", (int)getpid());
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\nexec '%s' " HOSTILE_ARG " %s\n", self, mode);
	fclose(f);
	ck_assert_int_eq(chmod(script, 0755), 0);
	ck_assert_int_eq(egress_bridge_set_helper(bridge, script), 0);
	int fd = agent_connect();
	pump(200);
	pid_t first = egress_bridge_helper_pid(bridge, 0);
	ck_assert_msg(ended(fd, 5000), "mode %s: the agent's connection did not end", mode);
	ck_assert_msg(side.opens == 0, "mode %s: an open reached orchd: %s", mode, side.last_open);
	pump(200);
	ck_assert_msg(egress_bridge_helper_pid(bridge, 0) != first || first == 0,
		      "mode %s: the helper %d was not stopped", mode, (int)first);
	close(fd);
	unlink(script);
	free(argv_helper);

	/* The real helper then serves, and the open is stamped by the supervisor. */
	ck_assert_int_eq(egress_bridge_set_helper(bridge, self), 0);
	pump(600); /* past the restart backoff */
	fd = agent_connect();
	for (int i = 0; i < 100 && side.opens == 0; i++)
		pump(20);
	ck_assert_msg(side.opens == 1, "mode %s: no open from the real helper", mode);
	ck_assert_msg(strstr(side.last_open, "\"slot\":0") &&
			      strstr(side.last_open, "\"task\":\"7.1\""),
		      "open not stamped: %s", side.last_open);
	/* the real helper: the slot's egress uid, no capabilities */
	pid_t pid = egress_bridge_helper_pid(bridge, 0);
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	bool uid_ok = false, cap_ok = false;
	char want[64];
	snprintf(want, sizeof(want), "Uid:\t%u\t", UID_BASE + 192);
	while (fgets(line, sizeof(line), f)) {
		uid_ok |= !strncmp(line, want, strlen(want));
		cap_ok |= !strcmp(line, "CapEff:\t0000000000000000\n");
	}
	fclose(f);
	ck_assert_msg(uid_ok && cap_ok, "helper %d: uid %s, caps %s", (int)pid,
		      uid_ok ? "ok" : "wrong", cap_ok ? "none" : "some");
	close(fd);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], HOSTILE_ARG))
		hostile_main(argv[2]);
	if (argc > 1 && !strcmp(argv[1], EGRESS_HELPER_ARG))
		egress_helper_main(argc, argv);
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	signal(SIGPIPE, SIG_IGN);
	Suite *s = suite_create("egress_privsep");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_hostile_helper, 0, 5);
	suite_add_tcase(s, tc);
	return orch_check_run_opts(s, &(struct orch_check_opts){.no_fork = true});
}
