/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orch-config.h"
#include "helpers.h"

static int try(char *buf, size_t size, const char *dir, const char *sub)
{
	if (!dir || !dir[0] ||
	    (size_t)snprintf(buf, size, "%s%s/" LV_VIRTIOFSD_RO, dir, sub) >= size)
		return -ENAMETOOLONG;
	return access(buf, X_OK) == 0 ? 0 : -ENOENT;
}

int lv_virtiofsd_ro_path(char *buf, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			if (try(buf, size, self, "") == 0 || try(buf, size, self, "/libvirt") == 0)
				return 0;
		}
	}
	if (try(buf, size, getenv("ORCH_LIBEXECDIR"), "") == 0 ||
	    try(buf, size, ORCH_LIBEXECDIR, "") == 0 ||
	    try(buf, size, ORCH_BUILDDIR, "/host/libvirt") == 0)
		return 0;
	return -ENOENT;
}
