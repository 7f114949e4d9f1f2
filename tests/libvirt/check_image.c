/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/image.c: finding and checking a built guest image. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "image.h"

static char dir[] = "/tmp/check-image.XXXXXX";
static char img[300], other[300];

static void put(const char *d, const char *name, const char *text)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", d, name);
	FILE *f = fopen(p, "we");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void make_image(const char *d, const char *type)
{
	char root[32];
	mkdir(d, 0755);
	put(d, "vmlinuz", "k");
	put(d, "initrd.img", "i");
	put(d, "baseline-initrd.img", "b");
	snprintf(root, sizeof(root), "%.16s\n", type); /* as the builder writes it */
	put(d, "rootfs-type", root);
	snprintf(root, sizeof(root), "rootfs.%.16s", type);
	put(d, root, "r");
}

/* image.packages must be among the manifest's "packages" (what vm-images/build got). */
START_TEST(test_packages)
{
	struct orch_error err = {0};
	struct lv_image im;
	char *const want[] = {"jq", "make"};
	make_image(img, "erofs");
	ck_assert_int_eq(lv_image_load(img, &im, &err), 0);
	ck_assert_int_eq(lv_image_check_packages(&im, want, 0, &err), 0);
	ck_assert_int_eq(lv_image_check_packages(&im, want, 2, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "vm-images/build --config"));
	put(img, "manifest", "fs erofs\npackages bash jq makes\nsupervisor x\n");
	ck_assert_int_eq(lv_image_check_packages(&im, want, 1, &err), 0);
	ck_assert_int_eq(lv_image_check_packages(&im, want, 2, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "lacks package make of image.packages"));
	put(img, "manifest", "fs erofs\npackages bash jq make \n");
	ck_assert_int_eq(lv_image_check_packages(&im, want, 2, &err), 0);
	put(img, "manifest", "packages make\nfs erofs\n");
	ck_assert_int_eq(lv_image_check_packages(&im, want + 1, 1, &err), 0);
	ck_assert_int_eq(lv_image_check_packages(&im, want, 1, &err), -ENOENT);
}
END_TEST

START_TEST(test_load)
{
	struct orch_error err = {0};
	struct lv_image im;
	make_image(img, "erofs");
	ck_assert_int_eq(lv_image_load(img, &im, &err), 0);
	ck_assert_str_eq(im.rootfs_type, "erofs");
	ck_assert_ptr_nonnull(strstr(im.rootfs, "/rootfs.erofs"));
	ck_assert_ptr_nonnull(strstr(im.kernel, "/vmlinuz"));
	ck_assert_ptr_nonnull(strstr(im.baseline, "/baseline-initrd.img"));

	put(img, "rootfs-type", "ext4");
	ck_assert_int_eq(lv_image_load(img, &im, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "unknown root file system type"));

	put(img, "rootfs-type", "squashfs");
	ck_assert_int_eq(lv_image_load(img, &im, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "rootfs.squashfs"));

	ck_assert_int_eq(lv_image_load("relative", &im, &err), -EINVAL);
}
END_TEST

START_TEST(test_find)
{
	struct orch_error err = {0};
	struct lv_image im;
	make_image(other, "squashfs");
	const char *cands[] = {NULL, "/nonexistent/image", other, img};
	ck_assert_int_eq(lv_image_find(cands, 4, &im, &err), 0);
	ck_assert_str_eq(im.dir, other);
	ck_assert_str_eq(im.rootfs_type, "squashfs");

	const char *none[] = {"/nonexistent/a", NULL, "/nonexistent/b"};
	ck_assert_int_eq(lv_image_find(none, 3, &im, &err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent/a, /nonexistent/b"));
	ck_assert_ptr_nonnull(strstr(err.msg, "vm-images/build"));
}
END_TEST

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	snprintf(img, sizeof(img), "%s/image", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	Suite *s = suite_create("libvirt_image");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_load);
	tcase_add_test(tc, test_packages);
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	int r = orch_check_run(s);
	static const char *const files[] = {"vmlinuz",	   "initrd.img",   "baseline-initrd.img",
					    "rootfs-type", "rootfs.erofs", "rootfs.squashfs"};
	const char *dirs[] = {img, other};
	for (size_t d = 0; d < 2; d++) {
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			char p[400];
			snprintf(p, sizeof(p), "%s/%s", dirs[d], files[i]);
			unlink(p);
		}
		rmdir(dirs[d]);
	}
	rmdir(dir);
	return r;
}
