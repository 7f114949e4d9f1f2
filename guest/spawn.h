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
	/* The kernel killed the child born into the cgroup (CLONE_INTO_CGROUP) before it
	 * ran; it was started again with a fork. The caller should set the cgroup's
	 * `killed` so that later spawns fork at once. */
	bool cgroup_refused;
};

int sv_spawn(const struct sv_spawn_spec *s, struct sv_spawned *ret, struct orch_error *err);

/* Sends sig to every process in the jail's pid namespace except its init (bwrap's child,
 * which takes the namespace down when it dies): the jail's processes and nothing else,
 * whatever their uid. monitor is bwrap (a child of the caller, not yet reaped). Returns
 * how many were signalled, or -errno (-ESRCH: no namespace found). */
int sv_signal_jail(pid_t monitor, int sig);
