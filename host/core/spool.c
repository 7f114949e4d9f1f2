/* SPDX-License-Identifier: Apache-2.0 */
/* Task output spool: <state_dir>/spool/<task>.out holds the bytes of every chunk in
 * arrival order; the store's output table indexes them (seq, stream, offset, length), so
 * `orch logs` replays by seq and resumes where it stopped. Bytes are written to the file
 * before they are indexed (output.c): after a crash the file may hold unindexed bytes,
 * never the reverse. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "orchd.h"

#define SPOOL_MAX_READ (16 * 1024 * 1024)

static void spool_path(struct orchd *d, int64_t task, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%lld.out", d->spool_dir, (long long)task);
}

int spool_open(struct orchd *d, int64_t task, int64_t *ret_size, struct orch_error *err)
{
	char path[4200];
	struct stat st;
	int fd;

	spool_path(d, task, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open spool %s", path);
	if (fstat(fd, &st) < 0) {
		int r = -errno;
		close(fd);
		return orch_errno(err, r, "cannot stat spool %s", path);
	}
	*ret_size = st.st_size;
	return fd;
}

void spool_remove(struct orchd *d, int64_t task)
{
	char path[4200];

	spool_path(d, task, path, sizeof(path));
	(void)unlink(path);
}

int spool_read(struct orchd *d, int64_t task, int64_t offset, int64_t len, void **ret,
	       struct orch_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	char path[4200];
	size_t done = 0;

	if (len < 0 || len > SPOOL_MAX_READ || offset < 0)
		return orch_err(err, -EINVAL, "bad spool range");
	spool_path(d, task, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open spool %s", path);
	buf = malloc((size_t)len + 1);
	if (!buf)
		return orch_err(err, -ENOMEM, "out of memory");
	while (done < (size_t)len) {
		ssize_t n = pread(fd, buf + done, (size_t)len - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return orch_errno(err, -errno, "cannot read spool %s", path);
		if (n == 0)
			return orch_err(err, -EIO, "spool %s is shorter than its index", path);
		done += (size_t)n;
	}
	*ret = TAKE_PTR(buf);
	return 0;
}
