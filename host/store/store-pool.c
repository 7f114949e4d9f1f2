/* SPDX-License-Identifier: Apache-2.0 */
/* The store's part of pools (host/pool/): the numbers of a class's VMs, their rows in the
 * vms table, whether a VM ever ran a task, and how many queued tasks a class could take. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sqlite-util.h"
#include "store.h"

int store_pool_next_seq(struct store *s, const char *class_name, int64_t *ret,
			struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (sql_prepare(store_db(s),
			"INSERT INTO pool_seq (class, next) VALUES (?1, 1) ON CONFLICT (class)"
			" DO UPDATE SET next = next + 1 RETURNING next",
			&st, err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, class_name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW)
		return sql_error(store_db(s), r, err, "store: pool number");
	*ret = sqlite3_column_int64(st, 0);
	return 0;
}

int store_pool_vm_add(struct store *s, const char *name, const char *class_name,
		      const char *backend, int64_t slots, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sql_prepare(store_db(s),
			"INSERT INTO vms (name, backend, slots, state, class, updated_at)"
			" VALUES (?1, ?2, ?3, 'down', ?4, ?5) ON CONFLICT (name) DO UPDATE SET"
			" backend = ?2, slots = ?3, class = ?4, updated_at = ?5",
			&st, err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, backend, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, slots);
	sqlite3_bind_text(st, 4, class_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, store_now_ms());
	return sql_step_done(store_db(s), st, "store: pool vm", err);
}

int store_vm_delete(struct store *s, const char *name, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sql_prepare(store_db(s), "DELETE FROM vms WHERE name = ?1", &st, err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return sql_step_done(store_db(s), st, "store: vm delete", err);
}

int store_pool_vms(struct store *s, const char *class_name, char ***ret, size_t *ret_n,
		   struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	char **v = NULL;
	size_t n = 0;
	int r;

	if (sql_prepare(store_db(s), "SELECT name FROM vms WHERE class = ?1 ORDER BY rowid", &st,
			err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, class_name, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		char **p = realloc(v, (n + 1) * sizeof(*v));
		if (p)
			v = p;
		if (!p || !(v[n] = strdup((const char *)sqlite3_column_text(st, 0)))) {
			r = SQLITE_NOMEM;
			break;
		}
		n++;
	}
	if (r != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r == SQLITE_NOMEM ? orch_err(err, -ENOMEM, "out of memory")
					 : sql_error(store_db(s), r, err, "store: pool vms");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int store_vm_used(struct store *s, const char *name, bool *ret, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (sql_prepare(store_db(s), "SELECT EXISTS (SELECT 1 FROM tasks WHERE vm = ?1)", &st,
			err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW)
		return sql_error(store_db(s), r, err, "store: vm used");
	*ret = sqlite3_column_int64(st, 0) != 0;
	return 0;
}

int store_pool_demand(struct store *s, const char *class_name, int64_t slots,
		      const char *profiles_json, int64_t *ret, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (sql_prepare(store_db(s),
			"SELECT COUNT(*) FROM tasks WHERE state = 'queued'"
			" AND (want_vm IS NULL OR want_vm = ?1)"
			" AND (want_slot IS NULL OR want_slot < ?2)"
			" AND (profile IS NULL OR ?3 IS NULL OR profile IN (SELECT value FROM "
			"json_each(?3)))",
			&st, err) < 0)
		return orch_err_prefix(err, "store");
	sqlite3_bind_text(st, 1, class_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, slots);
	if (profiles_json)
		sqlite3_bind_text(st, 3, profiles_json, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW)
		return sql_error(store_db(s), r, err, "store: pool demand");
	*ret = sqlite3_column_int64(st, 0);
	return 0;
}
