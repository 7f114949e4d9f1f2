/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/reaper.c's restoring, starting and saving children: the child
 * is this program run again in the hidden mode (main calls lv_reaper_main first, as orchd's
 * does).
 * No libvirt is needed: every case fails, or is given up, before the child connects to it,
 * or fails whether libvirt answers or not. */
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

/* A reaper on a loop of its own, and what its restore reports. */
struct fixture {
	struct orch_loop *loop;
	struct lv_reaper *r;
	struct lv_restore *job;
	struct orch_error err;
	struct done d;
};

/* Starts the reaper and, given in, the restore of in through it (which must start), then
 * runs the loop until the restore is reported or wait_ms passed. */
static void start(struct fixture *f, const struct lv_restore_in *in, int wait_ms)
{
	ck_assert_int_eq(orch_loop_new(&f->loop), 0);
	ck_assert_int_eq(lv_reaper_new(f->loop, &f->r), 0);
	if (!in)
		return;
	ck_assert_int_eq(lv_reaper_restore(f->r, in, on_done, &f->d, &f->job, &f->err), 0);
	ck_assert_ptr_nonnull(f->job);
	run_until(f->loop, &f->d, wait_ms);
}

static void stop(struct fixture *f)
{
	lv_reaper_free(f->r);
	orch_loop_free(f->loop);
}

START_TEST(test_restore_failure_reported)
{
	struct fixture f = {0};
	struct lv_restore_in in = {.save = "/nonexistent/orch-check/template.save",
				   .xml = "<domain/>",
				   .name = "orch-check.1",
				   .uuid = uuid,
				   .fs_xml = {"<filesystem/>"},
				   .n_fs = 1};

	start(&f, &in, 10000);
	ck_assert_int_eq(f.d.calls, 1);
	ck_assert_int_lt(f.d.r, 0);
	ck_assert_msg(strstr(f.d.msg, "/nonexistent/orch-check/template.save"), "%s", f.d.msg);
	ck_assert_ptr_null(f.job); /* cleared when it went */
	stop(&f);
}
END_TEST

START_TEST(test_restore_refused)
{
	struct fixture f = {0};
	struct lv_restore_in in = {
		.save = "/x", .xml = "<domain/>", .name = "orch-x", .uuid = "not-a-uuid"};

	start(&f, NULL, 0);
	ck_assert_int_eq(lv_reaper_restore(f.r, &in, on_done, &f.d, &f.job, &f.err), -EINVAL);
	in.uuid = uuid;
	in.n_fs = 3;
	ck_assert_int_eq(lv_reaper_restore(f.r, &in, on_done, &f.d, &f.job, &f.err), -EINVAL);
	ck_assert_ptr_null(f.job);
	ck_assert_int_eq(lv_reaper_restore(NULL, &in, on_done, &f.d, &f.job, &f.err), -EINVAL);
	stop(&f);
}
END_TEST

/* A restore given up is never reported, whenever its child ends. */
START_TEST(test_restore_cancel)
{
	struct fixture f = {0};
	struct lv_restore_in in = {.save = "/nonexistent/orch-check/template.save",
				   .xml = "<domain/>",
				   .name = "orch-check.2",
				   .uuid = uuid};

	start(&f, &in, 0);
	lv_restore_cancel(f.job);
	run_until(f.loop, &f.d, 1500);
	ck_assert_int_eq(f.d.calls, 0);
	stop(&f);
}
END_TEST

/* Two restores of one image take turns (the XML is written into it): a child waits while
 * the image is locked; freed meanwhile, the reaper clears the caller's pointer. */
