/* SPDX-License-Identifier: Apache-2.0 */
/* The escape battery: each case runs one attempt as the jailed agent (orch-escape-probe
 * inside a real jail of the real supervisor); every attempt must fail. */
#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct host H;
static char probe[PATH_MAX];
static int n_run;

static void setup(void)
{
	snprintf(probe, sizeof(probe), "%s/tests/guest/orch-escape-probe", h_builddir());
	h_start(&H, NULL);
}

static void teardown(void)
{
	h_stop(&H);
}

/* Runs the probe in slot 0 and returns its task. */
static struct h_task *attempt(json_t *limits, const char *a, const char *arg1, const char *arg2)
{
	char id[32];
	snprintf(id, sizeof(id), "probe-%d", n_run++);
	const char *argv[] = {probe, a, arg1, arg2, NULL};
	struct h_task *t = h_run(&H, id, 0, argv, 30000, limits);
	ck_assert_msg(t->result, "task.run refused: %s", t->run_err.msg);
	return h_wait_exit(&H, id, 40000);
}

static void assert_blocked(struct h_task *t, const char *want_errno_text)
{
	ck_assert_msg(t->out && strncmp(t->out, "BLOCKED", 7) == 0,
		      "attempt not blocked: status %d code %lld out '%s' err '%s' reason '%s'",
		      t->status, (long long)t->exit_code, t->out ? t->out : "",
		      t->err ? t->err : "", t->reason);
	ck_assert_int_eq(t->status, ORCH_EXIT_EXITED);
	ck_assert_int_eq(t->exit_code, 0);
	if (want_errno_text)
		ck_assert_msg(strstr(t->out, want_errno_text), "unexpected errno: %s", t->out);
}

#define EPERM_TEXT "Operation not permitted"

START_TEST(test_read_other_workspace)
{
	/* Agent 1's workspace with a world-readable file: agent 0 must not see it. */
	char dir[PATH_MAX], file[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/agent-1", H.root);
	snprintf(file, sizeof(file), "%s/secret", dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "s", 1), 1);
	close(fd);
	assert_blocked(attempt(NULL, "read", file, NULL), NULL);
	assert_blocked(attempt(NULL, "read", "/workspace/../agent-1/secret", NULL), NULL);
}
END_TEST

START_TEST(test_read_host_file)
{
	char dir[] = "/var/tmp/orch-escape-XXXXXX", file[PATH_MAX];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	chmod(dir, 0755);
	snprintf(file, sizeof(file), "%s/secret", dir);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	struct h_task *t = attempt(NULL, "read", file, NULL);
	unlink(file);
	rmdir(dir);
	assert_blocked(t, NULL);
	assert_blocked(attempt(NULL, "read", "/root/.bashrc", NULL), NULL);
	assert_blocked(attempt(NULL, "read", "/etc/shadow", NULL), NULL);
}
END_TEST

START_TEST(test_write_usr)
{
	assert_blocked(attempt(NULL, "write", "/usr/orch-escape", NULL), NULL);
}
END_TEST

START_TEST(test_write_etc)
{
	assert_blocked(attempt(NULL, "write", "/etc/orch-escape", NULL), NULL);
	ck_assert_int_ne(access("/etc/orch-escape", F_OK), 0);
}
END_TEST

START_TEST(test_write_root)
{
	assert_blocked(attempt(NULL, "write", "/orch-escape", NULL), NULL);
}
END_TEST

START_TEST(test_write_helper)
{
	assert_blocked(attempt(NULL, "write", "/run/orch/exec", NULL), NULL);
}
END_TEST

START_TEST(test_net_host_loopback)
{
	/* A listener on the host's loopback is not reachable from the jail's. */
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(s, 4), 0);
	socklen_t sl = sizeof(sin);
	getsockname(s, (struct sockaddr *)&sin, &sl);
	char port[16];
	snprintf(port, sizeof(port), "%d", ntohs(sin.sin_port));
	struct h_task *t = attempt(NULL, "connect", "127.0.0.1", port);
	close(s);
	assert_blocked(t, NULL);
}
END_TEST

