/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int orchd_dir_private(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	_cleanup_free_ char *parent = strdup(path);
	int r;

	if (!parent)
		return -ENOMEM;
	if ((r = orchd_mkdir_p(dirname(parent), 0755)) < 0)
		return r;
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno; /* ELOOP or ENOTDIR: not a directory of its own */
	if (fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}
