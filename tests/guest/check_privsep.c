/* SPDX-License-Identifier: Apache-2.0 */
/* guest/privsep.c: the helpers' uids, what a spawned helper gets (descriptors, stdio,
 * environment, network namespace), and what sv_privsep_enter leaves a process (root
 * only: run in a forked child, which reports through its exit status). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "cleanup.h"
#include "netns.h"
#include "privsep.h"

START_TEST(test_uids)
{
	ck_assert_uint_eq(sv_privsep_uid(10000, SV_PRIVSEP_LLM, 0), 10064);
	ck_assert_uint_eq(sv_privsep_uid(10000, SV_PRIVSEP_LLM, 63), 10127);
	ck_assert_uint_eq(sv_privsep_uid(10000, SV_PRIVSEP_SHELL, 0), 10128);
	ck_assert_uint_eq(sv_privsep_uid(10000, SV_PRIVSEP_SHELL, 63), 10191);
}
END_TEST

static int wait_exit(struct sv_helper *h)
{
	siginfo_t si = {0};
	ck_assert_int_eq(waitid(P_PIDFD, (id_t)h->pidfd, &si, WEXITED | WNOWAIT), 0);
	int code = -1, status = -1;
	ck_assert_int_eq(sv_helper_exited(h, &code, &status), 1);
	ck_assert_int_eq(code, CLD_EXITED);
	sv_helper_kill(h); /* reaps */
	ck_assert_int_eq(h->pid, 0);
	return status;
}

/* A helper sees its descriptors at 3, 4, nothing else open, /dev/null as stdin/stdout,
 * the pipe as stderr, no HOME or PATH of ours, and its log level. */
/* A helper's restart: the wait doubles from 100 ms up to 5 s; after a stable run, none. */
START_TEST(test_backoff)
{
	uint64_t ms = 0;
	const uint64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ms = sv_helper_backoff(ms);
		ck_assert_uint_eq(ms, want[i]);
	}
	ck_assert_uint_eq(sv_helper_restart_wait(400, 1000, 1000 + SV_HELPER_STABLE_MS), 0);
	ck_assert_uint_eq(sv_helper_restart_wait(400, 1000, 1000 + SV_HELPER_STABLE_MS - 1), 800);
	ck_assert_uint_eq(sv_helper_restart_wait(0, 1000, 1001), 100);
}
END_TEST

START_TEST(test_spawn)
{
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	setenv("ORCH_TEST_SECRET", "do-not-pass", 1);
	char *const argv[] = {
		"helper", "-c",
		"[ -e /proc/self/fd/3 ] && [ -e /proc/self/fd/4 ] && ! [ -e /proc/self/fd/5 ] && "
		"! [ -e /proc/self/fd/6 ] && [ \"$(readlink /proc/self/fd/0)\" = /dev/null ] && "
		"[ -z \"$ORCH_TEST_SECRET\" ] && [ -n \"$ORCH_LOG_LEVEL\" ] && echo to-stderr >&2 "
		"&& "
		"exit 7",
		NULL};
	int fds[2] = {p[0], p[1]};
	struct sv_helper_spawn s = {
		.exe = "/bin/sh", .argv = argv, .fds = fds, .n_fds = 2, .netns_fd = -1};
	struct sv_helper h;
	struct orch_error err = {0};
	ck_assert_int_eq(sv_helper_spawn(&s, &h, &err), 0);
	ck_assert_int_gt(h.pid, 0);
	/* stderr arrives on the log pipe */
	char buf[64] = "";
	for (int i = 0; i < 500; i++) {
		ssize_t n = read(h.log_fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = 0;
			break;
		}
		usleep(10000);
	}
	ck_assert_str_eq(buf, "to-stderr\n");
	ck_assert_int_eq(wait_exit(&h), 7);
	close(p[0]);
	close(p[1]);

	/* An exec failure is reported by the spawn itself. */
	s.exe = "/nonexistent/helper";
	ck_assert_int_eq(sv_helper_spawn(&s, &h, &err), -ENOENT);
	ck_assert(strstr(err.msg, "/nonexistent/helper") != NULL);
}
END_TEST

