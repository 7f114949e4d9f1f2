/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "transcript.h"

#define SV_TRANSCRIPT_NAME "transcript.jsonl"

int sv_transcript_open(const char *workspace, uid_t uid, gid_t gid, struct orch_error *err)
{
	_cleanup_close_ int dir = open(workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return orch_errno(err, -errno, "cannot open workspace %s", workspace);
	_cleanup_close_ int fd = openat(dir, SV_TRANSCRIPT_NAME,
					O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
						O_CLOEXEC | O_NOCTTY,
					0600);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open %s/%s", workspace, SV_TRANSCRIPT_NAME);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "cannot stat %s/%s", workspace, SV_TRANSCRIPT_NAME);
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return orch_err(err, -EPERM, "%s/%s is not a plain file; not writing to it",
				workspace, SV_TRANSCRIPT_NAME);
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return orch_errno(err, -errno, "cannot chown %s/%s", workspace, SV_TRANSCRIPT_NAME);
	return TAKE_FD(fd);
}

int sv_transcript_write(int fd, const char *event, json_t *obj_new)
{
	_cleanup_json_ json_t *obj = obj_new;
	if (fd < 0 || !obj)
		return -EINVAL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_set_new(obj, "ts",
			    json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	json_object_set_new(obj, "event", json_string(event));
	_cleanup_free_ char *line = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
	if (!line)
		return -ENOMEM;
	size_t len = strlen(line);
	line[len] = '\n'; /* replaces the terminator: written as one record */
	ssize_t n = write(fd, line, len + 1);
	if (n < 0)
		return -errno;
	return (size_t)n == len + 1 ? 0 : -EIO;
}
