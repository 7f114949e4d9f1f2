/* SPDX-License-Identifier: Apache-2.0 */
/* Integration tests: a supervisor next to what other supervisors left or still run.
 * - the cgroup directory of an earlier supervisor, killed with cgroup.kill and left
 *   behind (its jails were still exiting when it removed its directories): a new
 *   supervisor with the same --cgroup-name must not adopt it (this kernel kills every
 *   child born into such a cgroup with CLONE_INTO_CGROUP);
 * - the directory of a live supervisor (it holds a flock on it) is left alone, a
 *   leftover nobody holds is removed and its name reused;
 * - a supervisor started from a cgroup that was killed once (same kernel behaviour,
 *   whatever the target cgroup): its tasks still run;
 * - a second live supervisor with the same uids and cgroup name: killing its tasks
 *   (timeout, cancel) must not touch ours;
 * - and since jails are found by pid namespace rather than by uid: a cancel's SIGTERM
 *   still reaches the jail's processes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

/* The cgroup v2 directory this process lives in, if the v2 tree is writable. */
static bool own_v2_dir(char *buf, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[PATH_MAX] = "", path[PATH_MAX] = "";
	while (f && fgets(line, sizeof(line), f)) {
		char *dash = strstr(line, " - ");
		char m[PATH_MAX];
		if (dash && strncmp(dash + 3, "cgroup2 ", 8) == 0 &&
		    sscanf(line, "%*s %*s %*s %*s %4095s", m) == 1) {
			snprintf(mnt, sizeof(mnt), "%s", m);
			break;
		}
	}
	if (f)
		fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = 0;
			snprintf(path, sizeof(path), "%s",
				 strcmp(line + 3, "/") == 0 ? "" : line + 3);
		}
	if (f)
		fclose(f);
	if (!mnt[0])
		return false;
	snprintf(buf, size, "%s%s", mnt, path);
	char kill_probe[PATH_MAX + 32];
	snprintf(kill_probe, sizeof(kill_probe), "%s/cgroup.procs", buf);
	return access(kill_probe, W_OK) == 0;
}

