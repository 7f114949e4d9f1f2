/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/reaper.c's restoring children: the child is this program run
 * again in the hidden mode (main calls lv_reaper_main first, as orchd's does). No libvirt
 * is needed: every case fails, or is given up, before the child connects to it. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "check-run.h"
#include "loop.h"
#include "reaper.h"

static const char uuid[] = "0f8fad5b-d9cb-469f-a165-70867728950e";

struct done {
	int calls, r;
	char msg[600];
};

static void on_done(int r, const char *error, void *data)
{
	struct done *d = data;
	d->calls++;
	d->r = r;
	snprintf(d->msg, sizeof(d->msg), "%s", error ? error : "");
}

static void run_until(struct orch_loop *loop, const struct done *d, int ms)
{
	for (int i = 0; i < ms / 50 && !d->calls; i++)
		orch_loop_run_once(loop, 50);
}

START_TEST(test_restore_failure_reported)
{
	struct orch_loop *loop = NULL;
	struct lv_reaper *r = NULL;
	struct lv_restore *job = NULL;
	struct orch_error err = {0};
	struct done d = {0};
	struct lv_restore_in in = {.save = "/nonexistent/orch-check/template.save",
				   .xml = "<domain/>",
				   .name = "orch-check.1",
				   .uuid = uuid,
				   .fs_xml = {"<filesystem/>"},
				   .n_fs = 1};

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(lv_reaper_new(loop, &r), 0);
	ck_assert_int_eq(lv_reaper_restore(r, &in, on_done, &d, &job, &err), 0);
	ck_assert_ptr_nonnull(job);
	run_until(loop, &d, 10000);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_lt(d.r, 0);
	ck_assert_msg(strstr(d.msg, "/nonexistent/orch-check/template.save"), "%s", d.msg);
	ck_assert_ptr_null(job); /* cleared when it went */
	lv_reaper_free(r);
	orch_loop_free(loop);
}
END_TEST

START_TEST(test_restore_refused)
{
	struct orch_loop *loop = NULL;
	struct lv_reaper *r = NULL;
	struct lv_restore *job = NULL;
	struct orch_error err = {0};
	struct done d = {0};
	struct lv_restore_in in = {
		.save = "/x", .xml = "<domain/>", .name = "orch-x", .uuid = "not-a-uuid"};

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(lv_reaper_new(loop, &r), 0);
	ck_assert_int_eq(lv_reaper_restore(r, &in, on_done, &d, &job, &err), -EINVAL);
	in.uuid = uuid;
	in.n_fs = 3;
	ck_assert_int_eq(lv_reaper_restore(r, &in, on_done, &d, &job, &err), -EINVAL);
	ck_assert_ptr_null(job);
	ck_assert_int_eq(lv_reaper_restore(NULL, &in, on_done, &d, &job, &err), -EINVAL);
	lv_reaper_free(r);
	orch_loop_free(loop);
}
END_TEST

/* A restore given up is never reported, whenever its child ends. */
START_TEST(test_restore_cancel)
{
	struct orch_loop *loop = NULL;
	struct lv_reaper *r = NULL;
	struct lv_restore *job = NULL;
	struct orch_error err = {0};
	struct done d = {0};
	struct lv_restore_in in = {.save = "/nonexistent/orch-check/template.save",
				   .xml = "<domain/>",
				   .name = "orch-check.2",
				   .uuid = uuid};

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(lv_reaper_new(loop, &r), 0);
	ck_assert_int_eq(lv_reaper_restore(r, &in, on_done, &d, &job, &err), 0);
	lv_restore_cancel(job);
	run_until(loop, &d, 1500);
	ck_assert_int_eq(d.calls, 0);
	lv_reaper_free(r);
	orch_loop_free(loop);
}
END_TEST

/* Two restores of one image take turns (the XML is written into it): a child waits while
 * the image is locked; freed meanwhile, the reaper clears the caller's pointer. */
START_TEST(test_restore_waits_for_the_lock)
{
	char path[] = "/tmp/check-reaper.XXXXXX";
	int fd = mkstemp(path);
	struct orch_loop *loop = NULL;
	struct lv_reaper *r = NULL;
	struct lv_restore *job = NULL;
	struct orch_error err = {0};
	struct done d = {0};
	struct lv_restore_in in = {
		.save = path, .xml = "<domain/>", .name = "orch-check.3", .uuid = uuid};

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(lv_reaper_new(loop, &r), 0);
	ck_assert_int_eq(lv_reaper_restore(r, &in, on_done, &d, &job, &err), 0);
	run_until(loop, &d, 1000);
	ck_assert_int_eq(d.calls, 0); /* still waiting for the lock */
	ck_assert_ptr_nonnull(job);
	lv_reaper_free(r);
	ck_assert_ptr_null(job);
	close(fd); /* the child goes on (and fails on this empty image) */
	unlink(path);
	orch_loop_free(loop);
}
END_TEST

int main(int argc, char **argv)
{
	lv_reaper_main(argc, argv); /* the children run here */
	Suite *s = suite_create("reaper");
	TCase *tc = tcase_create("restore");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_restore_failure_reported);
	tcase_add_test(tc, test_restore_refused);
	tcase_add_test(tc, test_restore_cancel);
	tcase_add_test(tc, test_restore_waits_for_the_lock);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
