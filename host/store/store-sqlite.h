/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite implementation of the store (store.c, store-task.c, store-vm.c,
 * store/store-sqlite-ops.c): what its files share. Callers use store.h. */
#pragma once

#include "store-ops.h"

extern const struct store_ops store_sqlite_ops;

void sqlite_close(struct store *s);
int sqlite_schema_version(struct store *s);
int sqlite_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		       struct orch_error *err);
size_t sqlite_task_insert_many(struct store *s, struct task_insert *t, size_t n);
int sqlite_task_get(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err);
int sqlite_task_next(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
		     int64_t *ret_id, struct orch_error *err);
int sqlite_task_lease(struct store *s, int64_t id, const char *vm, int64_t slot,
		      struct orch_error *err);
int sqlite_task_running(struct store *s, int64_t id, int64_t attempt, struct orch_error *err);
int sqlite_task_finish(struct store *s, int64_t id, const struct task_result *res,
		       struct orch_error *err);
int sqlite_task_lost(struct store *s, int64_t id, int64_t attempt, const char *reason,
		     bool *ret_requeued, struct orch_error *err);
int sqlite_task_unlease(struct store *s, int64_t id, int64_t attempt, struct orch_error *err);
int sqlite_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
			  struct orch_error *err);
int sqlite_task_set_cancel(struct store *s, int64_t id, struct orch_error *err);
int sqlite_tasks_active(struct store *s, int64_t **ret_ids, size_t *ret_n, struct orch_error *err);
int sqlite_task_list(struct store *s, int state, int64_t limit, json_t **ret,
		     struct orch_error *err);
int sqlite_task_counts(struct store *s, int64_t counts[], struct orch_error *err);
int sqlite_task_prune(struct store *s, int64_t keep, int64_t **ret_ids, size_t *ret_n,
		      struct orch_error *err);
int sqlite_vm_update(struct store *s, const char *name, const char *backend, int64_t slots,
		     const char *state, const char *boot_id, struct orch_error *err);
int sqlite_vm_set_cid(struct store *s, const char *name, int64_t cid, struct orch_error *err);
int sqlite_output_add(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
		      int64_t offset, const struct output_seg *rows, size_t n, const void *data,
		      struct orch_error *err);
int sqlite_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		       struct output_ref **ret, size_t *ret_n, struct orch_error *err);
