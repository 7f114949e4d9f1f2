/* SPDX-License-Identifier: Apache-2.0 */
/* guest/shell/ without a jail: the terminal size report parser, listen addresses, the
 * per-slot connection cap, and a clear message when the jail cannot be started. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <poll.h>
#include <fcntl.h>
#include <unistd.h>

#include "check-run.h"
#include "cleanup.h"
#include "loop.h"
#include "shell-listen.h"
#include "shell-relay.h"
#include "shell-spawn.h"
#include "shell.h"

START_TEST(test_cpr)
{
	unsigned r = 0, c = 0;
	ck_assert_int_eq(sv_shell_parse_cpr("\033[30;100R", 9, &r, &c), 9);
	ck_assert_uint_eq(r, 30);
	ck_assert_uint_eq(c, 100);
	ck_assert_int_eq(sv_shell_parse_cpr("\033[5;7Rrest", 10, &r, &c), 6);
	ck_assert_uint_eq(r, 5);
	/* incomplete: wait for more */
	ck_assert_int_eq(sv_shell_parse_cpr("\033", 1, &r, &c), 0);
	ck_assert_int_eq(sv_shell_parse_cpr("\033[30;1", 6, &r, &c), 0);
	/* not a report */
	static const char *const bad[] = {"x",	      "\033]",	   "\033[A",	    "\033[;5R",
					  "\033[5;R", "\033[0;5R", "\033[12345;5R", "\033[5;5;5R",
					  "\033[5R"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		ck_assert_msg(sv_shell_parse_cpr(bad[i], strlen(bad[i]), &r, &c) == -EINVAL,
			      "accepted %zu", i);
	/* a report never longer than 16 bytes */
	ck_assert_int_eq(sv_shell_parse_cpr("\033[0000000000000", 15, &r, &c), -EINVAL);
}
END_TEST

START_TEST(test_addr)
{
	struct orch_error err = {0};
	struct sv_shell_addr a;
	ck_assert_int_eq(sv_shell_addr_parse("vsock", 3, &a, &err), 0);
	ck_assert_int_eq(a.kind, SV_SHELL_VSOCK);
	ck_assert_uint_eq(a.port, 6003);
	ck_assert_int_eq(sv_shell_addr_parse("vsock:any:7000", 3, &a, &err), 0);
	ck_assert_uint_eq(a.port, 7000);
	ck_assert_int_eq(sv_shell_addr_parse("unix:/run/x.sock", 0, &a, &err), 0);
	ck_assert_int_eq(a.kind, SV_SHELL_UNIX);
	ck_assert_str_eq(a.path, "/run/x.sock");
	ck_assert_int_eq(sv_shell_addr_parse("serial:/dev/virtio-ports/orch.shell.1", 1, &a, &err),
			 0);
	ck_assert_int_eq(a.kind, SV_SHELL_SERIAL);
	static const char *const bad[] = {
		"unix:rel", "vsock:2:6000", "vsock:any:0", "vsock:any:x", "tcp:1", "", "serial:"};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		ck_assert_msg(sv_shell_addr_parse(bad[i], 0, &a, &err) == -EINVAL, "%s", bad[i]);
	char longp[200] = "unix:/";
	memset(longp + 6, 'a', 150);
	ck_assert_int_eq(sv_shell_addr_parse(longp, 0, &a, &err), -EINVAL);
}
END_TEST

static int events[8];

static void on_event(unsigned slot, enum sv_shell_event ev, const char *detail, void *data)
{
	ck_assert_uint_eq(slot, 0);
	ck_assert_ptr_nonnull(detail);
	if ((unsigned)ev < ELEMENTSOF(events))
		events[ev]++;
}

