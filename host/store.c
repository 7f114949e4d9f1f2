/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "store-sqlite.h"

struct store_sqlite {
	struct store base;
	sqlite3 *db;
};

int64_t store_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	char *msg = NULL;

	if (sqlite3_exec(db_of(s), sql, NULL, NULL, &msg) != SQLITE_OK) {
		orch_err(err, -EIO, "store: %s", msg ? msg : sqlite3_errmsg(db_of(s)));
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

int store_begin(struct store *s, struct orch_error *err)
{
	return store_exec(s, "BEGIN IMMEDIATE", err);
}

int store_commit(struct store *s, struct orch_error *err)
{
	int r = store_exec(s, "COMMIT", err);
	if (r < 0)
		store_rollback(s);
	return r;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(db_of(s)))
		sqlite3_exec(db_of(s), "ROLLBACK", NULL, NULL, NULL);
}

int sqlite_schema_version(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int v = -EIO;

	if (sqlite3_prepare_v2(db_of(s), "SELECT version FROM schema_version", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static int migrate(struct store *s, struct orch_error *err)
{
	int r, v;

	r = store_exec(s,
		       "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
		       "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS "
		       "(SELECT 1 FROM schema_version);",
		       err);
	if (r < 0)
		return r;
	v = sqlite_schema_version(s);
	if (v < 0)
		return orch_err(err, -EIO, "store: cannot read schema_version");
	if ((size_t)v > store_n_migrations)
		return orch_err(
			err, -EPROTONOSUPPORT,
			"store: schema version %d is newer than this orchd (%zu); use a newer "
			"orchd or another state_dir",
			v, store_n_migrations);
	for (size_t i = (size_t)v; i < store_n_migrations; i++) {
		char sql[96];

		if ((r = store_begin(s, err)) < 0)
			return r;
		r = store_exec(s, store_migrations[i], err);
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %zu", i + 1);
		if (r >= 0)
			r = store_exec(s, sql, err);
		if (r < 0) {
			store_rollback(s);
			return orch_err_prefix(err, "store: migration %zu", i + 1);
		}
		if ((r = store_commit(s, err)) < 0)
			return r;
	}
	return 0;
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
		r = migrate(s, err);
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
