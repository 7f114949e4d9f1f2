/* SPDX-License-Identifier: Apache-2.0 */
/* orch-shell-init: runs inside an agent's jail (started by orch-jail-exec, whose child it
 * is) with a pty on stdin/stdout/stderr.
 *   orch-shell-init SHELL
 * Becomes the leader of a new session, takes the pty as its controlling terminal (so the
 * line discipline delivers ^C/^Z/^\ to the foreground job and the shell gets job
 * control) and executes SHELL -i. Needs nothing beyond libc. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] != '/') {
		fprintf(stderr, "usage: orch-shell-init /PATH/TO/SHELL\n");
		return 127;
	}
	if (!isatty(0)) {
		fprintf(stderr, "orch-shell-init: stdin is not a terminal\n");
		return 127;
	}
	if (setsid() < 0 && errno != EPERM) {
		fprintf(stderr, "orch-shell-init: setsid: %s\n", strerror(errno));
		return 127;
	}
	if (ioctl(0, TIOCSCTTY, 0) < 0) {
		fprintf(stderr, "orch-shell-init: cannot take the terminal: %s\n", strerror(errno));
		return 127;
	}
	char *const args[] = {argv[1], "-i", NULL};
	execv(argv[1], args);
	fprintf(stderr, "orch-shell-init: cannot execute %s: %s\n", argv[1], strerror(errno));
	return 127;
}
