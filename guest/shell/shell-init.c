/* SPDX-License-Identifier: Apache-2.0 */
/* orch-shell-init: the first program of a debug shell's jail, in the place of
 * orch-jail-exec (bwrap runs it as pid 2 at /run/orch/exec, with the same arguments):
 *   orch-shell-init STATUS_FD SHELL
 * stdin/stdout/stderr are a pty. It makes the pty its controlling terminal (bwrap's
 * --new-session already made it a session leader), so the line discipline delivers
 * ^C/^Z/^\ to the foreground job and the shell gets job control, then executes SHELL -i.
 * When that fails, "exec ERRNO" goes to STATUS_FD (close-on-exec, so the shell never
 * holds it). Needs nothing beyond libc. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3 || argv[2][0] != '/') {
		fprintf(stderr, "usage: orch-shell-init STATUS_FD /PATH/TO/SHELL\n");
		return 127;
	}
	char *end;
	long sfd = strtol(argv[1], &end, 10);
	if (*end || sfd < 3 || sfd > 1024 || fcntl((int)sfd, F_SETFD, FD_CLOEXEC) < 0) {
		fprintf(stderr, "orch-shell-init: bad status fd '%s'\n", argv[1]);
		return 127;
	}
	if (!isatty(0)) {
		fprintf(stderr, "orch-shell-init: stdin is not a terminal\n");
		dprintf((int)sfd, "exec %d\n", ENOTTY);
		return 127;
	}
	/* Already a session leader under bwrap --new-session (EPERM); otherwise become one. */
	if (setsid() < 0 && errno != EPERM) {
		dprintf((int)sfd, "exec %d\n", errno);
		return 127;
	}
	if (ioctl(0, TIOCSCTTY, 0) < 0) {
		int e = errno;
		fprintf(stderr, "orch-shell-init: cannot take the terminal: %s\n", strerror(e));
		dprintf((int)sfd, "exec %d\n", e);
		return 127;
	}
	char *const args[] = {argv[2], "-i", NULL};
	execv(argv[2], args);
	int e = errno;
	fprintf(stderr, "orch-shell-init: cannot execute %s: %s\n", argv[2], strerror(e));
	dprintf((int)sfd, "exec %d\n", e);
	return 127;
}
