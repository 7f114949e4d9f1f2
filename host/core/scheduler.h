/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler: queued tasks are leased to free agent slots of ready VMs (scheduler.c). */
#pragma once

#include <stdint.h>

struct orchd;

void sched_kick(struct orchd *d); /* run the scheduler soon (coalesced) */
int sched_run(struct orchd *d);	  /* lease queued tasks to free slots now */
/* A task changed state (finished, lost, requeued): wake waiters and the scheduler. */
void orchd_task_changed(struct orchd *d, int64_t task);
