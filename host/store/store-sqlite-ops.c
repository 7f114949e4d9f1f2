/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite store's table of operations: the task, VM and output functions of store.c,
 * store-task.c and store-vm.c, the LLM ledger of host/store/llm-ledger.c on the same
 * database, and what is composed of them (a lease of the next task, the ledger's totals). */
#include <errno.h>
#include <stdlib.h>

#include "cleanup.h"
#include "llm-ledger.h"
#include "store-sqlite.h"

static int lease_next(struct store *s, const char *class_name, const char *vm, int64_t slot,
		      const char *profiles_json, struct task_row **ret, struct orch_error *err)
{
	int64_t id = 0;
	int r;

	*ret = NULL;
	r = sqlite_task_next(s, class_name, slot, profiles_json, &id, err);
	if (r < 0 || id == 0)
		return r;
	r = sqlite_task_lease(s, id, vm, slot, err);
	if (r < 0)
		return r;
	return sqlite_task_get(s, id, ret, err);
}

static int llm_get(struct store *s, const char *scope, const char *id, struct llm_budget *ret,
		   struct orch_error *err)
{
	return llm_ledger_get(store_db(s), scope, id, ret, err);
}

static int llm_set_limit(struct store *s, const char *scope, const char *id, int64_t limit_micro,
			 int64_t limit_tokens, struct orch_error *err)
{
	return llm_ledger_set_limit(store_db(s), scope, id, limit_micro, limit_tokens, err);
}

static int llm_reset_spend(struct store *s, const char *scope, const char *id,
			   struct orch_error *err)
{
	return llm_ledger_reset_spend(store_db(s), scope, id, err);
}

static int llm_foreach(struct store *s, const char *scope, store_budget_cb cb, void *data,
		       struct orch_error *err)
{
	return llm_ledger_foreach(store_db(s), scope, cb, data, err);
}

static int llm_drop(struct store *s, const char *scope, const char *id, struct orch_error *err)
{
	return llm_ledger_drop(store_db(s), scope, id, err);
}

static int llm_reserve(struct store *s, const struct llm_limits *defaults, const char *agent,
		       const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		       struct orch_error *err)
{
	return llm_ledger_reserve(store_db(s), defaults, agent, task, micro, tokens, ret_id, err);
}

static int llm_settle(struct store *s, int64_t id, const char *model, const struct llm_usage *u,
		      int64_t micro, const char *outcome, struct orch_error *err)
{
	return llm_ledger_settle(store_db(s), id, model, u, micro, outcome, err);
}

static int llm_release(struct store *s, int64_t id, struct orch_error *err)
{
	return llm_ledger_release(store_db(s), id, err);
}

static int llm_settle_stale(struct store *s, struct orch_error *err)
{
	return llm_ledger_settle_stale(store_db(s), err);
}

static int llm_totals(struct store *s, store_llm_total_cb cb, void *data, struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	/* no ledger yet (no LLM configured): nothing was spent */
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT model, COUNT(*), SUM(input_tokens), SUM(output_tokens),"
			       " SUM(cache_write_tokens), SUM(cache_read_tokens), SUM(micro)"
			       " FROM llm_spend GROUP BY model ORDER BY model",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_llm_total t = {
			.model = (const char *)sqlite3_column_text(st, 0),
			.requests = sqlite3_column_int64(st, 1),
			.input = sqlite3_column_int64(st, 2),
			.output = sqlite3_column_int64(st, 3),
			.cache_write = sqlite3_column_int64(st, 4),
			.cache_read = sqlite3_column_int64(st, 5),
			.micro = sqlite3_column_int64(st, 6),
		};
		r = cb(&t, data);
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	sqlite3_finalize(st);
	return r;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.close = sqlite_close,
	.schema_version = sqlite_schema_version,
	.task_insert = sqlite_task_insert,
	.task_insert_many = sqlite_task_insert_many,
	.task_get = sqlite_task_get,
	.task_next = sqlite_task_next,
	.task_lease = sqlite_task_lease,
	.task_lease_next = lease_next,
	.task_running = sqlite_task_running,
	.task_finish = sqlite_task_finish,
	.task_lost = sqlite_task_lost,
	.task_unlease = sqlite_task_unlease,
	.task_set_spend = sqlite_task_set_spend,
	.task_set_cancel = sqlite_task_set_cancel,
	.tasks_active = sqlite_tasks_active,
	.task_list = sqlite_task_list,
	.task_counts = sqlite_task_counts,
	.task_prune = sqlite_task_prune,
	.vm_update = sqlite_vm_update,
	.vm_set_cid = sqlite_vm_set_cid,
	.output_add = sqlite_output_add,
	.output_list = sqlite_output_list,
	.llm_get = llm_get,
	.llm_set_limit = llm_set_limit,
	.llm_reset_spend = llm_reset_spend,
	.llm_foreach = llm_foreach,
	.llm_drop = llm_drop,
	.llm_reserve = llm_reserve,
	.llm_settle = llm_settle,
	.llm_release = llm_release,
	.llm_settle_stale = llm_settle_stale,
	.llm_totals = llm_totals,
};
