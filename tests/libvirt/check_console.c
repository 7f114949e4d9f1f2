/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/console.c: bounded, sanitized console-log tails. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "cleanup.h"
#include "console.h"

static char dir[] = "/tmp/check-console.XXXXXX";

static char *write_file(const char *name, const void *data, size_t len)
{
	char *path = NULL;
	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

START_TEST(test_missing_is_empty)
{
	struct orch_error err = {0};
	_cleanup_free_ char *t = NULL;
	ck_assert_int_eq(lv_console_tail("/nonexistent/console.log", 100, &t, &err), 0);
	ck_assert_str_eq(t, "");
}
END_TEST

START_TEST(test_small_file_whole)
{
	struct orch_error err = {0};
	_cleanup_free_ char *p = write_file("small", "line one\r\nline two\n", 19);
	_cleanup_free_ char *t = NULL;
	ck_assert_int_eq(lv_console_tail(p, 100, &t, &err), 0);
	ck_assert_str_eq(t, "line one\nline two\n");
}
END_TEST

START_TEST(test_tail_starts_at_line)
{
	struct orch_error err = {0};
	const char text[] = "aaaaaaaaaa\nbbbbbbbbbb\ncccc\n";
	_cleanup_free_ char *p = write_file("lines", text, sizeof(text) - 1);
	_cleanup_free_ char *t = NULL;
	ck_assert_int_eq(lv_console_tail(p, 14, &t, &err), 0);
	/* the last 14 bytes are "bbbbbbbb\ncccc\n" minus the partial first line */
	ck_assert_str_eq(t, "cccc\n");
}
END_TEST

START_TEST(test_hostile_bytes)
{
	struct orch_error err = {0};
	const char text[] = "ok\x1b[31m\x00\xff\x80 end\n";
	_cleanup_free_ char *p = write_file("hostile", text, sizeof(text) - 1);
	_cleanup_free_ char *t = NULL;
	ck_assert_int_eq(lv_console_tail(p, 100, &t, &err), 0);
	ck_assert_str_eq(t, "ok?[31m??? end\n");
}
END_TEST

START_TEST(test_bounds)
{
	struct orch_error err = {0};
	char *t = NULL;
	ck_assert_int_eq(lv_console_tail("/dev/null", 0, &t, &err), -EINVAL);
	ck_assert_int_eq(lv_console_tail("/dev/null", 2 * 1024 * 1024, &t, &err), -EINVAL);
	ck_assert_int_eq(lv_console_tail("/tmp", 10, &t, &err), -EINVAL); /* not a regular file */
	ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_error_message_keeps_the_end)
{
	struct orch_error err = {0};
	char big[8192];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (i % 64 == 63) ? '\n' : 'x';
	memcpy(big + sizeof(big) - 12, "Kernel panic", 12);
	_cleanup_free_ char *p = write_file("big", big, sizeof(big));
	ck_assert_int_eq(lv_console_error(&err, -ETIMEDOUT, p, "vm dev: no hello within 60 s"),
			 -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(err.msg, "vm dev: no hello within 60 s; console ("));
	ck_assert_ptr_nonnull(strstr(err.msg, "Kernel panic"));

	/* The message may come from err itself. */
	orch_err(&err, -EIO, "cannot start vm dev: boom");
	ck_assert_int_eq(lv_console_error(&err, -EIO, p, err.msg), -EIO);
	ck_assert_ptr_nonnull(strstr(err.msg, "cannot start vm dev: boom; console ("));

	_cleanup_free_ char *e = write_file("empty", "", 0);
	ck_assert_int_eq(lv_console_error(&err, -ETIMEDOUT, e, "boot"), -ETIMEDOUT);
	ck_assert_ptr_nonnull(strstr(err.msg, "is empty"));
}
END_TEST

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	Suite *s = suite_create("libvirt_console");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_missing_is_empty);
	tcase_add_test(tc, test_small_file_whole);
	tcase_add_test(tc, test_tail_starts_at_line);
	tcase_add_test(tc, test_hostile_bytes);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_error_message_keeps_the_end);
	suite_add_tcase(s, tc);
	int r = orch_check_run(s);
	static const char *const files[] = {"small", "lines", "hostile", "big", "empty"};
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return r;
}
