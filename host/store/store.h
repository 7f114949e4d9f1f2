/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's durable store, behind one interface (store/store-ops.h) with two
 * implementations: one SQLite database in state_dir (WAL, foreign keys, busy timeout; the
 * default) with a schema_version table and ordered migrations (store-schema.c), or a
 * PostgreSQL database that several orchd nodes share (store/store-pg*.c,
 * docs/FLEET.md). Every task state transition is one transaction. The functions below
 * dispatch to the configured implementation (store/store-api.c); store_db() is the SQLite
 * database for modules that keep tables of their own there (the egress log), NULL with
 * PostgreSQL. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>
#include <jansson.h>

#include "task-limits.h"
#include "error.h"

struct store;
struct store_ops;
struct store_config;
struct llm_usage;
struct llm_limits;
struct llm_budget;

/* The common head of every implementation's store. */
struct store {
	const struct store_ops *ops;
	const char *node; /* PostgreSQL: this orchd's node name; SQLite: NULL */
};

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
	int64_t attempt; /* the attempt that ended; 0: whichever is current (a cancel) */
};

/* The SQLite store at path. */
int store_open(const char *path, struct store **ret, struct orch_error *err);
/* The store the config names: SQLite at <state_dir>/orch.db, or PostgreSQL as node `node`
 * (registration and leases are orchd's, store/pg-node.c). */
int store_open_config(const struct store_config *cfg, const char *state_dir, const char *node,
		      struct store **ret, struct orch_error *err);
void store_close(struct store *s);
/* orchd --check-config: with PostgreSQL connects (password file included) and reads the
 * schema version, describing it in buf ("" for SQLite, which is checked when orchd opens
 * it); -EPROTONOSUPPORT when the database is newer than this orchd. Changes nothing. */
int store_check(const struct store_config *cfg, char *buf, size_t len, struct orch_error *err);
/* "sqlite" or "postgresql". */
const char *store_kind_name(const struct store *s);
/* True when several orchds share the store (PostgreSQL): output bytes live in the store,
 * other nodes' tasks are in it, and wake-ups come from store/pg-listen.c. */
bool store_shared(const struct store *s);
sqlite3 *store_db(struct store *s); /* NULL unless SQLite */
int64_t store_now_ms(void);

/* One migration of the database's schema, the same version in both stores: the statements
 * that bring a SQLite database and a PostgreSQL one from version index to index + 1
 * (store-schema.c; NULL: nothing to do in that store at that version). */
struct store_migration {
	const char *sqlite;
	const char *postgresql;
};
/* The one list, applied in order by either store; version = index + 1. */
extern const struct store_migration store_migrations[];
extern const size_t store_n_migrations;
int store_schema_version(struct store *s);

int store_begin(struct store *s, struct orch_error *err);
int store_commit(struct store *s, struct orch_error *err);
void store_rollback(struct store *s);
int store_exec(struct store *s, const char *sql, struct orch_error *err);

/* --- tasks (store-task.c) --- */
int store_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		      struct orch_error *err);
/* One submission of a group commit (store_task_insert_many). */
struct task_insert {
	const struct task_spec *spec; /* in */
	int64_t id;		      /* out: the task's id once committed, else 0 */
	struct orch_error err;	      /* out: why it was not stored (id == 0) */
};
/* Group commit: inserts n tasks in ONE transaction, so that n submissions cost one commit
 * (one flush of the disk) instead of n. When the insert of one task fails, the
 * transaction is rolled back and each task is then inserted in a transaction of its own:
 * that task fails alone, the others are stored. When BEGIN or COMMIT fails, none of them
 * is stored and each has that error. Afterwards every t[i] has either an id (committed)
 * or err; returns how many were stored. */
size_t store_task_insert_many(struct store *s, struct task_insert *t, size_t n);
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
/* store_task_next and store_task_lease in one: the next task for class (the VM's name, or
 * a pooled VM's class) leased to vm (*ret, its new attempt in ->attempts), or 0 and
 * *ret = NULL when none may run there. With PostgreSQL one statement (FOR UPDATE SKIP
 * LOCKED: nodes leasing at once take different tasks). */
