/* SPDX-License-Identifier: Apache-2.0 */
/* store.h's functions: each dispatches to the store's table of operations
 * (store-ops.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pg-conn.h"
#include "pg-schema.h"
#include "store-config.h"
#include "store-ops.h"

int store_open(const char *path, struct store **ret, struct orch_error *err)
{
	return store_sqlite_open(path, ret, err);
}

int store_open_config(const struct store_config *cfg, const char *state_dir, const char *node,
		      struct store **ret, struct orch_error *err)
{
	char *path = NULL;
	int r;

	if (cfg && cfg->kind == STORE_POSTGRESQL)
		return store_pg_open(cfg, node, ret, err);
	if (asprintf(&path, "%s/orch.db", state_dir) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	r = store_sqlite_open(path, ret, err);
	free(path);
	return r;
}

int store_check(const struct store_config *cfg, char *buf, size_t len, struct orch_error *err)
{
	struct pg_conn pc;
	int r, v;

	buf[0] = 0;
	if (!cfg || cfg->kind != STORE_POSTGRESQL)
		return 0;
	r = pg_conn_init(&pc, cfg, "orchd --check-config", err);
	if (r >= 0) {
		v = r = pg_schema_version(&pc, err);
		if (r >= 0 && (size_t)v > store_n_migrations)
			r = orch_err(err, -EPROTONOSUPPORT,
				     "store: the database's schema version %d is newer than this "
				     "orchd's (%zu)",
				     v, store_n_migrations);
		if (r >= 0)
			r = snprintf(buf, len, "postgresql reachable, schema version %d of %zu%s",
				     v, store_n_migrations,
				     (size_t)v < store_n_migrations ? " (migrated at start)" : "");
	}
	pg_conn_done(&pc);
	return r < 0 ? r : 0;
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

const char *store_kind_name(const struct store *s)
{
	return s->ops->name;
}

bool store_shared(const struct store *s)
{
	return s->node != NULL;
}

int store_schema_version(struct store *s)
{
	return s->ops->schema_version(s);
}

int store_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		      struct orch_error *err)
{
	return s->ops->task_insert(s, spec, ret_id, err);
}

size_t store_task_insert_many(struct store *s, struct task_insert *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		t[i].id = 0;
		orch_err_clear(&t[i].err);
	}
	return n ? s->ops->task_insert_many(s, t, n) : 0;
}

int store_task_get(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err)
{
	return s->ops->task_get(s, id, ret, err);
}

int store_task_next(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
		    int64_t *ret_id, struct orch_error *err)
{
	return s->ops->task_next(s, vm, slot, profiles_json, ret_id, err);
}

int store_task_lease(struct store *s, int64_t id, const char *vm, int64_t slot,
		     struct orch_error *err)
{
	return s->ops->task_lease(s, id, vm, slot, err);
}

int store_task_lease_next(struct store *s, const char *class_name, const char *vm, int64_t slot,
			  const char *profiles_json, struct task_row **ret, struct orch_error *err)
{
	return s->ops->task_lease_next(s, class_name, vm, slot, profiles_json, ret, err);
}

int store_task_running(struct store *s, int64_t id, struct orch_error *err)
{
	return s->ops->task_running(s, id, 0, err);
}

int store_task_running_attempt(struct store *s, int64_t id, int64_t attempt, struct orch_error *err)
{
	return s->ops->task_running(s, id, attempt, err);
}

int store_task_finish(struct store *s, int64_t id, const struct task_result *res,
		      struct orch_error *err)
{
	return s->ops->task_finish(s, id, res, err);
}

int store_task_lost(struct store *s, int64_t id, const char *reason, bool *ret_requeued,
		    struct orch_error *err)
{
	return s->ops->task_lost(s, id, 0, reason, ret_requeued, err);
}

int store_task_lost_attempt(struct store *s, int64_t id, int64_t attempt, const char *reason,
			    bool *ret_requeued, struct orch_error *err)
{
	return s->ops->task_lost(s, id, attempt, reason, ret_requeued, err);
}

int store_task_unlease(struct store *s, int64_t id, struct orch_error *err)
{
	return s->ops->task_unlease(s, id, 0, err);
}

int store_task_unlease_attempt(struct store *s, int64_t id, int64_t attempt, struct orch_error *err)
{
	return s->ops->task_unlease(s, id, attempt, err);
}

int store_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
			 struct orch_error *err)
{
	return s->ops->task_set_spend(s, id, usd, tokens, err);
}

int store_task_set_cancel(struct store *s, int64_t id, struct orch_error *err)
{
	return s->ops->task_set_cancel(s, id, err);
}

int store_tasks_active(struct store *s, int64_t **ret_ids, size_t *ret_n, struct orch_error *err)
{
	return s->ops->tasks_active(s, ret_ids, ret_n, err);
}

int store_task_list(struct store *s, int state, int64_t limit, json_t **ret, struct orch_error *err)
{
	return s->ops->task_list(s, state, limit, ret, err);
}

int store_task_counts(struct store *s, int64_t counts[], struct orch_error *err)
{
	return s->ops->task_counts(s, counts, err);
}

int store_task_prune(struct store *s, int64_t keep, int64_t **ret_ids, size_t *ret_n,
		     struct orch_error *err)
{
	return s->ops->task_prune(s, keep, ret_ids, ret_n, err);
}

int store_vm_update(struct store *s, const char *name, const char *backend, int64_t slots,
		    const char *state, const char *boot_id, struct orch_error *err)
{
	return s->ops->vm_update(s, name, backend, slots, state, boot_id, err);
}

int store_vm_set_cid(struct store *s, const char *name, int64_t cid, struct orch_error *err)
{
	return s->ops->vm_set_cid(s, name, cid, err);
}

int store_output_add_rows(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
			  int64_t offset, const struct output_seg *rows, size_t n,
			  struct orch_error *err)
{
	return s->ops->output_add(s, task, attempt, first_seq, offset, rows, n, NULL, err);
}

int store_output_add_data(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
			  const struct output_seg *rows, size_t n, const void *data,
			  struct orch_error *err)
{
	return s->ops->output_add(s, task, attempt, first_seq, 0, rows, n, data, err);
}

int store_output_add(struct store *s, int64_t task, int64_t seq, int stream, int64_t offset,
		     int64_t length, struct orch_error *err)
{
	struct output_seg row = {stream, length};

	return s->ops->output_add(s, task, 1, seq, offset, &row, 1, NULL, err);
}

int store_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		      struct output_ref **ret, size_t *ret_n, struct orch_error *err)
{
	return s->ops->output_list(s, task, attempt, from_seq, max, ret, ret_n, err);
}

int store_llm_get(struct store *s, const char *scope, const char *id, struct llm_budget *ret,
		  struct orch_error *err)
{
	return s->ops->llm_get(s, scope, id, ret, err);
}

int store_llm_set_limit(struct store *s, const char *scope, const char *id, int64_t limit_micro,
			int64_t limit_tokens, struct orch_error *err)
{
	return s->ops->llm_set_limit(s, scope, id, limit_micro, limit_tokens, err);
}

int store_llm_reset_spend(struct store *s, const char *scope, const char *id,
			  struct orch_error *err)
{
	return s->ops->llm_reset_spend(s, scope, id, err);
}

int store_llm_foreach(struct store *s, const char *scope, store_budget_cb cb, void *data,
		      struct orch_error *err)
{
	return s->ops->llm_foreach(s, scope, cb, data, err);
}

int store_llm_drop(struct store *s, const char *scope, const char *id, struct orch_error *err)
{
	return s->ops->llm_drop(s, scope, id, err);
}

int store_llm_reserve(struct store *s, const struct llm_limits *defaults, const char *agent,
		      const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		      struct orch_error *err)
{
	return s->ops->llm_reserve(s, defaults, agent, task, micro, tokens, ret_id, err);
}

int store_llm_settle(struct store *s, int64_t id, const char *model, const struct llm_usage *u,
		     int64_t micro, const char *outcome, struct orch_error *err)
{
	return s->ops->llm_settle(s, id, model, u, micro, outcome, err);
}

int store_llm_release(struct store *s, int64_t id, struct orch_error *err)
{
	return s->ops->llm_release(s, id, err);
}

int store_llm_settle_stale(struct store *s, struct orch_error *err)
{
	return s->ops->llm_settle_stale(s, err);
}

int store_llm_totals(struct store *s, store_llm_total_cb cb, void *data, struct orch_error *err)
{
	return s->ops->llm_totals(s, cb, data, err);
}
