/* SPDX-License-Identifier: Apache-2.0 */
/* The guest image built by vm-images/build: a directory holding vmlinuz, initrd.img,
 * rootfs.erofs or rootfs.squashfs (named by the file rootfs-type), and
 * baseline-initrd.img (the KVM probe's and the benchmark's trivial guest). */
#pragma once

#include <limits.h>
#include <stddef.h>

#include "error.h"

struct lv_image {
	char dir[PATH_MAX];
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char rootfs[PATH_MAX];
	char rootfs_type[16]; /* "erofs" | "squashfs" */
	char baseline[PATH_MAX];
};

/* Loads the image in dir, checking that every file is there. */
int lv_image_load(const char *dir, struct lv_image *ret, struct orch_error *err);

/* Whether the image was built with each of pkgs (image.packages of orchd's config): the
 * "packages" line of its manifest (vm-images/build --packages/--config). -ENOENT names
 * the first missing one and how to rebuild. */
int lv_image_check_packages(const struct lv_image *im, char *const *pkgs, size_t n,
			    struct orch_error *err);

/* The first of the candidate directories (NULL-terminated; NULL entries are skipped
 * up to n) that holds an image. The error lists where it looked and how to build one. */
int lv_image_find(const char *const *candidates, size_t n, struct lv_image *ret,
		  struct orch_error *err);
