/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes on the loop (host/git/git-proc.h): captures and their bounds, stdin,
 * the environment, passed descriptors, timeouts that kill the whole process group, a
 * child as another user, and a loop that keeps turning meanwhile. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "git-proc.h"
#include "loop.h"

struct done {
	bool called;
	struct gproc_result res;
	char *out, *err;
};

static void on_done(const struct gproc_result *res, void *data)
{
	struct done *d = data;
	d->called = true;
	d->res = *res;
	d->out = malloc(res->out_len + 1);
	memcpy(d->out, res->out, res->out_len + 1);
	d->err = strdup(res->err);
	/* res's buffers go with the gproc: keep the copies */
	d->res.out = d->out;
	d->res.err = d->err;
}

static void run(const struct gproc_spec *spec, struct done *d)
{
	struct orch_loop *loop = NULL;
	struct orch_error err = {0};
	ck_assert_int_eq(orch_loop_new(&loop), 0);
	memset(d, 0, sizeof(*d));
	ck_assert_msg(gproc_start(loop, spec, on_done, d, NULL, &err) == 0, "%s", err.msg);
	uint64_t until = orch_now_ms() + 20000;
	while (!d->called && orch_now_ms() < until)
		orch_loop_run_once(loop, 100);
	ck_assert(d->called);
	orch_loop_free(loop);
}

static const char *const env[] = {"PATH=/usr/bin:/bin", "ORCH_X=y", NULL};

START_TEST(test_capture)
{
	struct done d;
	const char *argv[] = {"/bin/sh", "-c", "echo out; echo err >&2; echo $ORCH_X; pwd", NULL};
	struct gproc_spec s = {
		.argv = argv, .env = env, .out_fd = -1, .out_max = 4096, .cwd = "/tmp"};
	run(&s, &d);
	ck_assert(gproc_ok(&d.res));
	ck_assert_str_eq(d.out, "out\ny\n/tmp\n");
	ck_assert_str_eq(d.err, "err\n");
	free(d.out);
	free(d.err);
}
END_TEST

START_TEST(test_bounds_and_stdin)
{
	struct done d;
	/* 8 MiB of output into a 1000-byte capture: read and dropped, the child not blocked */
	const char *argv[] = {"/bin/sh", "-c", "head -c 8388608 /dev/zero; cat", NULL};
	struct gproc_spec s = {
		.argv = argv, .env = env, .out_fd = -1, .out_max = 1000, .in = "abc", .in_len = 3};
	run(&s, &d);
	ck_assert(gproc_ok(&d.res));
	ck_assert_uint_eq(d.res.out_len, 1000);
	ck_assert(d.res.out_truncated);
	free(d.out);
	free(d.err);
	const char *argv2[] = {"/bin/cat", NULL};
	struct gproc_spec s2 = {.argv = argv2,
				.env = env,
				.out_fd = -1,
				.out_max = 100,
				.in = "hello",
				.in_len = 5};
	run(&s2, &d);
	ck_assert_str_eq(d.out, "hello");
	free(d.out);
	free(d.err);
}
END_TEST

START_TEST(test_timeout_kills_group)
{
	struct done d;
	char pidfile[] = "/tmp/check-git-proc.XXXXXX";
	int fd = mkstemp(pidfile);
	ck_assert_int_ge(fd, 0);
	close(fd);
	char script[256];
	/* a grandchild in the background would outlive a kill of the child alone */
	snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait", pidfile);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	struct gproc_spec s = {
		.argv = argv, .env = env, .out_fd = -1, .out_max = 100, .timeout_ms = 300};
	uint64_t t0 = orch_now_ms();
	run(&s, &d);
	ck_assert(d.res.timed_out);
	ck_assert(!gproc_ok(&d.res));
	ck_assert_uint_lt(orch_now_ms() - t0, 5000);
	FILE *f = fopen(pidfile, "r");
	int gpid = 0;
	ck_assert(f && fscanf(f, "%d", &gpid) == 1);
	fclose(f);
	unlink(pidfile);
	/* gone, or a zombie nobody has reaped yet: not running */
	char st[64], line[256];
	snprintf(st, sizeof(st), "/proc/%d/status", gpid);
	bool alive = false;
	for (int i = 0; i < 20; i++) {
		FILE *sf = fopen(st, "r");
		alive = false;
		while (sf && fgets(line, sizeof(line), sf))
			if (strncmp(line, "State:", 6) == 0)
				alive = !strchr(line, 'Z') && !strchr(line, 'X');
		if (sf)
			fclose(sf);
		if (!alive)
			break;
		usleep(50000);
	}
	ck_assert_msg(!alive, "the grandchild %d survived", gpid);
	char desc[200];
	gproc_describe(&d.res, desc, sizeof(desc));
	ck_assert(strstr(desc, "timed out"));
	free(d.out);
	free(d.err);
}
END_TEST

START_TEST(test_fds_user_exit)
{
	struct done d;
	int p[2];
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(write(p[1], "via-fd3", 7), 7);
	close(p[1]);
	const char *argv[] = {"/bin/sh", "-c", "cat <&3; id -u; exit 7", NULL};
	struct gproc_spec s = {.argv = argv,
			       .env = env,
			       .out_fd = -1,
			       .out_max = 100,
			       .fds = &p[0],
			       .n_fds = 1,
			       .as_user = getuid() == 0,
			       .uid = 65534,
			       .gid = 65534};
	run(&s, &d);
	close(p[0]);
	ck_assert(WIFEXITED(d.res.status));
	ck_assert_int_eq(WEXITSTATUS(d.res.status), 7);
	ck_assert_str_eq(d.out, getuid() == 0 ? "via-fd365534\n" : "via-fd3");
	free(d.out);
	free(d.err);
	const char *missing[] = {"/nonexistent/prog", NULL};
	struct gproc_spec s2 = {.argv = missing, .env = env, .out_fd = -1};
	run(&s2, &d);
	ck_assert_int_eq(WEXITSTATUS(d.res.status), 127);
	free(d.out);
	free(d.err);
	struct orch_error err = {0};
	const char *rel[] = {"sh", NULL};
	struct gproc_spec s3 = {.argv = rel, .env = env, .out_fd = -1};
	ck_assert_int_lt(gproc_start(NULL, &s3, on_done, &d, NULL, &err), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("git_proc");
	TCase *tc = tcase_create("proc");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_capture);
	tcase_add_test(tc, test_bounds_and_stdin);
	tcase_add_test(tc, test_timeout_kills_group);
	tcase_add_test(tc, test_fds_user_exit);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
