/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/cid.c: stable, unique vsock CIDs and the JSON-file store. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "cid.h"

static char dir[] = "/tmp/check-cid.XXXXXX";
static char path[256];

static void write_text(const char *text)
{
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static uint32_t cid_of(struct lv_cid_file *f, const char *vm)
{
	struct orch_error err = {0};
	struct lv_cid_store s = lv_cid_file_store(f);
	uint32_t cid = 0;
	int r = lv_cid_for_vm(&s, vm, &cid, &err);
	ck_assert_msg(r == 0, "lv_cid_for_vm(%s): %d %s", vm, r, err.msg);
	return cid;
}

START_TEST(test_allocate_and_persist)
{
	struct orch_error err = {0};
	struct lv_cid_file *f = NULL;
	unlink(path);
	ck_assert_int_eq(lv_cid_file_open(path, &f, &err), 0);
	ck_assert_uint_eq(cid_of(f, "dev"), 3);
	ck_assert_uint_eq(cid_of(f, "ci"), 4);
	ck_assert_uint_eq(cid_of(f, "dev"), 3);
	ck_assert_uint_eq(cid_of(f, "big"), 5);
	lv_cid_file_free(f);

	/* After a restart every VM keeps its CID, and new ones fill the gaps. */
	write_text("{\"dev\": 3, \"big\": 5}");
	ck_assert_int_eq(lv_cid_file_open(path, &f, &err), 0);
	ck_assert_uint_eq(cid_of(f, "big"), 5);
	ck_assert_uint_eq(cid_of(f, "new"), 4);
	ck_assert_uint_eq(cid_of(f, "newer"), 6);
	lv_cid_file_free(f);

	ck_assert_int_eq(lv_cid_file_open(path, &f, &err), 0);
	ck_assert_uint_eq(cid_of(f, "newer"), 6);
	ck_assert_uint_eq(cid_of(f, "new"), 4);
	/* A retired pooled VM's CID is forgotten (durably) and free again. */
	ck_assert_int_eq(lv_cid_file_remove(f, "new"), 0);
	ck_assert_int_eq(lv_cid_file_remove(f, "never-there"), 0);
	lv_cid_file_free(f);
	ck_assert_int_eq(lv_cid_file_open(path, &f, &err), 0);
	ck_assert_uint_eq(cid_of(f, "dev.7"), 4);
	lv_cid_file_free(f);
}
END_TEST

static void open_fails(const char *text, const char *want)
{
	struct orch_error err = {0};
	struct lv_cid_file *f = NULL;
	write_text(text);
	ck_assert_int_eq(lv_cid_file_open(path, &f, &err), -EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_msg(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
}

START_TEST(test_hostile_files)
{
	open_fails("not json", path);
	open_fails("[3, 4]", "not a JSON object");
	open_fails("{\"a\": 2}", "invalid CID");
	open_fails("{\"a\": 4294967295}", "invalid CID");
	open_fails("{\"a\": \"3\"}", "invalid CID");
	open_fails("{\"a\": 3, \"b\": 3}", "given to two vms");
	open_fails("{\"a\": 3, \"a\": 4}", "duplicate");
}
END_TEST

START_TEST(test_missing_file_is_empty)
{
	struct orch_error err = {0};
	struct lv_cid_file *f = NULL;
	unlink(path);
	ck_assert_int_eq(lv_cid_file_open(path, &f, &err), 0);
	ck_assert_uint_eq(cid_of(f, "only"), 3);
	lv_cid_file_free(f);
	ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	snprintf(path, sizeof(path), "%s/cids.json", dir);
	Suite *s = suite_create("libvirt_cid");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_allocate_and_persist);
	tcase_add_test(tc, test_hostile_files);
	tcase_add_test(tc, test_missing_file_is_empty);
	suite_add_tcase(s, tc);
	int r = orch_check_run(s);
	unlink(path);
	rmdir(dir);
	return r;
}
