/* SPDX-License-Identifier: Apache-2.0 */
/* The bubblewrap command line for one task, and the agent's workspace directory. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Fixed descriptor numbers in the child that execs bwrap. */
#define SV_JAIL_FD_SECCOMP 3
#define SV_JAIL_FD_STATUS 4

/* Where the exec helper appears inside the jail. */
#define SV_JAIL_HELPER_PATH "/run/orch/exec"

struct sv_jail_spec {
	const char *bwrap;
	const char *exec_helper; /* host path */
	unsigned slot;
	const char *workspace; /* host path of <root>/agent-N */
	char *const *ro_paths; /* the supervisor's configured list */
	size_t n_ro_paths;
	/* The task's own (task.run ro_paths, normalised): bound where they exist, at the same
	 * place, with the source resolved (realpath); refused with an error when the place
	 * overlaps the jail's own mounts (/proc, /sys, /dev, /tmp itself, /workspace,
	 * /run/orch) or the source overlaps /proc, /sys, /dev or a path in deny ("overlap":
	 * the same, below or above). */
	const char *const *task_ro_paths;
	size_t n_task_ro_paths;
	const char *const *deny; /* NULL-terminated; NULL: none (the supervisor: its
				  * workspace root and its debug shells' socket directory) */
	bool seccomp;
	const char *cwd;	 /* NULL: /workspace */
	const char *const *argv; /* the task's command, NULL-terminated */
	const char *const *env;	 /* "K=V": the jail's whole environment (--clearenv, --setenv);
				  * NULL: bwrap's own environment is passed on */
	/* Files the supervisor provides (the egress CA): source, destination pairs,
	 * NULL-terminated, bound read-only after /tmp and before the workspace; NULL: none. */
	const char *const *extra_ro_binds;
};

/* Builds the NULL-terminated argv for execve(bwrap). Free with sv_strv_free. */
int sv_jail_argv(const struct sv_jail_spec *s, char ***ret, struct orch_error *err);

/* Creates <root>/agent-N if missing, makes it a directory (not a symlink) owned by uid:gid
 * with mode 0700. Returns the path in *ret. */
int sv_workspace_prepare(const char *root, unsigned slot, uid_t uid, gid_t gid, char **ret,
			 struct orch_error *err);
/* The task's own workspace <root>/<name>, prepared by the host (task.run "workspace"):
 * it must exist and be a directory (not a symlink); it is given to uid:gid with mode
 * 0700. Returns the path in *ret. */
int sv_task_workspace(const char *root, const char *name, uid_t uid, gid_t gid, char **ret,
		      struct orch_error *err);