START_TEST(test_net_external)
{
	assert_blocked(attempt(NULL, "connect", "1.1.1.1", "80"), NULL);
}
END_TEST

START_TEST(test_vsock)
{
	assert_blocked(attempt(NULL, "vsock", NULL, NULL), EPERM_TEXT);
}
END_TEST

/* Socket families a build has no use for: each refused by the filter (EPERM), loaded
 * module or not. */
START_TEST(test_socket_families)
{
	static const struct {
		const char *family, *proto;
	} bad[] = {
		{"38", NULL},  /* AF_ALG: the kernel's crypto API */
		{"30", NULL},  /* AF_TIPC */
		{"15", "2"},   /* AF_KEY, PF_KEY_V2 */
		{"21", NULL},  /* AF_RDS */
		{"17", NULL},  /* AF_PACKET: raw frames */
		{"4", NULL},   /* AF_IPX */
		{"9", NULL},   /* AF_X25 */
		{"40", NULL},  /* AF_VSOCK */
		{"200", NULL}, /* beyond AF_MAX */
		{"16", "9"},   /* AF_NETLINK, NETLINK_AUDIT */
		{"16", "15"},  /* AF_NETLINK, NETLINK_KOBJECT_UEVENT */
		{"16", "12"},  /* AF_NETLINK, NETLINK_NETFILTER */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_blocked(attempt(NULL, "socket", bad[i].family, bad[i].proto), EPERM_TEXT);
}
END_TEST

/* ...while what a jail needs still works. */
START_TEST(test_allowed)
{
	struct h_task *t = attempt(NULL, "allowed", NULL, NULL);
	ck_assert_msg(t->out && strncmp(t->out, "ALLOWED", 7) == 0, "%s", t->out ? t->out : "");
	ck_assert_int_eq(t->exit_code, 0);
}
END_TEST

START_TEST(test_old_syscalls)
{
	static const char *const calls[] = {"modify_ldt", "uselib",  "ustat",
					    "sysfs",	  "tiocsti", "tioclinux"};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
		assert_blocked(attempt(NULL, calls[i], NULL, NULL), EPERM_TEXT);
}
END_TEST

/* ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, PER_BSD, a high bit: all refused. */
START_TEST(test_personality)
{
	static const char *const bad[] = {"40000", "400000", "6", "80000000", "1", "fffffffe"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_blocked(attempt(NULL, "personality", bad[i], NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_ptrace)
{
	assert_blocked(attempt(NULL, "ptrace", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_mount)
{
	assert_blocked(attempt(NULL, "mount", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_unshare)
{
	assert_blocked(attempt(NULL, "unshare", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_clone_newuser)
{
	assert_blocked(attempt(NULL, "clone-newuser", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_setns)
{
	assert_blocked(attempt(NULL, "setns", NULL, NULL), NULL);
}
END_TEST

START_TEST(test_keyctl)
{
	assert_blocked(attempt(NULL, "keyctl", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_bpf)
{
	assert_blocked(attempt(NULL, "bpf", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_chroot)
{
	assert_blocked(attempt(NULL, "chroot", NULL, NULL), EPERM_TEXT);
}
END_TEST

START_TEST(test_setuid_root)
{
	assert_blocked(attempt(NULL, "setuid", NULL, NULL), NULL);
}
END_TEST

START_TEST(test_fork_bomb)
{
	const char *mode = h_limit_mode(&H, "pids");
	ck_assert_ptr_nonnull(mode); /* the RLIMIT_NPROC fallback always exists */
	struct h_task *t = attempt(json_pack("{s:i}", "pids", 64), "forkbomb", NULL, NULL);
	ck_assert_msg(t->out && strstr(t->out, "BLOCKED fork after"),
		      "fork bomb not contained (%s): out '%s' reason '%s'", mode,
		      t->out ? t->out : "", t->reason);
	int n = atoi(strstr(t->out, "after ") + 6);
	ck_assert_int_lt(n, 64);
	ck_assert(h_uid_gone(H_UID_BASE, 5000));
}
END_TEST

#ifdef ESCAPE_MEMORY
START_TEST(test_memory_hog)
{
	const char *mode = h_limit_mode(&H, "memory");
	/* main() skipped the program where the machine has no memory controller */
	ck_assert_msg(mode, "the supervisor enforces no memory limit: %s",
		      json_dumps(json_object_get(H.hello, "capabilities"), 0));
	struct h_task *t = attempt(json_pack("{s:I}", "memory_bytes", (json_int_t)64 << 20),
				   "memhog", NULL, NULL);
	ck_assert_msg(!t->out || !strstr(t->out, "ESCAPED"), "memory hog not contained (%s): %s",
		      mode, t->out);
	ck_assert_msg((t->status == ORCH_EXIT_SIGNALED && t->signal == SIGKILL) ||
			      (t->out && strstr(t->out, "BLOCKED")),
		      "status %d signal %lld out '%s'", t->status, (long long)t->signal,
		      t->out ? t->out : "");
}
END_TEST
#endif

static Suite *suite(void)
{
	Suite *s = suite_create("guest-escape");
	TCase *tc = tcase_create("escape");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
#ifdef ESCAPE_MEMORY
	tcase_add_test(tc, test_memory_hog);
	suite_add_tcase(s, tc);
	return s;
#endif
	tcase_add_test(tc, test_read_other_workspace);
	tcase_add_test(tc, test_read_host_file);
	tcase_add_test(tc, test_write_usr);
	tcase_add_test(tc, test_write_etc);
	tcase_add_test(tc, test_write_root);
	tcase_add_test(tc, test_write_helper);
	tcase_add_test(tc, test_net_host_loopback);
	tcase_add_test(tc, test_net_external);
	tcase_add_test(tc, test_vsock);
	tcase_add_test(tc, test_socket_families);
	tcase_add_test(tc, test_allowed);
	tcase_add_test(tc, test_old_syscalls);
	tcase_add_test(tc, test_personality);
	tcase_add_test(tc, test_ptrace);
	tcase_add_test(tc, test_mount);
	tcase_add_test(tc, test_unshare);
	tcase_add_test(tc, test_clone_newuser);
	tcase_add_test(tc, test_setns);
	tcase_add_test(tc, test_keyctl);
	tcase_add_test(tc, test_bpf);
	tcase_add_test(tc, test_chroot);
	tcase_add_test(tc, test_setuid_root);
	tcase_add_test(tc, test_fork_bomb);
	suite_add_tcase(s, tc);
	return s;
}

#ifdef ESCAPE_MEMORY
/* A memory controller as the supervisor finds one: cgroup v2 with "memory" available, or
 * a v1 memory hierarchy. */
static bool memory_controller(void)
{
	char line[256];
	FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "re");
	bool found = false;

	if (f) {
		found = fgets(line, sizeof(line), f) && strstr(line, "memory");
		fclose(f);
	}
	if (!found && (f = fopen("/proc/cgroups", "re"))) {
		while (fgets(line, sizeof(line), f)) {
			char name[32];
			int hier, n, enabled;
			if (sscanf(line, "%31s %d %d %d", name, &hier, &n, &enabled) == 4 &&
			    strcmp(name, "memory") == 0 && enabled && hier > 0)
				found = true;
		}
		fclose(f);
	}
	return found;
}
#endif

int main(void)
{
#ifdef ESCAPE_MEMORY
	if (!memory_controller()) {
		printf("SKIP: no memory controller (cgroup v2 memory or a v1 memory hierarchy)\n");
		return 77;
	}
#endif
	return h_run_suite(suite(), true);
}
