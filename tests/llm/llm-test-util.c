/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "llm-test-util.h"

extern char **environ;

int llm_test_spawn_fake(const char *path, const char *const *args, pid_t *ret_pid,
			unsigned *ret_port)
{
	int p[2];
	pid_t pid;
	char buf[32] = {0};
	ssize_t n;
	size_t got = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		const char *argv[32] = {path};
		size_t i = 1;
		for (; args && args[i - 1] && i < 31; i++)
			argv[i] = args[i - 1];
		argv[i] = NULL;
		dup2(p[1], 1);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		n = read(p[0], buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	*ret_port = (unsigned)strtoul(buf, NULL, 10);
	if (*ret_port == 0) {
		llm_test_stop(pid);
		return -EIO;
	}
	*ret_pid = pid;
	return 0;
}

void llm_test_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int llm_test_write_key(const char *dir, char *ret_path, size_t len)
{
	int fd;

	snprintf(ret_path, len, "%s/key", dir);
	fd = open(ret_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, LLM_TEST_KEY "\n", strlen(LLM_TEST_KEY) + 1) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

char *llm_test_read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap + 65536);
			if (!nb)
				break;
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	if (buf)
		buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return buf;
}

int llm_test_run(const char *const *argv, const char *const *env_extra, char **ret_out)
{
	int p[2], status;
	pid_t pid;
	char *out = malloc(4 * 1024 * 1024 + 1);
	size_t len = 0;
	ssize_t n;

	if (!out || pipe2(p, O_CLOEXEC) < 0) {
		free(out);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		free(out);
		return -1;
	}
	if (pid == 0) {
		for (size_t i = 0; env_extra && env_extra[i]; i++)
			putenv((char *)env_extra[i]);
		dup2(p[1], 1);
		dup2(p[1], 2);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], out + len, 4 * 1024 * 1024 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	out[len] = '\0';
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*ret_out = out;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void llm_test_rmtree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
