/* SPDX-License-Identifier: Apache-2.0 */
/* The egress tables (egress-log.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "strv.h"
#include "config-util.h"
#include "egress-log.h"
#include "sqlite-util.h"

static int sql_err(sqlite3 *db, struct orch_error *err, const char *what)
{
	return sql_error(db, sqlite3_errcode(db), err, "egress %s", what);
}

int egress_log_insert(sqlite3 *db, const struct egress_log_row *r, struct orch_error *err)
{
	static const char sql[] =
		"INSERT INTO egress_log (ts, task, vm, slot, kind, host, port, verdict, reason,"
		" bytes_up, bytes_down, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return sql_err(db, err, "log");
	sqlite3_bind_int64(st, 1, r->ts_ms);
	if (r->task > 0)
		sqlite3_bind_int64(st, 2, r->task);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_text(st, 3, r->vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->slot);
	sqlite3_bind_text(st, 5, r->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, r->host, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r->port);
	sqlite3_bind_text(st, 8, r->allowed ? "allowed" : "denied", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->reason ? r->reason : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, r->bytes_up);
	sqlite3_bind_int64(st, 11, r->bytes_down);
	sqlite3_bind_int64(st, 12, r->duration_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, err, "log");
}

int egress_log_prune(sqlite3 *db, int64_t keep, struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "DELETE FROM egress_log WHERE id <= (SELECT MAX(id) FROM egress_log)"
			       " - ?",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_err(db, err, "log prune");
	sqlite3_bind_int64(st, 1, keep);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, err, "log prune");
}

int egress_log_query(sqlite3 *db, int64_t task, int64_t limit, json_t **ret, struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	int rc;

	if (!a)
		return orch_err(err, -ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(db,
			       "SELECT id, ts, task, vm, slot, kind, host, port, verdict, reason,"
			       " bytes_up, bytes_down, duration_ms FROM egress_log"
			       " WHERE (?1 = 0 OR task = ?1) ORDER BY id DESC LIMIT ?2",
			       -1, &st, NULL) != SQLITE_OK) {
		json_decref(a);
		return sql_err(db, err, "log query");
	}
	sqlite3_bind_int64(st, 1, task);
	sqlite3_bind_int64(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack("{sIsIsosssIsssssIsssssIsIsI}", "id",
				      (json_int_t)sqlite3_column_int64(st, 0), "ts",
				      (json_int_t)sqlite3_column_int64(st, 1), "task",
				      sqlite3_column_type(st, 2) == SQLITE_NULL
					      ? json_null()
					      : json_integer(sqlite3_column_int64(st, 2)),
				      "vm", (const char *)sqlite3_column_text(st, 3), "slot",
				      (json_int_t)sqlite3_column_int64(st, 4), "kind",
				      (const char *)sqlite3_column_text(st, 5), "host",
				      (const char *)sqlite3_column_text(st, 6), "port",
				      (json_int_t)sqlite3_column_int64(st, 7), "verdict",
				      (const char *)sqlite3_column_text(st, 8), "reason",
				      (const char *)sqlite3_column_text(st, 9), "bytes_up",
				      (json_int_t)sqlite3_column_int64(st, 10), "bytes_down",
				      (json_int_t)sqlite3_column_int64(st, 11), "duration_ms",
				      (json_int_t)sqlite3_column_int64(st, 12));
		if (!o || json_array_append_new(a, o) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_decref(a);
		return sql_err(db, err, "log query");
	}
	*ret = a;
	return 0;
}

json_t *egress_log_summary(sqlite3 *db, int64_t task)
{
	sqlite3_stmt *st = NULL;
	json_t *o = NULL, *hosts;

	if (sqlite3_prepare_v2(db,
			       "SELECT COUNT(*), SUM(verdict = 'allowed'), SUM(verdict = 'denied'),"
			       " SUM(bytes_up), SUM(bytes_down) FROM egress_log WHERE task = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, task);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0)
		o = json_pack("{sIsIsIsIsI}", "connections",
			      (json_int_t)sqlite3_column_int64(st, 0), "allowed",
			      (json_int_t)sqlite3_column_int64(st, 1), "denied",
			      (json_int_t)sqlite3_column_int64(st, 2), "bytes_up",
			      (json_int_t)sqlite3_column_int64(st, 3), "bytes_down",
			      (json_int_t)sqlite3_column_int64(st, 4));
	sqlite3_finalize(st);
	if (!o)
		return NULL;
	hosts = json_array();
	if (sqlite3_prepare_v2(db,
			       "SELECT host, port, verdict, COUNT(*) FROM egress_log WHERE task = ?"
			       " GROUP BY host, port, verdict ORDER BY COUNT(*) DESC LIMIT 20",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, task);
		while (sqlite3_step(st) == SQLITE_ROW)
			json_array_append_new(
				hosts,
				json_pack("{sssIsssI}", "host",
					  (const char *)sqlite3_column_text(st, 0), "port",
					  (json_int_t)sqlite3_column_int64(st, 1), "verdict",
					  (const char *)sqlite3_column_text(st, 2), "connections",
					  (json_int_t)sqlite3_column_int64(st, 3)));
		sqlite3_finalize(st);
	}
	json_object_set_new(o, "hosts", hosts ? hosts : json_array());
	return o;
}

int egress_task_sets_put(sqlite3 *db, int64_t task, char *const *sets, struct orch_error *err)
{
	_cleanup_json_ json_t *a = json_array();
	_cleanup_free_ char *s = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	for (size_t i = 0; a && sets && sets[i]; i++)
		json_array_append_new(a, json_string(sets[i]));
	if (!a || !(s = json_dumps(a, JSON_COMPACT)))
		return orch_err(err, -ENOMEM, "out of memory");
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO egress_tasks (task, sets) VALUES (?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_err(db, err, "task sets");
	sqlite3_bind_int64(st, 1, task);
	sqlite3_bind_text(st, 2, s, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_err(db, err, "task sets");
}

int egress_task_sets_get(sqlite3 *db, int64_t task, char ***ret, struct orch_error *err)
{
	sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *a = NULL;
	char **v;
	size_t i, n = 0;
	json_t *e;

	if (sqlite3_prepare_v2(db, "SELECT sets FROM egress_tasks WHERE task = ?", -1, &st, NULL) !=
	    SQLITE_OK)
		return sql_err(db, err, "task sets");
	sqlite3_bind_int64(st, 1, task);
	if (sqlite3_step(st) == SQLITE_ROW)
		a = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
	sqlite3_finalize(st);
	if (!(v = calloc(a && json_is_array(a) ? json_array_size(a) + 1 : 1, sizeof(*v))))
		return orch_err(err, -ENOMEM, "out of memory");
	if (a && json_is_array(a))
		json_array_foreach(a, i, e) if (json_is_string(e) &&
						(v[n] = strdup(json_string_value(e)))) n++;
	*ret = v;
	return 0;
}
