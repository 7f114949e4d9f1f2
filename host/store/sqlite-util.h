/* SPDX-License-Identifier: Apache-2.0 */
/* The one set of SQLite helpers of orchd's database (the store, the LLM ledger, the
 * egress log): statements freed by cleanup, SQLite's result codes as -errno with its
 * message, transactions. */
#pragma once

#include <stdint.h>
#include <sqlite3.h>

#include "cleanup.h"
#include "error.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* Fills err with "<what>: <SQLite's message>" (what: printf format) and returns its code:
 * -EBUSY when the database is busy or locked, -ENOMEM, else -EIO. */
int sql_error(sqlite3 *db, int rc, struct orch_error *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Runs statements without results. */
int sql_exec(sqlite3 *db, const char *sql, struct orch_error *err);
int sql_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct orch_error *err);
/* Steps a statement that returns no rows (or whose rows are not wanted). */
int sql_step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct orch_error *err);
/* BEGIN IMMEDIATE / COMMIT (rolled back when it fails) / ROLLBACK if one is open. */
int sql_begin(sqlite3 *db, struct orch_error *err);
int sql_commit(sqlite3 *db, struct orch_error *err);
void sql_rollback(sqlite3 *db);
void sql_bind_text_or_null(sqlite3_stmt *st, int i, const char *v);
/* Wall-clock milliseconds since the epoch, as the tables store time. */
int64_t sql_now_ms(void);

/* Brings db's schema to this orchd's (store-schema.c: one ordered list of migrations for
 * every table, the version in schema_version). -EPROTONOSUPPORT when db is newer. */
int store_migrate(sqlite3 *db, struct orch_error *err);
