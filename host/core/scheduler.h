/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler: queued tasks are leased to free agent slots of ready VMs (scheduler.c). */
#pragma once

#include <stdint.h>

#include "error.h"

struct orchd;
struct vm;

void sched_kick(struct orchd *d); /* run the scheduler soon (coalesced) */
int sched_run(struct orchd *d);	  /* lease queued tasks to free slots now */
/* A task changed state (finished, lost, requeued): wake waiters and the scheduler. */
void orchd_task_changed(struct orchd *d, int64_t task);
/* For a lease whose task.run a service deferred (service.h task_leased): sends it, naming
 * the task's own workspace (NULL: agent-N), or ends the task cancelled when a cancel came
 * meanwhile. -ESTALE when the slot no longer holds task/attempt. */
int sched_send_run(struct vm *vm, int64_t slot, int64_t task, int64_t attempt,
		   const char *workspace, struct orch_error *err);
/* For a lease the backend deferred (backend.h task_leased): the lease goes on as
 * leasing does (a service may defer it further, else task.run); a task whose run cannot
 * be sent fails. Nothing when the slot no longer holds task/attempt. */
void sched_lease_ready(struct vm *vm, int64_t slot, int64_t task, int64_t attempt);
