/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's durable store: one SQLite database (WAL, foreign keys, busy timeout) with a
 * schema_version table and ordered migrations (store-schema.c). Every task state
 * transition is one transaction. Other host modules (the LLM ledger) add their tables by
 * appending a migration to the array in store-schema.c and use store_db(). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include <jansson.h>

#include "task-limits.h"
#include "error.h"

struct store;

enum task_state {
	TASK_QUEUED = 0,
	TASK_LEASED,
	TASK_RUNNING,
	TASK_SUCCEEDED,
	TASK_FAILED,
	TASK_TIMED_OUT,
	TASK_CANCELLED,
	TASK_LOST,
	_TASK_STATE_MAX,
};

const char *task_state_name(enum task_state s);
int task_state_from_name(const char *s); /* -EINVAL if unknown */
static inline bool task_state_final(enum task_state s)
{
	return s >= TASK_SUCCEEDED;
}

/* What a client submits. Strings are borrowed. */
struct task_spec {
	const char *const *argv; /* argc >= 1 */
	size_t argc;
	const char *const *env; /* "K=V" */
	size_t n_env;
	const char *cwd;     /* NULL: default */
	const char *vm;	     /* NULL: any VM */
	int64_t slot;	     /* -1: any slot */
	int64_t priority;    /* higher first */
	int64_t retries;     /* re-queues after "lost" */
	const char *profile; /* NULL: none */
	struct orchd_limits limits;
	const char *const *ro_paths; /* the profile's extra read-only paths */
	size_t n_ro_paths;
};

/* A task as stored. Owned strings; free with task_row_free. */
struct task_row {
	int64_t id;
	enum task_state state;
	int64_t priority;
	char *argv_json; /* JSON array of strings */
	char *env_json;	 /* JSON array of "K=V" */
	char *cwd;
	char *want_vm; /* NULL: any */
	int64_t want_slot;
	char *vm; /* where it was leased (NULL while queued) */
	int64_t slot;
	char *profile;
	struct orchd_limits limits;
	char *ro_paths_json; /* JSON array of absolute paths */
	int64_t retries_left, attempts, lost_count;
	bool cancel_requested;
	int64_t created_at, leased_at, started_at, finished_at; /* ms since the epoch; 0 unset */
	int64_t exit_code, signal, duration_ms;
	int64_t utime_ms, stime_ms, maxrss_kb;
	char *reason;
	double spend_usd;
	int64_t spend_tokens;
	int64_t output_seq, output_bytes; /* next spool seq, spool size */
};

void task_row_free(struct task_row *t);
/* The control API's JSON view of a task (docs/CONTROL.md). */
json_t *task_row_to_json(const struct task_row *t);

/* How a task ended (for store_task_finish). */
struct task_result {
	enum task_state state; /* SUCCEEDED..LOST */
	int64_t exit_code;     /* -1 when none */
	int64_t signal;
	int64_t duration_ms;
	int64_t utime_ms, stime_ms, maxrss_kb;
	const char *reason;
};

int store_open(const char *path, struct store **ret, struct orch_error *err);
void store_close(struct store *s);
sqlite3 *store_db(struct store *s);
int64_t store_now_ms(void);

/* Migrations applied in order; version = index + 1 (store-schema.c). */
extern const char *const store_migrations[];
extern const size_t store_n_migrations;
int store_schema_version(struct store *s);

int store_begin(struct store *s, struct orch_error *err);
int store_commit(struct store *s, struct orch_error *err);
void store_rollback(struct store *s);
int store_exec(struct store *s, const char *sql, struct orch_error *err);

/* --- tasks (store-task.c) --- */
int store_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		      struct orch_error *err);
/* -ENOENT when there is no such task. */
int store_task_get(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err);
/* The next queued task that may run on vm/slot (priority, then FIFO); 0 and *ret_id = 0
 * when there is none. profiles_json: NULL, or a JSON array of the profile names the VM
 * allows (tasks without a profile always may run). */
int store_task_next(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
		    int64_t *ret_id, struct orch_error *err);
/* queued -> leased on vm/slot; attempts += 1. -ESTALE when not queued any more. */
int store_task_lease(struct store *s, int64_t id, const char *vm, int64_t slot,
		     struct orch_error *err);