static void write_file(const char *dir, const char *file, const char *value)
{
	char path[2 * PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(write(fd, value, strlen(value)) == (ssize_t)strlen(value), "write %s: %s",
		      path, strerror(errno));
	close(fd);
}

static bool have_cgroup_kill(const char *dir)
{
	char path[2 * PATH_MAX];
	snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
	return access(path, W_OK) == 0;
}

#define RUN(h, id, slot, timeout, ...) \
	h_run(h, id, slot, (const char *const[]){__VA_ARGS__, NULL}, timeout, NULL)

static void assert_runs(struct host *h, const char *id, int slot)
{
	RUN(h, id, slot, 0, "sh", "-c", "echo ok");
	struct h_task *t = h_wait_exit(h, id, 20000);
	ck_assert_msg(t->status == ORCH_EXIT_EXITED && t->exit_code == 0,
		      "task %s: status %d, reason '%s'", id, t->status, t->reason);
	ck_assert_str_eq(t->out, "ok\n");
}

START_TEST(test_killed_leftover_cgroup)
{
	char own[PATH_MAX], dir[PATH_MAX + 64], agent[PATH_MAX + 80];
	ck_assert_msg(own_v2_dir(own, sizeof(own)), "no writable cgroup v2 tree (main checks)");
	/* What an earlier supervisor named orch-test-left leaves behind when its killed
	 * jails are still exiting as it removes its directories. */
	char name[64];
	snprintf(name, sizeof(name), "orch-test-left-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/%s", own, name);
	snprintf(agent, sizeof(agent), "%s/agent-0", dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(mkdir(agent, 0755), 0);
	ck_assert_msg(have_cgroup_kill(agent), "no cgroup.kill (main checks)");
	write_file(agent, "cgroup.kill", "1");

	struct host h;
	h_start(&h, (const char *const[]){"--cgroup-name", name, NULL});
	assert_runs(&h, "left-1", 0);
	assert_runs(&h, "left-2", 0); /* and every task after it */
	/* Nobody held the leftover: it was removed and the name made afresh. */
	char next[PATH_MAX + 80];
	snprintf(next, sizeof(next), "%s.1", dir);
	ck_assert_msg(access(next, F_OK) != 0, "%s made instead of reusing the name", next);
	h_stop(&h);
	rmdir(agent);
	rmdir(dir);
}
END_TEST

START_TEST(test_held_directory_left_alone)
{
	char own[PATH_MAX], dir[PATH_MAX + 64], agent[PATH_MAX + 80], next[PATH_MAX + 80];
	ck_assert_msg(own_v2_dir(own, sizeof(own)), "no writable cgroup v2 tree (main checks)");
	/* A live supervisor's directory (it holds the lock) that is idle (no process). */
	char name[64];
	snprintf(name, sizeof(name), "orch-test-held-%d", (int)getpid());
	snprintf(dir, sizeof(dir), "%s/%s", own, name);
	snprintf(agent, sizeof(agent), "%s/agent-0", dir);
	snprintf(next, sizeof(next), "%s.1", dir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_int_eq(mkdir(agent, 0755), 0);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);

	struct host h;
	h_start(&h, (const char *const[]){"--cgroup-name", name, NULL});
	assert_runs(&h, "held-1", 0);
	ck_assert_msg(access(agent, F_OK) == 0, "the held directory was removed");
	ck_assert_msg(access(next, F_OK) == 0, "no directory of its own: %s", next);
	h_stop(&h);
	close(fd);
	rmdir(agent);
	rmdir(dir);
}
END_TEST

START_TEST(test_started_from_killed_cgroup)
{
	char own[PATH_MAX], dir[PATH_MAX + 64], pid[24];
	ck_assert_msg(own_v2_dir(own, sizeof(own)), "no writable cgroup v2 tree (main checks)");
	snprintf(dir, sizeof(dir), "%s/orch-test-killed-%d", own, (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	ck_assert_msg(have_cgroup_kill(dir), "no cgroup.kill (main checks)");
	/* Killed while empty, then joined: the supervisor (forked from here) lives in a
	 * cgroup whose kill count is not that of the agents' fresh cgroups. */
	write_file(dir, "cgroup.kill", "1");
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	write_file(dir, "cgroup.procs", pid);

	struct host h;
	h_start(&h, NULL);
	write_file(own, "cgroup.procs", pid); /* the test itself goes back */
	assert_runs(&h, "killed-own-1", 0);
	assert_runs(&h, "killed-own-2", 0);
	h_stop(&h);
	rmdir(dir);
}
END_TEST

static bool has_output(struct host *h, void *arg)
{
	struct h_task *t = arg;
	return t->out != NULL || t->exited;
}

static bool task_exited(struct host *h, void *arg)
{
	return ((struct h_task *)arg)->exited;
}

START_TEST(test_neighbour_kills_only_its_own)
{
	/* Two supervisors with the same uids and the same cgroup name (the harness's). */
	struct host a, b;
	h_start(&a, NULL);
	h_start(&b, NULL);
	RUN(&a, "mine", 0, 0, "sh", "-c", "echo started; sleep 60");
	struct h_task *mine = h_task(&a, "mine");
	ck_assert(h_wait(&a, has_output, mine, 20000));
	ck_assert_msg(!mine->exited, "mine ended early: %s", mine->reason);

	/* b's task in the same slot (same uid) times out, another is cancelled. */
	RUN(&b, "theirs-1", 0, 300, "sleep", "100");
	struct h_task *t = h_wait_exit(&b, "theirs-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_TIMED_OUT);
	RUN(&b, "theirs-2", 0, 0, "sh", "-c", "echo started; sleep 100");
	t = h_task(&b, "theirs-2");
	ck_assert(h_wait(&b, has_output, t, 20000));
	ck_assert_int_eq(h_cancel(&b, "theirs-2", 0), 0);
	t = h_wait_exit(&b, "theirs-2", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_CANCELLED);
	h_stop(&b);

	/* Ours still runs (nothing arrives within half a second): only our own cancel ends
	 * it. */
	(void)h_wait(&a, task_exited, mine, 500);
	ck_assert_msg(!mine->exited, "the other supervisor killed our task: %s", mine->reason);
	ck_assert_int_eq(h_cancel(&a, "mine", 0), 0);
	mine = h_wait_exit(&a, "mine", 20000);
	ck_assert_msg(mine->status == ORCH_EXIT_CANCELLED, "status %d, reason '%s'", mine->status,
		      mine->reason);
	h_stop(&a);
}
END_TEST

START_TEST(test_cancel_sigterm_reaches_the_jail)
{
	struct host h;
	h_start(&h, NULL);
	RUN(&h, "term-1", 1, 0, "sh", "-c",
	    "trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.1; done");
	struct h_task *t = h_task(&h, "term-1");
	ck_assert(h_wait(&h, has_output, t, 20000));
	ck_assert_int_eq(h_cancel(&h, "term-1", 10000), 0);
	t = h_wait_exit(&h, "term-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_CANCELLED);
	ck_assert_msg(strstr(t->out, "got-term"), "no SIGTERM seen in the jail: '%s'", t->out);
	h_stop(&h);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("guest-neighbours");
	TCase *tc = tcase_create("neighbours");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_killed_leftover_cgroup);
	tcase_add_test(tc, test_held_directory_left_alone);
	tcase_add_test(tc, test_started_from_killed_cgroup);
	tcase_add_test(tc, test_neighbour_kills_only_its_own);
	tcase_add_test(tc, test_cancel_sigterm_reaches_the_jail);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	char own[PATH_MAX];

	/* What the cases need of the machine: said once, as a skip, not a silent pass. */
	if (geteuid() == 0 && !own_v2_dir(own, sizeof(own))) {
		printf("SKIP: no writable cgroup v2 tree (its own cgroup's directory)\n");
		return 77;
	}
	if (geteuid() == 0) {
		char probe[PATH_MAX + 32];
		bool kill_ok;
		snprintf(probe, sizeof(probe), "%s/orch-probe-%d", own, (int)getpid());
		if (mkdir(probe, 0755) < 0) {
			printf("SKIP: cannot make a cgroup under %s\n", own);
			return 77;
		}
		kill_ok = have_cgroup_kill(probe);
		rmdir(probe);
		if (!kill_ok) {
			printf("SKIP: this kernel's cgroup v2 has no cgroup.kill (Linux >= "
			       "5.14)\n");
			return 77;
		}
	}
	return h_run_suite(suite(), true);
}
