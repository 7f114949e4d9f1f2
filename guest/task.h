/* SPDX-License-Identifier: Apache-2.0 */
/* One task in one slot: jail start, output streaming with bounded buffering and
 * backpressure (the agent's pipes are not read while the buffer is full), timeout, cancel
 * (SIGTERM, grace, kill of the whole tree), and exactly one task.exit. */
#pragma once

#include <jansson.h>

#include "error.h"
#include "schema.h"
#include "supervisor.h"

/* Starts run in slot (which must be free). Once the task is accepted this returns 0 and
 * *ret_result holds the task.run reply; a jail that cannot be built is reported through
 * task.exit (status failed), not as an error here. */
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
