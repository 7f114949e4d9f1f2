/* SPDX-License-Identifier: Apache-2.0 */
/* One task in one slot: jail start, output streaming with bounded buffering and
 * backpressure (the agent's pipes are not read while the buffer is full), timeout, cancel
 * (SIGTERM, grace, kill of the whole tree), and exactly one task.exit. */
#pragma once

#include <jansson.h>

#include "error.h"
#include "jail.h"
#include "schema.h"
#include "spawn.h"
#include "supervisor.h"

/* Starts run in slot (which must be free). Once the task is accepted this returns 0 and
 * *ret_result holds the task.run reply; a jail that cannot be built is reported through
 * task.exit (status failed), not as an error here. */
/* Starts bwrap for a jail of slot's as every task's starts (tasks, and the warm-up of a
 * restored VM, which must take the same path: warm.h). The caller fills js's workspace,
 * argv, env, cwd and task read-only paths; the rest (bwrap, exec helper, slot, the
 * configured read-only paths, the deny list, seccomp, extras) is set here. lim: the
 * limits sv_cgroup_apply applied (only the cgroup v1 hierarchies holding one are joined);
 * nproc: RLIMIT_NPROC stands in for a pids controller. A cgroup that refused the jail's
 * children marks the slot's cgroup killed. */
int sv_jail_start(struct supervisor *sv, struct sv_slot *slot, struct sv_jail_spec *js,
		  const struct orch_limits *lim, bool nproc, struct sv_spawned *ret,
		  struct orch_error *err);
int sv_task_start(struct supervisor *sv, struct sv_slot *slot, const struct orch_task_run *run,
		  json_t **ret_result, struct orch_error *err);

struct sv_task *sv_task_find(struct supervisor *sv, const char *id);
const char *sv_task_id(const struct sv_task *t);

/* SIGTERM to the jailed processes, SIGKILL of the whole tree after grace_ms. */
void sv_task_cancel(struct sv_task *t, uint64_t grace_ms);

/* Sends buffered output while the channel takes it; resumes reading the agent. */
void sv_task_flush(struct sv_task *t);

/* Kills the tree and frees the task without sending anything (supervisor shutdown). */
void sv_task_destroy(struct sv_task *t);