START_TEST(test_restore_waits_for_the_lock)
{
	char path[] = "/tmp/check-reaper.XXXXXX";
	int fd = mkstemp(path);
	struct fixture f = {0};
	struct lv_restore_in in = {
		.save = path, .xml = "<domain/>", .name = "orch-check.3", .uuid = uuid};

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX), 0);
	start(&f, &in, 1000);
	ck_assert_int_eq(f.d.calls, 0); /* still waiting for the lock */
	ck_assert_ptr_nonnull(f.job);
	lv_reaper_free(f.r);
	f.r = NULL;
	ck_assert_ptr_null(f.job);
	close(fd); /* the child goes on (and fails on this empty image) */
	unlink(path);
	stop(&f);
}
END_TEST

/* The job f started ends once, failed, saying why: said, or that libvirt is not there. */
static void failed_with(struct fixture *f, const char *said)
{
	ck_assert_ptr_nonnull(f->job);
	run_until(f->loop, &f->d, 20000);
	ck_assert_int_eq(f->d.calls, 1);
	ck_assert_int_lt(f->d.r, 0);
	ck_assert_ptr_null(f->job);
	ck_assert_msg(strstr(f->d.msg, said) || strstr(f->d.msg, "cannot connect to libvirt"), "%s",
		      f->d.msg);
}

/* A cold boot's child (lv_reaper_create): a domain libvirt cannot start, or no libvirt to
 * start it, is reported through done with the reason; a bad UUID or an XML too large for
 * the child's arguments is refused before any child starts. */
START_TEST(test_create_failure_reported)
{
	struct fixture f = {0};
	struct lv_restore_in in = {
		.xml = "<domain type='none'/>", .name = "orch-check.2", .uuid = uuid};

	start(&f, NULL, 0);
	ck_assert_int_eq(lv_reaper_create(f.r, &in, on_done, &f.d, &f.job, &f.err), 0);
	failed_with(&f, "cannot start vm orch-check.2: ");

	struct lv_restore *job = NULL;
	struct lv_restore_in bad = {.xml = "<domain/>", .name = "orch-check.3", .uuid = "nope"};
	ck_assert_int_eq(lv_reaper_create(f.r, &bad, on_done, &f.d, &job, &f.err), -EINVAL);
	ck_assert_ptr_null(job);
	static char big[70 * 1024];
	memset(big, 'x', sizeof(big) - 1);
	bad = (struct lv_restore_in){.xml = big, .name = "orch-check.3", .uuid = uuid};
	ck_assert_int_eq(lv_reaper_create(f.r, &bad, on_done, &f.d, &job, &f.err), -EINVAL);
	ck_assert_ptr_null(job);
	stop(&f);
}
END_TEST

/* A template's save in a child (lv_reaper_save): no such domain, or no libvirt, is reported
 * with the reason; a bad UUID is refused before any child starts. */
START_TEST(test_save_failure_reported)
{
	struct fixture f = {0};
	struct lv_save_in in = {.uuid = uuid, .path = "/nonexistent/orch-check/t.save"};

	start(&f, NULL, 0);
	ck_assert_int_eq(lv_reaper_save(f.r, &in, on_done, &f.d, &f.job, &f.err), 0);
	failed_with(&f, "no domain 0f8fad5b-d9cb-469f-a165-70867728950e to save");
	struct lv_restore *job = NULL;
	struct lv_save_in bad = {.uuid = "../../x", .path = "/tmp/x"};
	ck_assert_int_eq(lv_reaper_save(f.r, &bad, on_done, &f.d, &job, &f.err), -EINVAL);
	ck_assert_ptr_null(job);
	stop(&f);
}
END_TEST

int main(int argc, char **argv)
{
	lv_reaper_main(argc, argv); /* the children run here */
	Suite *s = suite_create("reaper");
	TCase *tc = tcase_create("restore");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_restore_failure_reported);
	tcase_add_test(tc, test_create_failure_reported);
	tcase_add_test(tc, test_save_failure_reported);
	tcase_add_test(tc, test_restore_refused);
	tcase_add_test(tc, test_restore_cancel);
	tcase_add_test(tc, test_restore_waits_for_the_lock);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