static int dial(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* Runs the loop until fd has n bytes (or EOF) in buf. */
static size_t read_until(struct orch_loop *loop, int fd, char *buf, size_t cap, const char *want)
{
	size_t len = 0;
	for (int i = 0; i < 200; i++) {
		orch_loop_run_once(loop, 10);
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t n = -1;
		if (poll(&pf, 1, 0) == 1)
			n = read(fd, buf + len, cap - 1 - len);
		if (n > 0)
			len += (size_t)n;
		buf[len] = 0;
		if (n == 0 || (want && memmem(buf, len, want, strlen(want))))
			break;
	}
	return len;
}

START_TEST(test_cap_and_jail_error)
{
	struct orch_error err = {0};
	struct orch_loop *loop;
	ck_assert_int_eq(orch_loop_new(&loop), 0);
	char dir[] = "/tmp/orch-check-shell.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[128], addr[140];
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	struct sv_shell_jail j = {
		.bwrap = "/nonexistent/bwrap",
		.shell_init = "/bin/true",
		.workspace = dir,
		.netns_fd = -1,
		.uid = 47999,
		.gid = 47999,
	};
	struct sv_shell_opts o = {.slot = 0,
				  .listen = addr,
				  .max_conns = 1,
				  .winsize_wait_ms = 60000,
				  .on_event = on_event,
				  .relay_uid = 47998,
				  .relay_gid = 47998};
	struct sv_shell *s;
	j.uid = 0;
	ck_assert_int_eq(sv_shell_new(loop, &o, &j, &s, &err), -EINVAL);
	j.uid = 47999;
	ck_assert_int_eq(sv_shell_new(loop, &o, &j, &s, &err), 0);

	char buf[1024];
	_cleanup_close_ int a = dial(path);
	read_until(loop, a, buf, sizeof(buf), "[6n");
	ck_assert_msg(strstr(buf, "\033[6n") != NULL, "no size query");
	ck_assert_uint_eq(sv_shell_count(s), 1);

	/* A second client is refused while the first holds the only place. */
	_cleanup_close_ int b = dial(path);
	read_until(loop, b, buf, sizeof(buf), NULL);
	ck_assert_msg(strstr(buf, "too many debug shells") != NULL, "got '%s'", buf);

	/* The size report starts the jail, which cannot start here: a clear line, then EOF. */
	ck_assert_int_eq(write(a, "\033[40;120R", 9), 9);
	size_t n = read_until(loop, a, buf, sizeof(buf), "\n");
	ck_assert_msg(strstr(buf, "orch: cannot start the jail for agent 0's shell") != NULL,
		      "got '%.*s'", (int)n, buf);
	for (int i = 0; i < 100 && sv_shell_count(s) > 0; i++)
		orch_loop_run_once(loop, 10);
	ck_assert_uint_eq(sv_shell_count(s), 0);
	ck_assert(strstr(sv_shell_last_error(s), "No such file") != NULL);
	ck_assert_int_eq(events[SV_SHELL_REFUSED], 1);
	ck_assert_int_eq(events[SV_SHELL_FAILED], 1);
	ck_assert_int_eq(events[SV_SHELL_OPENED], 0);

	sv_shell_free(s);
	ck_assert_int_eq(access(path, F_OK), -1); /* the socket file is removed */
	orch_loop_free(loop);
	rmdir(dir);
}
END_TEST

/* serial: a virtio-serial port stands for the listener: a session starts whenever the
 * host side is connected, ends when it hangs up, and the port is polled again. A pty in
 * raw mode plays the port here (its master is "the host"). */
START_TEST(test_serial)
{
	struct orch_error err = {0};
	struct orch_loop *loop;
	ck_assert_int_eq(orch_loop_new(&loop), 0);
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	char name[64], addr[80];
	ck_assert_int_eq(ptsname_r(m, name, sizeof(name)), 0);
	int keep = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC); /* to set raw mode */
	struct termios t;
	ck_assert_int_eq(tcgetattr(keep, &t), 0);
	cfmakeraw(&t);
	ck_assert_int_eq(tcsetattr(keep, TCSANOW, &t), 0);
	snprintf(addr, sizeof(addr), "serial:%s", name);
	char dir[] = "/tmp/orch-check-shell.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	struct sv_shell_jail j = {.bwrap = "/nonexistent/bwrap",
				  .shell_init = "/bin/true",
				  .workspace = dir,
				  .netns_fd = -1,
				  .uid = 47999,
				  .gid = 47999};
	struct sv_shell_opts o = {.slot = 0,
				  .listen = addr,
				  .winsize_wait_ms = 60000,
				  .on_event = on_event,
				  .relay_uid = 47998,
				  .relay_gid = 47998};
	struct sv_shell *s;
	memset(events, 0, sizeof(events));
	ck_assert_int_eq(sv_shell_new(loop, &o, &j, &s, &err), 0);
	close(keep);

	char buf[1024];
	read_until(loop, m, buf, sizeof(buf), "[6n");
	ck_assert_msg(strstr(buf, "\033[6n") != NULL, "no size query on the port");
	ck_assert_int_eq(write(m, "\033[40;120R", 9), 9);
	read_until(loop, m, buf, sizeof(buf), "\n");
	ck_assert_msg(strstr(buf, "cannot start the jail") != NULL, "got '%s'", buf);
	/* The host is still there: the next session starts by itself. */
	read_until(loop, m, buf, sizeof(buf), "[6n");
	ck_assert_msg(strstr(buf, "\033[6n") != NULL, "no second session on the port");
	ck_assert_uint_eq(sv_shell_count(s), 1);
	/* The host hangs up: the session ends, the port stays open and is polled. */
	close(m);
	for (int i = 0; i < 100 && sv_shell_count(s) > 0; i++)
		orch_loop_run_once(loop, 10);
	ck_assert_uint_eq(sv_shell_count(s), 0);
	ck_assert_int_eq(events[SV_SHELL_FAILED], 1);
	sv_shell_free(s);
	orch_loop_free(loop);
	rmdir(dir);
}
END_TEST

