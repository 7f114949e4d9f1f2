/* SPDX-License-Identifier: Apache-2.0 */
/* The vms table: the last known state of each VM (for `orch status` after a restart and
 * for backends that persist per-VM data such as a vsock CID), and pruning of old tasks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sqlite-util.h"
#include "store.h"

int store_vm_update(struct store *s, const char *name, const char *backend, int64_t slots,
		    const char *state, const char *boot_id, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sql_prepare(store_db(s),
			"INSERT INTO vms (name, backend, slots, state, boot_id, updated_at)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET"
			" backend = ?2, slots = ?3, state = ?4, boot_id = ?5, updated_at = ?6",
			&st, err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, backend, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, slots);
	sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
	if (boot_id)
		sqlite3_bind_text(st, 5, boot_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, store_now_ms());
	return sql_step_done(store_db(s), st, "store: vm", err);
}

int store_vm_set_cid(struct store *s, const char *name, int64_t cid, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sql_prepare(store_db(s), "UPDATE vms SET cid = ?2 WHERE name = ?1", &st, err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, cid);
	return sql_step_done(store_db(s), st, "store: vm cid", err);
}

int store_task_prune(struct store *s, int64_t keep, int64_t **ret_ids, size_t *ret_n,
		     struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ret_ids = NULL;
	*ret_n = 0;
	if (keep <= 0)
		return 0;
	if ((r = store_begin(s, err)) < 0)
		return r;
	if (sql_prepare(store_db(s),
			"DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state IN"
			" ('succeeded','failed','timed_out','cancelled','lost')"
			" ORDER BY id DESC LIMIT -1 OFFSET ?1) RETURNING id",
			&st, err) < 0) {
		store_rollback(s);
		return orch_err_prefix(err, "store");
	}
	sqlite3_bind_int64(st, 1, keep);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			int64_t *p = realloc(ids, (cap = cap ? cap * 2 : 64) * sizeof(*ids));
			if (!p)
				break;
			ids = p;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		free(ids);
		store_rollback(s);
		return sql_error(store_db(s), r, err, "store: prune");
	}
	if ((r = store_commit(s, err)) < 0) {
		free(ids);
		return r;
	}
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}
