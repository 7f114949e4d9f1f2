/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "llm-key.h"

void llm_key_free(char *key)
{
	if (!key)
		return;
	explicit_bzero(key, strlen(key));
	free(key);
}

int llm_key_file_open(const char *path, struct orch_error *err)
{
	_cleanup_close_ int fd = -1;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open key file %s", path);
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "cannot stat key file %s", path);
	if (!S_ISREG(st.st_mode))
		return orch_err(err, -EINVAL, "key file %s is not a regular file", path);
	/* Whoever owns the file can swap the key for another (and read what it was). */
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return orch_err(err, -EPERM,
				"key file %s is owned by uid %u, not root or orchd's user; "
				"run chown root %s",
				path, (unsigned)st.st_uid, path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return orch_err(err, -EPERM,
				"key file %s is accessible to group or others (mode %04o); "
				"run chmod 600 %s",
				path, (unsigned)(st.st_mode & 07777), path);
	return TAKE_FD(fd);
}

int llm_key_read(const char *path, char **ret_key, struct orch_error *err)
{
	_cleanup_close_ int fd = -1;
	char buf[LLM_KEY_MAX + 2];
	size_t len = 0;
	ssize_t n;
	char *key;

	if ((fd = llm_key_file_open(path, err)) < 0)
		return fd;
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			explicit_bzero(buf, sizeof(buf));
			return orch_errno(err, r, "cannot read key file %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	/* The key is the first line; trailing whitespace is not part of it. */
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\n') {
			len = i;
			break;
		}
	while (len && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len == 0 || len > LLM_KEY_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return orch_err(err, -EINVAL, "key file %s: expected one line of 1..%d bytes", path,
				LLM_KEY_MAX);
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] == 0x7f) {
			explicit_bzero(buf, sizeof(buf));
			return orch_err(
				err, -EINVAL,
				"key file %s: the key contains spaces or control characters", path);
		}
	key = strndup(buf, len);
	explicit_bzero(buf, sizeof(buf));
	if (!key)
		return orch_err(err, -ENOMEM, "out of memory");
	*ret_key = key;
	return 0;
}
