/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "console.h"

int lv_console_tail(const char *path, size_t max_bytes, char **ret, struct orch_error *err)
{
	if (max_bytes == 0 || max_bytes > 1024 * 1024)
		return orch_err(err, -EINVAL, "console tail of %zu bytes is out of range",
				max_bytes);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret = strdup("");
			return *ret ? 0 : -ENOMEM;
		}
		return orch_errno(err, -errno, "cannot open console log %s", path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "cannot stat console log %s", path);
	if (!S_ISREG(st.st_mode))
		return orch_err(err, -EINVAL, "console log %s is not a regular file", path);
	off_t start = st.st_size > (off_t)max_bytes ? st.st_size - (off_t)max_bytes : 0;
	_cleanup_free_ char *buf = malloc(max_bytes + 1);
	if (!buf)
		return -ENOMEM;
	size_t n = 0;
	while (n < max_bytes) {
		ssize_t k = pread(fd, buf + n, max_bytes - n, start + (off_t)n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return orch_errno(err, -errno, "cannot read console log %s", path);
		if (k == 0)
			break;
		n += (size_t)k;
	}
	size_t from = 0;
	if (start > 0) {
		/* Drop the partial first line, unless that would drop everything. */
		char *nl = memchr(buf, '\n', n);
		if (nl && (size_t)(nl - buf) + 1 < n)
			from = (size_t)(nl - buf) + 1;
	}
	char *out = malloc(n - from + 1);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = from; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch == '\r')
			continue;
		out[o++] = (ch == '\n' || ch == '\t' || (ch >= 0x20 && ch < 0x7f)) ? (char)ch : '?';
	}
	out[o] = 0;
	*ret = out;
	return 0;
}

int lv_console_error(struct orch_error *err, int code, const char *path, const char *what_in)
{
	/* what may be err->msg itself: copy it before err is rewritten. */
	char what[ORCH_ERROR_MSG_MAX];
	snprintf(what, sizeof(what), "%s", what_in);
	_cleanup_free_ char *tail = NULL;
	struct orch_error ignored = {0};
	/* The message buffer is fixed: keep the end of the log, which says the most. */
	size_t used = strlen(what) + strlen(path) + 32;
	size_t room = used + 64 < ORCH_ERROR_MSG_MAX ? ORCH_ERROR_MSG_MAX - used : 64;
	if (lv_console_tail(path, room, &tail, &ignored) < 0 || !tail[0])
		return orch_err(err, code, "%s; console log %s is empty", what, path);
	return orch_err(err, code, "%s; console (%s) ends with:\n%s", what, path, tail);
}
