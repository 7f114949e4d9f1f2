/* SPDX-License-Identifier: Apache-2.0 */
/* The store's implementations behind one table of operations (docs/FLEET.md, "The store
 * interface"), as VM backends are behind struct orchd_backend_ops: store.h's functions
 * are thin dispatchers (store-api.c), SQLite (store.c, store-task.c, store-vm.c, the LLM
 * ledger of host/llm) is one table and PostgreSQL (store-pg*.c) the other, chosen by the
 * config's "store". Every operation keeps the contract store.h states for it; where the
 * two differ it is said there (the node of a cluster, output bytes kept in the store).
 *
 * Fencing: operations that change a task a slot runs take the attempt the slot holds (0:
 * any, for an operator's cancel); with PostgreSQL also this node's name. A message from an
 * attempt that is no longer the task's current one, or from a node whose lease was taken
 * away, changes nothing and gets -ESTALE. */
#pragma once

#include "store.h"

struct llm_usage;
struct llm_limits;
struct llm_budget;

struct store_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(struct store *s);
	int (*schema_version)(struct store *s);

	int (*task_insert)(struct store *s, const struct task_spec *spec, int64_t *ret_id,
			   struct orch_error *err);
	/* store.h's contract; both stores use store_insert_one_by_one for the fallback. */
	size_t (*task_insert_many)(struct store *s, struct task_insert *t, size_t n);
	int (*task_get)(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err);
	int (*task_next)(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
			 int64_t *ret_id, struct orch_error *err);
	int (*task_lease)(struct store *s, int64_t id, const char *vm, int64_t slot,
			  struct orch_error *err);
	int (*task_lease_next)(struct store *s, const char *class_name, const char *vm,
			       int64_t slot, const char *profiles_json, struct task_row **ret,
			       struct orch_error *err);
	int (*task_running)(struct store *s, int64_t id, int64_t attempt, struct orch_error *err);
	int (*task_finish)(struct store *s, int64_t id, const struct task_result *res,
			   struct orch_error *err);
	int (*task_lost)(struct store *s, int64_t id, int64_t attempt, const char *reason,
			 bool *ret_requeued, struct orch_error *err);
	int (*task_unlease)(struct store *s, int64_t id, int64_t attempt, struct orch_error *err);
	int (*task_set_spend)(struct store *s, int64_t id, double usd, int64_t tokens,
			      struct orch_error *err);
	int (*task_set_cancel)(struct store *s, int64_t id, struct orch_error *err);
	int (*tasks_active)(struct store *s, int64_t **ret_ids, size_t *ret_n,
			    struct orch_error *err);
	int (*task_list)(struct store *s, int state, int64_t limit, json_t **ret,
			 struct orch_error *err);
	int (*task_counts)(struct store *s, int64_t counts[], struct orch_error *err);
	int (*task_prune)(struct store *s, int64_t keep, int64_t **ret_ids, size_t *ret_n,
			  struct orch_error *err);

	int (*vm_update)(struct store *s, const char *name, const char *backend, int64_t slots,
			 const char *state, const char *boot_id, struct orch_error *err);
	int (*vm_set_cid)(struct store *s, const char *name, int64_t cid, struct orch_error *err);

	/* data: the n runs' bytes back to back (PostgreSQL keeps them); NULL with SQLite,
	 * whose bytes are in the spool at offset. */
	int (*output_add)(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
			  int64_t offset, const struct output_seg *rows, size_t n, const void *data,
			  struct orch_error *err);
	int (*output_list)(struct store *s, int64_t task, int64_t attempt, int64_t from_seq,
			   size_t max, struct output_ref **ret, size_t *ret_n,
			   struct orch_error *err);

	/* The LLM ledger (host/store/llm-ledger.h has the contract of each). */
	int (*llm_get)(struct store *s, const char *scope, const char *id, struct llm_budget *ret,
		       struct orch_error *err);
	int (*llm_set_limit)(struct store *s, const char *scope, const char *id,
			     int64_t limit_micro, int64_t limit_tokens, struct orch_error *err);
	int (*llm_reset_spend)(struct store *s, const char *scope, const char *id,
			       struct orch_error *err);
	int (*llm_foreach)(struct store *s, const char *scope, store_budget_cb cb, void *data,
			   struct orch_error *err);
	int (*llm_drop)(struct store *s, const char *scope, const char *id, struct orch_error *err);
	int (*llm_reserve)(struct store *s, const struct llm_limits *defaults, const char *agent,
			   const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
			   struct orch_error *err);
	int (*llm_settle)(struct store *s, int64_t id, const char *model, const struct llm_usage *u,
			  int64_t micro, const char *outcome, struct orch_error *err);
	int (*llm_release)(struct store *s, int64_t id, struct orch_error *err);
	int (*llm_settle_stale)(struct store *s, struct orch_error *err);
	int (*llm_totals)(struct store *s, store_llm_total_cb cb, void *data,
			  struct orch_error *err);
};

/* Shared by the implementations (store-task.c): a task's string lists and limits as the
 * JSON text both stores keep. */
char *store_strv_json(const char *const *v, size_t n);
char *store_limits_json(const struct orchd_limits *l);
void store_limits_parse(const char *text, struct orchd_limits *l);
/* The group commit's two outcomes besides success (store-task.c): each task inserted in a
 * transaction of its own (after the group's transaction was rolled back), or every task
 * failed with err (ids reset: nothing was committed). Both return how many are stored. */
size_t store_insert_one_by_one(struct store *s, struct task_insert *t, size_t n);
size_t store_insert_none(struct task_insert *t, size_t n, const struct orch_error *err);

/* The implementations' constructors (the config chooses, store_open_config calls). */
int store_sqlite_open(const char *path, struct store **ret, struct orch_error *err);
int store_pg_open(const struct store_config *cfg, const char *node, struct store **ret,
		  struct orch_error *err);
