/* SPDX-License-Identifier: Apache-2.0 */
/* Starts one jailed task: fork; in the child (still root) join the agent's cgroup and
 * network namespace, set rlimits, drop to the agent's uid, set no_new_privs, exec bwrap.
 * The parent learns whether the exec of bwrap happened through a close-on-exec pipe. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "schema.h"
#include "jail-seccomp.h"

struct sv_spawn_spec {
	char *const *bwrap_argv; /* from sv_jail_argv */
	char *const *envp;
	const struct sv_seccomp *seccomp; /* NULL: none (then argv has no --seccomp) */
	int netns_fd;			  /* < 0: stay in the supervisor's */
	const struct sv_cgroup *cgroup;	  /* NULL: none */
	uid_t uid;
	gid_t gid;
	struct orch_limits limits;
	bool nproc_rlimit;
};

struct sv_spawned {
	pid_t pid;  /* bwrap */
	int pidfd;  /* CLOEXEC */
	int out_fd; /* read ends, CLOEXEC|NONBLOCK */
	int err_fd;
	int status_fd; /* orch-jail-exec's status lines */
};

int sv_spawn(const struct sv_spawn_spec *s, struct sv_spawned *ret, struct orch_error *err);

/* Sends sig to every process of uid (from a child that switched to it: kill(-1)). Used as
 * the last sweep after the jail was killed; no process of an agent uid may survive. */
int sv_kill_uid(uid_t uid, int sig);

/* Sends sig to the processes of uid except except_pid and namespace inits (NSpid ending
 * in 1): the jailed tree without bwrap's own monitor, for a graceful SIGTERM. */
int sv_signal_jailed(uid_t uid, pid_t except_pid, int sig);
