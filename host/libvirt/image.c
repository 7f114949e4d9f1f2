/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "image.h"

static int path_in(char *buf, size_t size, const char *dir, const char *name,
		   struct orch_error *err)
{
	if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
		return orch_err(err, -ENAMETOOLONG, "image path %s/%s is too long", dir, name);
	if (access(buf, R_OK) < 0)
		return orch_errno(err, -errno, "image file %s", buf);
	return 0;
}

int lv_image_load(const char *dir, struct lv_image *ret, struct orch_error *err)
{
	struct lv_image im = {0};
	int r;
	if (!dir || dir[0] != '/' || strlen(dir) >= sizeof(im.dir))
		return orch_err(err, -EINVAL, "image directory must be an absolute path");
	snprintf(im.dir, sizeof(im.dir), "%s", dir);

	char typefile[PATH_MAX];
	if ((r = path_in(typefile, sizeof(typefile), dir, "rootfs-type", err)) < 0)
		return r;
	_cleanup_close_ int fd = open(typefile, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open %s", typefile);
	ssize_t n = read(fd, im.rootfs_type, sizeof(im.rootfs_type) - 1);
	if (n < 0)
		return orch_errno(err, -errno, "cannot read %s", typefile);
	im.rootfs_type[n] = 0;
	im.rootfs_type[strcspn(im.rootfs_type, "\n")] = 0;
	if (strcmp(im.rootfs_type, "erofs") != 0 && strcmp(im.rootfs_type, "squashfs") != 0)
		return orch_err(err, -EINVAL, "%s: unknown root file system type", typefile);

	char rootname[32];
	snprintf(rootname, sizeof(rootname), "rootfs.%s", im.rootfs_type);
	if ((r = path_in(im.kernel, sizeof(im.kernel), dir, "vmlinuz", err)) < 0 ||
	    (r = path_in(im.initrd, sizeof(im.initrd), dir, "initrd.img", err)) < 0 ||
	    (r = path_in(im.rootfs, sizeof(im.rootfs), dir, rootname, err)) < 0 ||
	    (r = path_in(im.baseline, sizeof(im.baseline), dir, "baseline-initrd.img", err)) < 0)
		return r;
	*ret = im;
	return 0;
}

int lv_image_find(const char *const *candidates, size_t n, struct lv_image *ret,
		  struct orch_error *err)
{
	char looked[256] = "";
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if (!candidates[i])
			continue;
		struct orch_error e = {0};
		if (lv_image_load(candidates[i], ret, &e) == 0)
			return 0;
		int k = snprintf(looked + off, sizeof(looked) - off, "%s%s", off ? ", " : "",
				 candidates[i]);
		if (k > 0 && (size_t)k < sizeof(looked) - off)
			off += (size_t)k;
	}
	return orch_err(err, -ENOENT,
			"no guest image found (looked in: %s); build one with vm-images/build "
			"and point ORCH_VM_IMAGE at its image/ directory",
			off ? looked : "nowhere");
}

#define MANIFEST_MAX (1024 * 1024)

int lv_image_check_packages(const struct lv_image *im, char *const *pkgs, size_t n,
			    struct orch_error *err)
{
	char path[PATH_MAX + 16];
	if (n == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/manifest", im->dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = malloc(MANIFEST_MAX + 1);
	size_t len = 0;
	if (!buf)
		return orch_err(err, -ENOMEM, "out of memory");
	if (fd < 0)
		return orch_errno(err, -errno,
				  "image.packages: cannot read %s; rebuild the image with "
				  "vm-images/build --config <orchd's config>",
				  path);
	for (ssize_t r; len < MANIFEST_MAX && (r = read(fd, buf + len, MANIFEST_MAX - len));) {
		if (r < 0)
			return orch_errno(err, -errno, "cannot read %s", path);
		len += (size_t)r;
	}
	buf[len] = 0;
	const char *line = strncmp(buf, "packages ", 9) == 0 ? buf : strstr(buf, "\npackages ");
	if (line && line[0] == '\n')
		line++;
	size_t ll = line ? strcspn(line, "\n") : 0;
	for (size_t i = 0; i < n; i++) {
		size_t pl = strlen(pkgs[i]);
		bool found = false;
		const char *p = line ? line + 9 : NULL, *end = line ? line + ll : NULL;
		while (p && p < end && !found) {
			p += strspn(p, " ");
			size_t w = strcspn(p, " \n");
			if (w == 0)
				break;
			found = w == pl && strncmp(p, pkgs[i], pl) == 0;
			p += w;
		}
		if (!found)
			return orch_err(err, -ENOENT,
					"the guest image %s lacks package %s of image.packages; "
					"rebuild it: vm-images/build --config <orchd's config>",
					im->dir, pkgs[i]);
	}
	return 0;
}
