/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/choose.c: transport choice and the KVM probe. The probe's
 * QEMU is replaced by small scripts (a guest that reaches init, one that hangs, one that
 * fails) so the decision logic and the cache are tested without booting anything; the
 * real boot probe runs in the e2e test. Cases that need a KVM device answering
 * KVM_GET_API_VERSION are skipped (with a message) where /dev/kvm cannot be opened. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "choose.h"
#include "cleanup.h"

static char dir[] = "/tmp/check-choose.XXXXXX";
static char kernel[256], initrd[256], cache[256];

#ifdef CHOOSE_KVM
static char *script(const char *name, const char *body)
{
	char *path = NULL;
	ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
	FILE *f = fopen(path, "we");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0755), 0);
	return path;
}

/* The probe cases open the real KVM device (its API version is asked before the probe
 * boot, which a stand-in qemu answers): a program of their own that skips, saying why,
 * where there is none. */
static bool kvm_usable(void)
{
	int fd = open(LV_KVM_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("SKIP: the KVM probe cases need %s: %s\n", LV_KVM_PATH, strerror(errno));
		return false;
	}
	close(fd);
	return true;
}
#else
START_TEST(test_transport)
{
	enum lv_transport t;
	char why[256];
	ck_assert_int_eq(lv_transport_choose(0, "/nonexistent/vhost-vsock", &t, why, sizeof(why)),
			 0);
	ck_assert_int_eq(t, LV_TRANSPORT_VIRTIO_SERIAL);
	ck_assert_ptr_nonnull(strstr(why, "cannot open /nonexistent/vhost-vsock"));

	/* Any openable device stands in for a usable vhost-vsock. */
	ck_assert_int_eq(lv_transport_choose(0, "/dev/null", &t, why, sizeof(why)), 0);
	ck_assert_int_eq(t, LV_TRANSPORT_VSOCK);

	ck_assert_int_eq(
		lv_transport_choose(LV_TRANSPORT_VSOCK, "/nonexistent", &t, why, sizeof(why)), 0);
	ck_assert_int_eq(t, LV_TRANSPORT_VSOCK);
	ck_assert_str_eq(why, "forced by config");
	ck_assert_int_eq(
		lv_transport_choose(LV_TRANSPORT_VIRTIO_SERIAL, "/dev/null", &t, why, sizeof(why)),
		0);
	ck_assert_int_eq(t, LV_TRANSPORT_VIRTIO_SERIAL);
	ck_assert_int_eq(lv_transport_choose(7, NULL, &t, why, sizeof(why)), -EINVAL);
}
END_TEST

START_TEST(test_accel_without_kvm)
{
	struct orch_error err = {0};
	enum lv_accel a;
	char why[256];
	struct lv_accel_probe p = {
		.kvm_path = "/nonexistent/kvm", .kernel = kernel, .initrd = initrd};
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, NULL, why, sizeof(why), &err), 0);
	ck_assert_int_eq(a, LV_ACCEL_TCG);
	ck_assert_ptr_nonnull(strstr(why, "cannot open /nonexistent/kvm"));

	/* A device that is not KVM: the API version ioctl fails. */
	p.kvm_path = "/dev/null";
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, NULL, why, sizeof(why), &err), 0);
	ck_assert_int_eq(a, LV_ACCEL_TCG);
	ck_assert_ptr_nonnull(strstr(why, "KVM_GET_API_VERSION"));

	ck_assert_int_eq(lv_accel_choose(LV_ACCEL_KVM, &p, &a, NULL, why, sizeof(why), &err), 0);
	ck_assert_int_eq(a, LV_ACCEL_KVM);
	ck_assert_str_eq(why, "forced by config");
	ck_assert_int_eq(lv_accel_choose(9, &p, &a, NULL, why, sizeof(why), &err), -EINVAL);
}
END_TEST

#endif

#ifdef CHOOSE_KVM
START_TEST(test_accel_probe_boots)
{
	struct orch_error err = {0};
	enum lv_accel a;
	bool cached = true;
	char why[256];
	_cleanup_free_ char *good =
		script("qemu-good", "echo 'booting'; echo '" LV_PROBE_MARKER "'; exec sleep 30");
	unlink(cache);
	struct lv_accel_probe p = {.qemu = good,
				   .kernel = kernel,
				   .initrd = initrd,
				   .timeout_ms = 5000,
				   .cache_path = cache};
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, &cached, why, sizeof(why), &err), 0);
	ck_assert_int_eq(a, LV_ACCEL_KVM);
	ck_assert(!cached);
	ck_assert_int_eq(access(cache, F_OK), 0);

	/* The second answer comes from the cache. */
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, &cached, why, sizeof(why), &err), 0);
	ck_assert(cached);
	ck_assert_int_eq(a, LV_ACCEL_KVM);
	ck_assert_ptr_nonnull(strstr(why, "cached in"));

	/* A changed input (the kernel, qemu) invalidates it: now qemu fails. */
	FILE *f = fopen(kernel, "ae");
	ck_assert_ptr_nonnull(f);
	fputs("changed", f);
	fclose(f);
	free(script("qemu-good", "echo 'assertion failed' >&2; exit 1"));
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, &cached, why, sizeof(why), &err), 0);
	ck_assert(!cached);
	ck_assert_int_eq(a, LV_ACCEL_TCG);
	ck_assert_ptr_nonnull(strstr(why, "qemu exited: assertion failed"));
}
END_TEST

START_TEST(test_accel_probe_hangs)
{
	struct orch_error err = {0};
	enum lv_accel a;
	char why[256];
	/* A kernel hanging in its decompressor prints nothing. */
	_cleanup_free_ char *hang = script("qemu-hang", "exec sleep 60");
	struct lv_accel_probe p = {
		.qemu = hang, .kernel = kernel, .initrd = initrd, .timeout_ms = 300};
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, NULL, why, sizeof(why), &err), 0);
	ck_assert_int_eq(a, LV_ACCEL_TCG);
	ck_assert_ptr_nonnull(strstr(why, "did not reach init within 300 ms"));

	p.qemu = "/nonexistent/qemu";
	ck_assert_int_eq(lv_accel_choose(0, &p, &a, NULL, why, sizeof(why), &err), -ENOENT);
}
END_TEST

#endif

int main(void)
{
#ifdef CHOOSE_KVM
	if (!kvm_usable())
		return 77;
#endif
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return EXIT_FAILURE;
	}
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
	snprintf(initrd, sizeof(initrd), "%s/initrd", dir);
	snprintf(cache, sizeof(cache), "%s/probe.json", dir);
	FILE *f = fopen(kernel, "we");
	FILE *g = fopen(initrd, "we");
	if (!f || !g) {
		perror("fopen");
		return EXIT_FAILURE;
	}
	fputs("kernel", f);
	fputs("initrd", g);
	fclose(f);
	fclose(g);

	Suite *s = suite_create("libvirt_choose");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
#ifdef CHOOSE_KVM
	tcase_add_test(tc, test_accel_probe_boots);
	tcase_add_test(tc, test_accel_probe_hangs);
#else
	tcase_add_test(tc, test_transport);
	tcase_add_test(tc, test_accel_without_kvm);
#endif
	suite_add_tcase(s, tc);
	int r = orch_check_run(s);

	static const char *const files[] = {"vmlinuz",	 "initrd",   "probe.json",
					    "qemu-good", "qemu-bad", "qemu-hang"};
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		char path[300];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return r;
}
