/* SPDX-License-Identifier: Apache-2.0 */
/* orch-jail-exec: the first program inside a jail (bwrap runs it as pid 2).
 *   orch-jail-exec STATUS_FD PROGRAM [ARGS...]
 * Runs PROGRAM as its child and reports on STATUS_FD, one line:
 *   "exec ERRNO"     PROGRAM could not be executed (nothing ran)
 *   "exited CODE"    PROGRAM exited
 *   "signaled SIG"   PROGRAM was killed by a signal
 * so the supervisor tells a missing program or a signal from an exit code, which bwrap's
 * own exit status cannot (it maps both to numbers). SIGTERM, SIGINT, SIGHUP, SIGQUIT,
 * SIGUSR1 and SIGUSR2 are forwarded to PROGRAM. The status fd is close-on-exec and the
 * helper is not dumpable, so PROGRAM cannot write to it.
 * Built without sanitizers (see guest/meson.build): a sanitizer runtime would print its
 * reports on the task's stderr, and LeakSanitizer cannot work in a jail anyway. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child_pid;

static void forward(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: orch-jail-exec STATUS_FD PROGRAM [ARGS...]\n");
		return 127;
	}
	char *end;
	long sfd = strtol(argv[1], &end, 10);
	if (*end || sfd < 3 || sfd > 1024 || fcntl((int)sfd, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "orch-jail-exec: bad status fd '%s'\n", argv[1]);
		return 127;
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		dprintf((int)sfd, "exec %d\n", errno);
		return 127;
	}
	struct sigaction sa = {.sa_handler = forward, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);

	pid_t pid = fork();
	if (pid < 0) {
		dprintf((int)sfd, "exec %d\n", errno);
		return 127;
	}
	if (pid == 0) {
		close(ep[0]);
		for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
			signal(forwarded[i], SIG_DFL);
		execvp(argv[2], argv + 2);
		int e = errno;
		ssize_t n = write(ep[1], &e, sizeof(e));
		(void)n;
		_exit(127);
	}
	child_pid = pid;
	close(ep[1]);

	int e = 0;
	ssize_t n;
	do
		n = read(ep[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(ep[0]);

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 127;
	if (n == (ssize_t)sizeof(e)) {
		/* Reported on the status fd only: the task's stdout and stderr carry nothing
		 * but what the task itself wrote. */
		dprintf((int)sfd, "exec %d\n", e);
		return 127;
	}
	if (WIFSIGNALED(status)) {
		dprintf((int)sfd, "signaled %d\n", WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	dprintf((int)sfd, "exited %d\n", WEXITSTATUS(status));
	return WEXITSTATUS(status);
}