/* leased -> running. */
int store_task_running(struct store *s, int64_t id, struct orch_error *err);
/* leased|running -> a final state (queued too, for cancellation). -ESTALE when already
 * final. */
int store_task_finish(struct store *s, int64_t id, const struct task_result *res,
		      struct orch_error *err);
/* leased|running -> queued again (retries_left -= 1, lost_count += 1) when retries are
 * left, else -> lost. *ret_requeued tells which. */
int store_task_lost(struct store *s, int64_t id, const char *reason, bool *ret_requeued,
		    struct orch_error *err);
/* leased -> queued without using a retry (the run was never acknowledged). */
int store_task_unlease(struct store *s, int64_t id, struct orch_error *err);
/* Records a task's LLM spend (totals, from the LLM ledger). */
int store_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
			 struct orch_error *err);
int store_task_set_cancel(struct store *s, int64_t id, struct orch_error *err);
/* Ids of tasks in state leased or running (for reconciliation), malloc'd array. */
int store_tasks_active(struct store *s, int64_t **ret_ids, size_t *ret_n, struct orch_error *err);
/* JSON array of task objects, newest first; state < 0 for all. */
int store_task_list(struct store *s, int state, int64_t limit, json_t **ret,
		    struct orch_error *err);
/* Counts per state into counts[_TASK_STATE_MAX]. */
int store_task_counts(struct store *s, int64_t counts[], struct orch_error *err);

/* --- VMs and pruning (store-vm.c) --- */
int store_vm_update(struct store *s, const char *name, const char *backend, int64_t slots,
		    const char *state, const char *boot_id, struct orch_error *err);
/* For backends that allocate a vsock CID per VM and must keep it across restarts. */
int store_vm_set_cid(struct store *s, const char *name, int64_t cid, struct orch_error *err);

/* --- pools (store-pool.c) --- */
/* The next number of a pooled class's VMs (1, 2, ...; never the same twice). */
int store_pool_next_seq(struct store *s, const char *class_name, int64_t *ret,
			struct orch_error *err);
/* A pooled VM's row (state "down" until it starts), with its class. */
int store_pool_vm_add(struct store *s, const char *name, const char *class_name,
		      const char *backend, int64_t slots, struct orch_error *err);
/* Forgets a VM's row (a pooled VM that was retired). */
int store_vm_delete(struct store *s, const char *name, struct orch_error *err);
/* The names of the class's VMs the store knows (malloc'd array of malloc'd strings, in
 * the order they were made). */
int store_pool_vms(struct store *s, const char *class_name, char ***ret, size_t *ret_n,
		   struct orch_error *err);
/* Whether a task was ever leased to the VM. */
int store_vm_used(struct store *s, const char *name, bool *ret, struct orch_error *err);
/* Queued tasks that a VM of the class could take (its name or none asked for, a slot
 * below slots, a profile it allows). */
int store_pool_demand(struct store *s, const char *class_name, int64_t slots,
		      const char *profiles_json, int64_t *ret, struct orch_error *err);
/* Deletes all but the newest `keep` final tasks (and their output index rows); the ids
 * deleted are returned (malloc'd) so their spool files can be removed. keep <= 0: none. */
int store_task_prune(struct store *s, int64_t keep, int64_t **ret_ids, size_t *ret_n,
		     struct orch_error *err);

/* --- output spool index (store-task.c) --- */
int store_output_add(struct store *s, int64_t task, int64_t seq, int stream, int64_t offset,
		     int64_t length, struct orch_error *err);
/* One run of bytes of one stream. */
struct output_seg {
	int stream;
	int64_t len;
};
/* Indexes n consecutive runs of one attempt (seq first_seq.., the first at spool offset
 * `offset`) in one transaction, moves the task's output_seq past them and adds their bytes
 * to output_bytes (the bytes of the task's latest attempt: a lease sets it to 0). */
int store_output_add_rows(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
			  int64_t offset, const struct output_seg *rows, size_t n,
			  struct orch_error *err);
struct output_ref {
	int64_t seq;
	int stream;
	int64_t offset, length;
	int64_t attempt;
};
/* Entries with seq >= from_seq of one attempt (0: of all), at most max, in seq order. */
int store_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		      struct output_ref **ret, size_t *ret_n, struct orch_error *err);