int store_task_lease_next(struct store *s, const char *class_name, const char *vm, int64_t slot,
			  const char *profiles_json, struct task_row **ret, struct orch_error *err);
/* leased -> running. */
int store_task_running(struct store *s, int64_t id, struct orch_error *err);
/* The same for one attempt (the slot's): -ESTALE when it is not the current one. */
int store_task_running_attempt(struct store *s, int64_t id, int64_t attempt,
			       struct orch_error *err);
/* leased|running -> a final state (queued too, for cancellation). -ESTALE when already
 * final. */
int store_task_finish(struct store *s, int64_t id, const struct task_result *res,
		      struct orch_error *err);
/* leased|running -> queued again (retries_left -= 1, lost_count += 1) when retries are
 * left, else -> lost. *ret_requeued tells which. */
int store_task_lost(struct store *s, int64_t id, const char *reason, bool *ret_requeued,
		    struct orch_error *err);
int store_task_lost_attempt(struct store *s, int64_t id, int64_t attempt, const char *reason,
			    bool *ret_requeued, struct orch_error *err);
/* leased -> queued without using a retry (the run was never acknowledged). */
int store_task_unlease(struct store *s, int64_t id, struct orch_error *err);
int store_task_unlease_attempt(struct store *s, int64_t id, int64_t attempt,
			       struct orch_error *err);
/* Records a task's LLM spend (totals, from the LLM ledger). */
int store_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
			 struct orch_error *err);
int store_task_set_cancel(struct store *s, int64_t id, struct orch_error *err);
/* Ids of tasks in state leased or running (for reconciliation), malloc'd array; with
 * PostgreSQL those leased by this node. */
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
/* The same with the runs' bytes (back to back), for a store that keeps them
 * (store_shared): with PostgreSQL only while this node holds the attempt (-ESTALE). */
int store_output_add_data(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
			  const struct output_seg *rows, size_t n, const void *data,
			  struct orch_error *err);
struct output_ref {
	int64_t seq;
	int stream;
	int64_t offset, length;
	int64_t attempt;
	const void *data; /* the bytes when the store keeps them (in the same allocation as
			   * the array: one free), NULL: in the spool at offset */
};
/* Entries with seq >= from_seq of one attempt (0: of all), at most max, in seq order. */
int store_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		      struct output_ref **ret, size_t *ret_n, struct orch_error *err);

/* --- the LLM ledger (host/store/llm-ledger.h states each contract) --- */
typedef int (*store_budget_cb)(const char *scope, const char *id, const struct llm_budget *b,
			       void *data);
int store_llm_get(struct store *s, const char *scope, const char *id, struct llm_budget *ret,
		  struct orch_error *err);
int store_llm_set_limit(struct store *s, const char *scope, const char *id, int64_t limit_micro,
			int64_t limit_tokens, struct orch_error *err);
int store_llm_reset_spend(struct store *s, const char *scope, const char *id,
			  struct orch_error *err);
int store_llm_foreach(struct store *s, const char *scope, store_budget_cb cb, void *data,
		      struct orch_error *err);
int store_llm_drop(struct store *s, const char *scope, const char *id, struct orch_error *err);
/* With PostgreSQL one transaction with the budgets' rows locked: nodes reserving against
 * one budget at once never overshoot it together. */
int store_llm_reserve(struct store *s, const struct llm_limits *defaults, const char *agent,
		      const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		      struct orch_error *err);
int store_llm_settle(struct store *s, int64_t id, const char *model, const struct llm_usage *u,
		     int64_t micro, const char *outcome, struct orch_error *err);
int store_llm_release(struct store *s, int64_t id, struct orch_error *err);
/* Reservations left by this orchd's previous run (with PostgreSQL: this node's) are
 * charged at their worst case. Returns how many. */
int store_llm_settle_stale(struct store *s, struct orch_error *err);
/* Spend recorded by this orchd (with PostgreSQL: this node), per model. */
struct store_llm_total {
	const char *model;
	int64_t requests;
	int64_t input, output, cache_write, cache_read; /* tokens */
	int64_t micro;
};
typedef int (*store_llm_total_cb)(const struct store_llm_total *t, void *data);
int store_llm_totals(struct store *s, store_llm_total_cb cb, void *data, struct orch_error *err);
