/* SPDX-License-Identifier: Apache-2.0 */
/* Control clients waiting for a task to finish (task.wait) or following its output
 * (task.logs), woken by the core when either changes (waiters.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"

struct orchd;

enum waiter_kind { WAITER_WAIT, WAITER_LOGS };

/* Replays from from_seq and, with follow, keeps following. attempt: WAITER_LOGS replays
 * this attempt's output (0: the task's latest); all: every attempt's. The reply goes to
 * req when the task is final (or, without follow, once replayed). */
int waiter_add(struct orchd *d, enum waiter_kind kind, int64_t task, int64_t from_seq, bool follow,
	       int64_t attempt, bool all, struct orch_rpc_req *req);
void waiters_output(struct orchd *d, int64_t task);
void waiters_finished(struct orchd *d, int64_t task);
/* A client closed: its waiters go (at the next safe point). */
void waiters_drop_client(struct orchd *d, struct orch_rpc *rpc);
/* A client's output queue drained: blocked waiters resume. */
void waiters_drain(struct orchd *d, struct orch_rpc *rpc);
void waiters_free_all(struct orchd *d);
