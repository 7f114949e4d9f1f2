/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "orch-config.h"
#include "virtiofsd.h"

static int find_named(const char *name, const char *const *dirs, size_t n, char **ret,
		      struct orch_error *err)
{
	char looked[384] = "";
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		if (!dirs[i] || !dirs[i][0])
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dirs[i], name) >= sizeof(path))
			continue;
		if (access(path, X_OK) == 0) {
			char *p = strdup(path);
			if (!p)
				return orch_err(err, -ENOMEM, "out of memory");
			*ret = p;
			return 0;
		}
		if (off < sizeof(looked)) {
			int k = snprintf(looked + off, sizeof(looked) - off, "%s%s",
					 off ? ", " : "", dirs[i]);
			if (k > 0)
				off += (size_t)k;
		}
	}
	return orch_err(err, -ENOENT,
			"%s not found (looked in %s); it is installed with orchd in the libexec "
			"directory (reinstall orch, or set ORCH_LIBEXECDIR)",
			name, looked[0] ? looked : "nowhere");
}

int lv_virtiofsd_find(const char *const *dirs, size_t n, char **ret, struct orch_error *err)
{
	return find_named(LV_VIRTIOFSD_WRAPPER, dirs, n, ret, err);
}

/* orchd's own places: beside the running binary, its libvirt/ subdirectory (the build
 * tree), $ORCH_LIBEXECDIR, the install libexecdir. */
static int find_own(const char *name, char **ret, struct orch_error *err)
{
	char self[PATH_MAX], sub[PATH_MAX + 16];
	const char *here = NULL, *build = NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			here = self;
			snprintf(sub, sizeof(sub), "%s/libvirt", self);
			build = sub;
		}
	}
	const char *const dirs[] = {here, build, getenv("ORCH_LIBEXECDIR"), ORCH_LIBEXECDIR};
	return find_named(name, dirs, ELEMENTSOF(dirs), ret, err);
}

int lv_virtiofsd_wrapper(char **ret, struct orch_error *err)
{
	return find_own(LV_VIRTIOFSD_WRAPPER, ret, err);
}

int lv_virtiofsd_ro_wrapper(char **ret, struct orch_error *err)
{
	return find_own(LV_VIRTIOFSD_RO_WRAPPER, ret, err);
}
