/* SPDX-License-Identifier: Apache-2.0 */
/* One libpq connection of orchd's PostgreSQL store, with what keeps orchd's loop alive
 * while the server is away (docs/FLEET.md, "When the database is away"):
 *
 *  - statements run synchronously (a Unix socket or loopback round trip is well under a
 *    millisecond) but never longer than statement_timeout_ms (set on the session), and
 *    TCP connections carry keepalives and tcp_user_timeout, so a dead server costs a
 *    bounded wait, not a frozen loop;
 *  - a connection that breaks is dropped at once; the next use reconnects, at most once
 *    per backoff step (100 ms doubling to 5 s, or to a third of node_lease_ms when that
 *    is less: every node is back well within a lease of the server's return, before any
 *    node may declare another dead), so a server that is down costs one failed connect
 *    per step, not one per statement; until then every call fails with -ENOTCONN;
 *  - statements are prepared once per connection (by number) and again after a reconnect.
 *
 * The password (if any) is read once from password_file (not readable by group or
 * others) and passed to libpq, never put in a connection string or an error message. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "error.h"

struct store_config;

#define PG_MAX_STMTS 64

struct pg_conn {
	PGconn *c;
	char *conninfo;
	char *password; /* NULL: none */
	char *app_name;
	int64_t statement_timeout_ms;
	uint64_t next_try_ms; /* orch_now_ms before which no reconnect is tried */
	uint64_t backoff_ms;
	uint64_t max_backoff_ms; /* at most a third of the node lease: see pg_conn_init */
	uint64_t connects;	 /* successful connections (the first included) */
	bool prepared[PG_MAX_STMTS];
	void (*on_connect)(void *data); /* after every successful (re)connect */
	void *data;
};

/* Reads the password file (when set) and connects once: a failure here is orchd's start
 * failing, with libpq's reason. */
int pg_conn_init(struct pg_conn *pc, const struct store_config *cfg, const char *app_name,
		 struct orch_error *err);
void pg_conn_done(struct pg_conn *pc);
/* The connection, reconnecting when it is down and the backoff allows; -ENOTCONN with
 * the reason otherwise. */
int pg_conn_ensure(struct pg_conn *pc, struct orch_error *err);
bool pg_conn_up(const struct pg_conn *pc);

/* A result's error as -errno: -ENOTCONN (the connection broke: it is dropped),
 * -ETIMEDOUT (statement_timeout), -EAGAIN (serialization failure, deadlock: retry),
 * -EEXIST (unique violation), -EIO otherwise; err names what and libpq's message. */
int pg_result_error(struct pg_conn *pc, PGresult *res, const char *what, struct orch_error *err);

/* Runs prepared statement `id` (sql, prepared on first use per connection) with text
 * params (NULL: SQL NULL). On success *ret_res holds the result (PQclear it), whose
 * status is COMMAND_OK or TUPLES_OK. */
int pg_run(struct pg_conn *pc, unsigned id, const char *sql, int n, const char *const *params,
	   PGresult **ret_res, struct orch_error *err);
/* Runs plain SQL (no params, several statements allowed), result discarded. */
int pg_exec(struct pg_conn *pc, const char *sql, struct orch_error *err);

/* Helpers for params and columns. */
#define PG_INT_BUF 24
const char *pg_int(char buf[static PG_INT_BUF], int64_t v);
int64_t pg_col_int(const PGresult *res, int row, int col, int64_t dflt);
/* NULL when SQL NULL; else a malloc'd copy (NULL also when out of memory: check). */
char *pg_col_str(const PGresult *res, int row, int col);
