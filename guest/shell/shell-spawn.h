/* SPDX-License-Identifier: Apache-2.0 */
/* A PTY pair and a jailed shell on its slave side (internal to guest/shell/). */
#pragma once

#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "error.h"
#include "shell.h"

struct sv_shell_pty {
	int master; /* CLOEXEC|NONBLOCK */
	int slave;  /* CLOEXEC, O_NOCTTY */
};

/* Opens a pty pair; the slave is given to uid:gid (mode 0620), as login does. */
int sv_shell_pty_open(uid_t uid, gid_t gid, struct sv_shell_pty *ret, struct orch_error *err);

struct sv_shell_child {
	pid_t pid;     /* bwrap */
	int pidfd;     /* CLOEXEC */
	int status_fd; /* orch-shell-init's "exec ERRNO" line on failure, CLOEXEC|NONBLOCK */
};

/* Starts bwrap for the slot's jail with the pty slave as stdin/stdout/stderr, running
 * orch-shell-init (in orch-jail-exec's place) -> the shell. */
int sv_shell_spawn(const struct sv_shell_jail *j, unsigned slot, int pty_slave,
		   struct sv_shell_child *ret, struct orch_error *err);
