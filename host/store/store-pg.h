/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL store (docs/FLEET.md): what its files share, and the cluster operations
 * only it has (nodes, their leases, the VMs of every node), which orchd's fleet glue
 * (store/orchd-fleet.c) calls when store_shared() is true. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "pg-conn.h"
#include "store-config.h"
#include "store-ops.h"

/* Statement numbers (pg_run prepares each once per connection). */
enum {
	PGS_TASK_INSERT = 0,
	PGS_TASK_GET,
	PGS_TASK_NEXT,
	PGS_TASK_LEASE,
	PGS_TASK_LEASE_NEXT,
	PGS_TASK_RUNNING,
	PGS_TASK_FINISH,
	PGS_TASK_LOST,
	PGS_TASK_UNLEASE,
	PGS_TASK_SPEND,
	PGS_TASK_CANCEL,
	PGS_TASKS_ACTIVE,
	PGS_TASK_LIST,
	PGS_TASK_COUNTS,
	PGS_TASK_PRUNE,
	PGS_VM_UPDATE,
	PGS_VM_CID,
	PGS_OUTPUT_ADD,
	PGS_OUTPUT_LIST,
	PGS_NODE_REGISTER,
	PGS_NODE_HEARTBEAT,
	PGS_NODE_DEAD,
	PGS_NODE_REQUEUE,
	PGS_NODE_LEAVE,
	PGS_NODES,
	PGS_VM_FIND,
	PGS_LLM_GET,
	PGS_LLM_SET,
	PGS_LLM_RESET,
	PGS_LLM_LIST,
	PGS_LLM_DROP,
	PGS_LLM_ENSURE,
	PGS_LLM_LOCK,
	PGS_LLM_ADJUST,
	PGS_LLM_RESERVE,
	PGS_LLM_LOAD,
	PGS_LLM_DELETE,
	PGS_LLM_SPEND,
	PGS_LLM_STALE,
	PGS_LLM_TOTALS,
	PGS_NODE_STALE,
	_PGS_MAX,
};

struct store_pg {
	struct store base;
	struct pg_conn conn;
	char node[STORE_NODE_MAX + 1];
	int64_t incarnation; /* this run's, from store_node_register */
	int64_t node_lease_ms;
};

static inline struct store_pg *store_pg(struct store *s)
{
	return (struct store_pg *)s;
}

extern const struct store_ops store_pg_ops;

/* Runs fn inside BEGIN/COMMIT (ROLLBACK when it fails; a broken connection is reported as
 * -ENOTCONN and the transaction is gone with it). */
int pg_transaction(struct pg_conn *pc, int (*fn)(void *data), void *data, struct orch_error *err);
/* The task columns every task query returns, and their row. */
extern const char pg_task_columns[];
struct task_row *pg_task_row(const PGresult *res, int row);

/* store-pg-task.c */
int pg_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		   struct orch_error *err);
size_t pg_task_insert_many(struct store *s, struct task_insert *t, size_t n);
int pg_task_get(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err);
int pg_task_next(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
		 int64_t *ret_id, struct orch_error *err);
int pg_task_lease(struct store *s, int64_t id, const char *vm, int64_t slot,
		  struct orch_error *err);
int pg_task_lease_next(struct store *s, const char *class_name, const char *vm, int64_t slot,
		       const char *profiles_json, struct task_row **ret, struct orch_error *err);
int pg_task_running(struct store *s, int64_t id, int64_t attempt, struct orch_error *err);
int pg_task_finish(struct store *s, int64_t id, const struct task_result *res,
		   struct orch_error *err);
int pg_task_lost(struct store *s, int64_t id, int64_t attempt, const char *reason,
		 bool *ret_requeued, struct orch_error *err);
int pg_task_unlease(struct store *s, int64_t id, int64_t attempt, struct orch_error *err);
int pg_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
		      struct orch_error *err);
int pg_task_set_cancel(struct store *s, int64_t id, struct orch_error *err);
int pg_output_add(struct store *s, int64_t task, int64_t attempt, int64_t first_seq, int64_t offset,
		  const struct output_seg *rows, size_t n, const void *data,
		  struct orch_error *err);
int pg_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		   struct output_ref **ret, size_t *ret_n, struct orch_error *err);

/* store-pg-ledger.c */
int pg_llm_get(struct store *s, const char *scope, const char *id, struct llm_budget *ret,
	       struct orch_error *err);
int pg_llm_set_limit(struct store *s, const char *scope, const char *id, int64_t limit_micro,
		     int64_t limit_tokens, struct orch_error *err);
int pg_llm_reset_spend(struct store *s, const char *scope, const char *id, struct orch_error *err);
int pg_llm_foreach(struct store *s, const char *scope, store_budget_cb cb, void *data,
		   struct orch_error *err);
int pg_llm_drop(struct store *s, const char *scope, const char *id, struct orch_error *err);
int pg_llm_reserve(struct store *s, const struct llm_limits *defaults, const char *agent,
		   const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		   struct orch_error *err);
int pg_llm_settle(struct store *s, int64_t id, const char *model, const struct llm_usage *u,
		  int64_t micro, const char *outcome, struct orch_error *err);
int pg_llm_release(struct store *s, int64_t id, struct orch_error *err);
int pg_llm_settle_stale(struct store *s, struct orch_error *err);
int pg_llm_totals(struct store *s, store_llm_total_cb cb, void *data, struct orch_error *err);
/* Charges the reservations of a node declared dead at their worst case (inside the
 * reaper's transaction). */
int pg_llm_settle_node(struct store_pg *p, const char *node, struct orch_error *err);

/* ---- the cluster (store-pg-node.c) ---- */

/* Registers this node (state up, a new incarnation). token: this node's secret from its
 * state_dir; a name held by a live node with another token is refused (-EEXIST, naming
 * it). *ret_restart: the name was this node's before (its previous run's tasks are its
 * to reconcile). */
int store_node_register(struct store *s, const char *token, const char *socket, bool *ret_restart,
			struct orch_error *err);
/* Renews this node's lease. -ESTALE when it was taken away (another node declared this
 * one dead and re-queued its tasks): the caller drops what it runs and registers again. */
int store_node_heartbeat(struct store *s, struct orch_error *err);
/* Declares nodes whose lease expired dead, in one transaction each: their leased and
 * running tasks become lost (re-queued while retries are left, as for a VM that went
 * away), their LLM reservations are charged at the worst case. Returns how many nodes. */
int store_node_reap(struct store *s, struct orch_error *err);
/* A clean shutdown: state left (its tasks were settled by orchd before). */
int store_node_leave(struct store *s, struct orch_error *err);
/* [{name, state, incarnation, heartbeat_age_ms, started_at, socket, version,
 *   vms: [{name, backend, slots, state, busy}]}] of every node. */
int store_nodes_json(struct store *s, json_t **ret, struct orch_error *err);
/* The node and slots of a VM of any node; -ENOENT when no node has it. */
int store_vm_find(struct store *s, const char *vm, char **ret_node, int64_t *ret_slots,
		  struct orch_error *err);
