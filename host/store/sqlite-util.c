/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "sqlite-util.h"

int sql_error(sqlite3 *db, int rc, struct orch_error *err, const char *fmt, ...)
{
	int code = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? -EBUSY
		   : (rc & 0xff) == SQLITE_NOMEM			      ? -ENOMEM
									      : -EIO;
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return orch_err(err, code, "%s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int sql_exec(sqlite3 *db, const char *sql, struct orch_error *err)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc == SQLITE_OK)
		return 0;
	int r = orch_err(err, (rc & 0xff) == SQLITE_BUSY ? -EBUSY : -EIO, "%s",
			 msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return r;
}

int sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct orch_error *err)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, ret, NULL);
	return rc == SQLITE_OK ? 0 : sql_error(db, rc, err, "prepare");
}

int sql_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct orch_error *err)
{
	int rc = sqlite3_step(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sql_error(db, rc, err, "%s", what);
}

int sql_begin(sqlite3 *db, struct orch_error *err)
{
	return sql_exec(db, "BEGIN IMMEDIATE", err);
}

int sql_commit(sqlite3 *db, struct orch_error *err)
{
	int r = sql_exec(db, "COMMIT", err);
	if (r < 0)
		sql_rollback(db);
	return r;
}

void sql_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

void sql_bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int64_t sql_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
