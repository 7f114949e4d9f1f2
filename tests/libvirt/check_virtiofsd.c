/* SPDX-License-Identifier: Apache-2.0 */
/* Finding orch-virtiofsd (host/libvirt/virtiofsd.h). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "cleanup.h"
#include "virtiofsd.h"

START_TEST(test_find)
{
	char a[] = "/tmp/check-vfsd-a.XXXXXX", b[] = "/tmp/check-vfsd-b.XXXXXX", p[128];
	struct orch_error err = {0};
	char *found = NULL;
	ck_assert_ptr_nonnull(mkdtemp(a));
	ck_assert_ptr_nonnull(mkdtemp(b));

	/* Nowhere: the error names the places and the fix. */
	const char *const dirs[] = {NULL, a, "", b};
	ck_assert_int_eq(lv_virtiofsd_find(dirs, ELEMENTSOF(dirs), &found, &err), -ENOENT);
	ck_assert_ptr_null(found);
	ck_assert_ptr_nonnull(strstr(err.msg, a));
	ck_assert_ptr_nonnull(strstr(err.msg, b));
	ck_assert_ptr_nonnull(strstr(err.msg, "libexec"));

	/* Not executable: skipped; the first executable one wins. */
	snprintf(p, sizeof(p), "%s/" LV_VIRTIOFSD_WRAPPER, a);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/" LV_VIRTIOFSD_WRAPPER, b);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(lv_virtiofsd_find(dirs, ELEMENTSOF(dirs), &found, &err), 0);
	ck_assert_str_eq(found, p);
	free(found);

	unlink(p);
	snprintf(p, sizeof(p), "%s/" LV_VIRTIOFSD_WRAPPER, a);
	unlink(p);
	rmdir(a);
	rmdir(b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtiofsd");
	TCase *tc = tcase_create("wrapper");
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
