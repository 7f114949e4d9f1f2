/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "fs-util.h"

int orchd_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0)
		return errno == EEXIST ? 0 : -errno;
	/* Exactly mode, whatever orchd's umask (077) took away. */
	if (chmod(path, mode) < 0)
		return -errno;
	return 1;
}

int orchd_mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);
	int r;

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if ((r = orchd_mkdir(p, mode)) < 0)
			return r;
		*s = '/';
	}
	r = orchd_mkdir(p, mode);
	return r < 0 ? r : 0;
}
