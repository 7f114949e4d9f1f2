/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sqlite-util.h"
#include "store.h"

struct store {
	sqlite3 *db;
};

int64_t store_now_ms(void)
{
	return sql_now_ms();
}

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

int store_exec(struct store *s, const char *sql, struct orch_error *err)
{
	int r = sql_exec(s->db, sql, err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

int store_begin(struct store *s, struct orch_error *err)
{
	int r = sql_begin(s->db, err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

int store_commit(struct store *s, struct orch_error *err)
{
	int r = sql_commit(s->db, err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

void store_rollback(struct store *s)
{
	sql_rollback(s->db);
}

int store_schema_version(struct store *s)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(s->db, "SELECT version FROM schema_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -EIO;
}

int store_open(const char *path, struct store **ret, struct orch_error *err)
{
	struct store *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return orch_err(err, -ENOMEM, "out of memory");
	r = sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
				    SQLITE_OPEN_EXRESCODE,
			    NULL);
	if (r != SQLITE_OK) {
		orch_err(err, -EIO, "cannot open store %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(r));
		store_close(s);
		return -EIO;
	}
	sqlite3_busy_timeout(s->db, 5000);
	r = store_exec(s,
		       "PRAGMA journal_mode = WAL;"
		       "PRAGMA synchronous = NORMAL;"
		       "PRAGMA foreign_keys = ON;"
		       "PRAGMA cache_size = -1024;",
		       err);
	if (r >= 0)
		r = store_migrate(s->db, err);
	if (r < 0) {
		orch_err_prefix(err, "%s", path);
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close_v2(s->db);
	free(s);
}