/* In a network namespace of the caller's choosing. */
START_TEST(test_spawn_netns)
{
	if (geteuid() != 0)
		return;
	struct orch_error err = {0};
	_cleanup_close_ int ns = sv_netns_new(&err);
	ck_assert_msg(ns >= 0, "%s", err.msg);
	struct stat want;
	ck_assert_int_eq(fstat(ns, &want), 0);
	char script[128];
	snprintf(script, sizeof(script), "[ \"$(stat -L -c %%i /proc/self/ns/net)\" = %lu ]",
		 (unsigned long)want.st_ino);
	char *const argv[] = {"helper", "-c", script, NULL};
	struct sv_helper_spawn s = {.exe = "/bin/sh", .argv = argv, .netns_fd = ns};
	struct sv_helper h;
	ck_assert_int_eq(sv_helper_spawn(&s, &h, &err), 0);
	ck_assert_int_eq(wait_exit(&h), 0);
}
END_TEST

/* The dropped process: each step checked from inside, a failure's number as exit status. */
static int dropped_child(uid_t uid, bool seccomp)
{
	struct orch_error err = {0};
	int fd;
	struct sv_privsep p = {
		.uid = uid, .gid = uid, .nofile = 32, .memory = 0, .seccomp = seccomp};
	if (sv_privsep_enter(&p, &err) < 0) {
		fprintf(stderr, "privsep: %s\n", err.msg);
		return 1;
	}
	if (getuid() != uid || geteuid() != uid || getgid() != uid || getegid() != uid)
		return 2;
	if (getgroups(0, NULL) != 0)
		return 3;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return 4;
	if ((fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC)) >= 0 ||
	    (errno != ENOENT && errno != EACCES))
		return 5; /* nothing in the root directory, which is not even searchable */
	if (mkdir("/x", 0700) == 0 || open("/x", O_CREAT | O_WRONLY | O_CLOEXEC, 0600) >= 0)
		return 6; /* nothing can be made there */
	if (open("../etc", O_RDONLY | O_CLOEXEC) >= 0 || open("/..", O_RDONLY | O_CLOEXEC) >= 0)
		return 7; /* no way out */
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 8;
	if (seccomp) {
		if (socket(AF_INET, SOCK_STREAM, 0) >= 0 || errno != EPERM)
			return 9;
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0 || errno != EPERM)
			return 10;
		pid_t pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid >= 0)
			return 11;
		char *const a[] = {"/bin/true", NULL};
		execv(a[0], a);
		if (errno != EPERM)
			return 12;
	} else {
		pid_t pid = fork(); /* RLIMIT_NPROC 0: not even without the filter */
		if (pid == 0)
			_exit(0);
		if (pid >= 0)
			return 13;
	}
	return 0;
}

START_TEST(test_enter)
{
	if (geteuid() != 0)
		return;
	for (int seccomp = 0; seccomp < 2; seccomp++) {
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			_exit(dropped_child(47990, seccomp));
		int status = 0;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "step %d failed (seccomp %d)", WEXITSTATUS(status), seccomp);
	}
	/* Never as root. */
	pid_t pid = fork();
	if (pid == 0) {
		struct orch_error err = {0};
		struct sv_privsep p = {.uid = 0, .gid = 0};
		_exit(sv_privsep_enter(&p, &err) == -EPERM ? 0 : 1);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("privsep");
	TCase *tc = tcase_create("privsep");
	tcase_add_test(tc, test_uids);
	tcase_add_test(tc, test_backoff);
	tcase_add_test(tc, test_spawn);
	tcase_add_test(tc, test_spawn_netns);
	tcase_add_test(tc, test_enter);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
