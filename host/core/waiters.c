/* SPDX-License-Identifier: Apache-2.0 */
/* Control clients waiting on tasks: task.wait (reply when the task is final) and
 * task.logs (replay the spool from a seq as task.output notifications, then follow
 * until the task is final). A client whose output queue is full is paused and resumed
 * from the same seq when it drains: nothing is lost or sent twice. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "orchd.h"

/* A control client waiting for a task to finish (task.wait) or following its output
 * (task.logs). */
struct waiter {
	struct waiter *prev, *next;
	enum waiter_kind kind;
	int64_t task;
	struct orch_rpc_req *req; /* reply when done */
	struct orch_rpc *rpc;	  /* the client (not referenced: dropped on close) */
	int64_t next_seq;
	int64_t attempt; /* WAITER_LOGS: this attempt's output; 0: the task's latest */
	bool all;	 /* WAITER_LOGS: every attempt's */
	bool follow;
	bool blocked; /* output queue full: resume on drain */
	bool dead;    /* its client closed: removed at the next safe point */
};

#define PUMP_BATCH 64

static void waiter_remove(struct orchd *d, struct waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		d->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	orch_rpc_req_unref(w->req);
	free(w);
}

static void reply_error(struct orchd *d, struct waiter *w, const struct orch_error *err)
{
	orch_rpc_reply_error(w->req, ORCH_RPC_INTERNAL_ERROR, err->msg, NULL);
	waiter_remove(d, w);
}

/* Sends what is spooled from w->next_seq; finishes the waiter when the task is final (or
 * right away without follow). Returns true when w was removed. */
static bool pump(struct orchd *d, struct waiter *w)
{
	struct orch_error err = {0};
	struct task_row *t = NULL;
	bool final;

	if (w->dead) {
		waiter_remove(d, w);
		return true;
	}
	if (w->blocked)
		return false;
	/* Read the state first: output spooled before a final state is complete. */
	if (store_task_get(d->store, w->task, &t, &err) < 0) {
		reply_error(d, w, &err);
		return true;
	}
	final = task_state_final(t->state);
	/* task.wait answers a repository task once its result is recorded too */
	bool settled = final && (w->kind != WAITER_WAIT || orchd_services_task_settled(d, w->task));
	if (w->kind == WAITER_LOGS) {
		for (;;) {
			_cleanup_free_ struct output_ref *refs = NULL;
			size_t n = 0;

			/* By default the latest attempt's output: a retried task's log is the
			 * attempt that finished (or runs), not the lost one's followed by it. */
			int64_t attempt = w->all ? 0 : w->attempt ? w->attempt : t->attempts;

			if (store_output_list(d->store, w->task, attempt, w->next_seq, PUMP_BATCH,
					      &refs, &n, &err) < 0) {
				task_row_free(t);
				reply_error(d, w, &err);
				return true;
			}
			for (size_t i = 0; i < n; i++) {
				_cleanup_free_ void *buf = NULL;
				_cleanup_free_ char *b64 = NULL;
				json_t *p;
				int r;

				if (spool_read(d, w->task, refs[i].offset, refs[i].length, &buf,
					       &err) < 0) {
					task_row_free(t);
					reply_error(d, w, &err);
					return true;
				}
				b64 = orch_b64_encode(buf, (size_t)refs[i].length);
				p = json_pack("{sIsIsIssss?}", "id", (json_int_t)w->task, "seq",
					      (json_int_t)refs[i].seq, "attempt",
					      (json_int_t)refs[i].attempt, "stream",
					      refs[i].stream == 2 ? "stderr" : "stdout", "data",
					      b64);
				r = p ? orch_rpc_notify(w->rpc, "task.output", p) : -ENOMEM;
				if (r == -ENOBUFS) {
					w->blocked = true;
					task_row_free(t);
					return false;
				}
				if (r < 0 || w->dead) { /* client gone (maybe closed just now) */
					task_row_free(t);
					waiter_remove(d, w);
					return true;
				}
				w->next_seq = refs[i].seq + 1;
			}
			if (n < PUMP_BATCH)
				break;
		}
	}
	if (settled || (w->kind == WAITER_LOGS && !w->follow)) {
		json_t *res = task_row_to_json(t);
		orchd_services_task_json(d, t->id, res, false);
		if (res)
			json_object_set_new(res, "next_seq", json_integer(w->next_seq));
		orch_rpc_reply(w->req, res);
		task_row_free(t);
		waiter_remove(d, w);
		return true;
	}
	task_row_free(t);
	return false;
}

int waiter_add(struct orchd *d, enum waiter_kind kind, int64_t task, int64_t from_seq, bool follow,
	       int64_t attempt, bool all, struct orch_rpc_req *req)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->kind = kind;
	w->task = task;
	w->next_seq = from_seq;
	w->attempt = attempt;
	w->all = all;
	w->follow = follow;
	w->req = orch_rpc_req_ref(req);
	w->rpc = orch_rpc_req_rpc(req);
	w->next = d->waiters;
	if (d->waiters)
		d->waiters->prev = w;
	d->waiters = w;
	pump(d, w);
	return 0;
}

void waiters_output(struct orchd *d, int64_t task)
{
	struct waiter *w, *next;

	for (w = d->waiters; w; w = next) {
		next = w->next;
		if (w->dead)
			waiter_remove(d, w);
		else if (w->task == task && w->kind == WAITER_LOGS)
			pump(d, w);
	}
}

void waiters_finished(struct orchd *d, int64_t task)
{
	struct waiter *w, *next;

	for (w = d->waiters; w; w = next) {
		next = w->next;
		if (w->dead)
			waiter_remove(d, w);
		else if (w->task == task)
			pump(d, w);
	}
}

void waiters_drain(struct orchd *d, struct orch_rpc *rpc)
{
	struct waiter *w, *next;

	for (w = d->waiters; w; w = next) {
		next = w->next;
		if (w->dead)
			waiter_remove(d, w);
		else if (w->rpc == rpc && w->blocked) {
			w->blocked = false;
			pump(d, w);
		}
	}
}

/* Called from the client's close callback, which may run inside pump() (a send that
 * fails closes the connection at once): only mark; pump and the loops below remove. */
void waiters_drop_client(struct orchd *d, struct orch_rpc *rpc)
{
	for (struct waiter *w = d->waiters; w; w = w->next)
		if (w->rpc == rpc) {
			w->dead = true;
			w->rpc = NULL;
		}
}

void waiters_free_all(struct orchd *d)
{
	while (d->waiters)
		waiter_remove(d, d->waiters);
}
