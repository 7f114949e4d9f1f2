/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sqlite-util.h"
#include "store-sqlite.h"

/* The SQLite implementation of the store (store-ops.h): its head and its database. */
struct store_sqlite {
	struct store base;
	sqlite3 *db;
};

int64_t store_now_ms(void)
{
	return sql_now_ms();
}

sqlite3 *store_db(struct store *s)
{
	return s && s->ops == &store_sqlite_ops ? ((struct store_sqlite *)s)->db : NULL;
}

static sqlite3 *db_of(struct store *s)
{
	return ((struct store_sqlite *)s)->db;
}

int store_exec(struct store *s, const char *sql, struct orch_error *err)
{
	int r = sql_exec(db_of(s), sql, err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

int store_begin(struct store *s, struct orch_error *err)
{
	int r = sql_begin(db_of(s), err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

int store_commit(struct store *s, struct orch_error *err)
{
	int r = sql_commit(db_of(s), err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

void store_rollback(struct store *s)
{
	sql_rollback(db_of(s));
}

int sqlite_schema_version(struct store *s)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db_of(s), "SELECT version FROM schema_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -EIO;
}

int store_sqlite_open(const char *path, struct store **ret, struct orch_error *err)
{
	struct store_sqlite *q;
	struct store *s;
	int r;

	q = calloc(1, sizeof(*q));
	if (!q)
		return orch_err(err, -ENOMEM, "out of memory");
	q->base.ops = &store_sqlite_ops;
	s = &q->base;
	r = sqlite3_open_v2(path, &q->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				    SQLITE_OPEN_EXRESCODE,
			    NULL);
	if (r != SQLITE_OK) {
		orch_err(err, -EIO, "cannot open store %s: %s", path,
			 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(r));
		sqlite_close(s);
		return -EIO;
	}
	sqlite3_busy_timeout(db_of(s), 5000);
	r = store_exec(s,
		       "PRAGMA journal_mode = WAL;"
		       "PRAGMA synchronous = NORMAL;"
		       "PRAGMA foreign_keys = ON;"
		       "PRAGMA cache_size = -1024;",
		       err);
	if (r >= 0)
		r = store_migrate(db_of(s), err);
	if (r < 0) {
		orch_err_prefix(err, "%s", path);
		sqlite_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void sqlite_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close_v2(db_of(s));
	free(s);
}