/* serial, with sessions that start: after a session whose shell ran (here a stand-in
 * for bwrap that exits at once) the port is polled again and the next session starts. */
START_TEST(test_serial_after_shell)
{
	if (geteuid() != 0 || access("/bin/true", X_OK) != 0)
		return;
	struct orch_error err = {0};
	struct orch_loop *loop;
	ck_assert_int_eq(orch_loop_new(&loop), 0);
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	char name[64], addr[80];
	ck_assert_int_eq(ptsname_r(m, name, sizeof(name)), 0);
	int keep = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	struct termios t;
	ck_assert_int_eq(tcgetattr(keep, &t), 0);
	cfmakeraw(&t);
	ck_assert_int_eq(tcsetattr(keep, TCSANOW, &t), 0);
	snprintf(addr, sizeof(addr), "serial:%s", name);
	char dir[] = "/tmp/orch-check-shell.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	struct sv_shell_jail j = {.bwrap = "/bin/true",
				  .shell_init = "/bin/true",
				  .workspace = dir,
				  .netns_fd = -1,
				  .uid = 47999,
				  .gid = 47999};
	struct sv_shell_opts o = {.slot = 0,
				  .listen = addr,
				  .winsize_wait_ms = 60000,
				  .on_event = on_event,
				  .relay_uid = 47998,
				  .relay_gid = 47998};
	struct sv_shell *s;
	memset(events, 0, sizeof(events));
	ck_assert_int_eq(sv_shell_new(loop, &o, &j, &s, &err), 0);
	close(keep);

	char buf[1024];
	for (int session = 0; session < 2; session++) {
		read_until(loop, m, buf, sizeof(buf), "[6n");
		ck_assert_msg(strstr(buf, "\033[6n") != NULL, "no size query for session %d",
			      session);
		ck_assert_int_eq(write(m, "\033[40;120R", 9), 9);
		for (int i = 0; i < 300 && events[SV_SHELL_CLOSED] <= session; i++)
			orch_loop_run_once(loop, 10);
		ck_assert_int_eq(events[SV_SHELL_OPENED], session + 1);
		ck_assert_int_eq(events[SV_SHELL_CLOSED], session + 1);
	}
	ck_assert_int_eq(events[SV_SHELL_FAILED], 0);
	sv_shell_free(s);
	close(m);
	orch_loop_free(loop);
	rmdir(dir);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], SV_SHELL_RELAY_ARG) == 0)
		sv_shell_relay_main(argc, argv); /* a session's relay process */
	if (geteuid() != 0) { /* the pty is given to the agent's uid, the relay drops to its own */
		printf("SKIP: needs root (ptys given to agent uids, relays that drop "
		       "privileges)\n");
		return 77;
	}
	Suite *s = suite_create("shell");
	TCase *tc = tcase_create("shell");
	tcase_add_test(tc, test_cpr);
	tcase_add_test(tc, test_addr);
	tcase_add_test(tc, test_cap_and_jail_error);
	tcase_add_test(tc, test_serial);
	tcase_add_test(tc, test_serial_after_shell);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
