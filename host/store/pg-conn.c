/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "loop.h"
#include "pg-conn.h"
#include "store-config.h"

#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_PASSWORD_MAX 1024

/* The first line of a file nobody but its owner may read or write. */
static int read_password(const char *path, char **ret, struct orch_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	char buf[PG_PASSWORD_MAX + 2];
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return orch_errno(err, -errno, "store.postgresql.password_file %s", path);
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "store.postgresql.password_file %s", path);
	if (!S_ISREG(st.st_mode))
		return orch_err(err, -EINVAL, "store.postgresql.password_file %s: not a file",
				path);
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return orch_err(err, -EPERM,
				"store.postgresql.password_file %s: mode %04o lets others read it; "
				"chmod 600 %s",
				path, (unsigned)(st.st_mode & 07777), path);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return orch_errno(err, -errno, "store.postgresql.password_file %s", path);
	buf[n] = 0;
	buf[strcspn(buf, "\r\n")] = 0;
	if (!buf[0] || strlen(buf) > PG_PASSWORD_MAX)
		return orch_err(
			err, -EINVAL,
			"store.postgresql.password_file %s: expected one line of 1..%d bytes", path,
			PG_PASSWORD_MAX);
	*ret = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *ret ? 0 : orch_err(err, -ENOMEM, "out of memory");
}

/* Notices (a NOTICE that a table exists, a WARNING before the server shuts down) are not
 * orchd's to print: libpq's default would write them to stderr, outside orchd's log. */
static void no_notice(void *arg, const char *msg)
{
}

static void drop(struct pg_conn *pc)
{
	if (pc->c)
		PQfinish(pc->c);
	pc->c = NULL;
	memset(pc->prepared, 0, sizeof(pc->prepared));
}

/* One attempt; libpq's message on failure. */
static int connect_once(struct pg_conn *pc, struct orch_error *err)
{
	/* Later entries override earlier ones: our defaults first, then the operator's
	 * connection string, then the password (the string may not hold one). */
	const char *keys[] = {"connect_timeout",
			      "keepalives",
			      "keepalives_idle",
			      "keepalives_interval",
			      "keepalives_count",
			      "tcp_user_timeout",
			      "application_name",
			      "dbname",
			      pc->password ? "password" : NULL,
			      NULL};
	const char *vals[] = {"3",     "1",	     "5",	   "2",		 "3",
			      "10000", pc->app_name, pc->conninfo, pc->password, NULL};
	char set[128];

	drop(pc);
	pc->c = PQconnectdbParams(keys, vals, 1);
	if (!pc->c)
		return orch_err(err, -ENOMEM, "store: out of memory");
	PQsetNoticeProcessor(pc->c, no_notice, NULL);
	if (PQstatus(pc->c) != CONNECTION_OK) {
		char *m = PQerrorMessage(pc->c);
		orch_err(err, -ENOTCONN, "store: cannot connect to PostgreSQL: %.*s",
			 (int)strcspn(m, "\n"), m);
		drop(pc);
		return -ENOTCONN;
	}
	snprintf(set, sizeof(set),
		 "SET statement_timeout = %lld; SET idle_in_transaction_session_timeout = %lld",
		 (long long)pc->statement_timeout_ms, (long long)pc->statement_timeout_ms * 2);
	if (pg_exec(pc, set, err) < 0)
		return err->code;
	pc->connects++;
	pc->backoff_ms = 0;
	return 0;
}

int pg_conn_init(struct pg_conn *pc, const struct store_config *cfg, const char *app_name,
		 struct orch_error *err)
{
	int r;

	*pc = (struct pg_conn){.statement_timeout_ms = cfg->statement_timeout_ms,
			       .max_backoff_ms = (uint64_t)cfg->node_lease_ms / 3};
	if (pc->max_backoff_ms > PG_BACKOFF_MAX_MS)
		pc->max_backoff_ms = PG_BACKOFF_MAX_MS;
	if (!(pc->conninfo = strdup(cfg->conninfo)) || !(pc->app_name = strdup(app_name)))
		return orch_err(err, -ENOMEM, "out of memory");
	if (cfg->password_file && (r = read_password(cfg->password_file, &pc->password, err)) < 0)
		return r;
	return connect_once(pc, err);
}

void pg_conn_done(struct pg_conn *pc)
{
	drop(pc);
	free(pc->conninfo);
	if (pc->password) {
		explicit_bzero(pc->password, strlen(pc->password));
		free(pc->password);
	}
	free(pc->app_name);
	*pc = (struct pg_conn){0};
}

bool pg_conn_up(const struct pg_conn *pc)
{
	return pc->c && PQstatus(pc->c) == CONNECTION_OK;
}

int pg_conn_ensure(struct pg_conn *pc, struct orch_error *err)
{
	uint64_t now = orch_now_ms();
	int r;

	if (pg_conn_up(pc))
		return 0;
	drop(pc);
	if (now < pc->next_try_ms)
		return orch_err(err, -ENOTCONN,
				"store: PostgreSQL is unreachable; next attempt in %llu ms",
				(unsigned long long)(pc->next_try_ms - now));
	r = connect_once(pc, err);
	if (r < 0) {
		pc->backoff_ms = pc->backoff_ms ? pc->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
		if (pc->backoff_ms > pc->max_backoff_ms)
			pc->backoff_ms = pc->max_backoff_ms;
		pc->next_try_ms = now + pc->backoff_ms;
		return r;
	}
	if (pc->on_connect)
		pc->on_connect(pc->data);
	return 0;
}

int pg_result_error(struct pg_conn *pc, PGresult *res, const char *what, struct orch_error *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorMessage(res) : NULL;
	int code = -EIO;

	if (!msg || !*msg)
		msg = pc->c ? PQerrorMessage(pc->c) : "no connection";
	/* no SQLSTATE: the error is libpq's own, the connection failed (a write to a closed
	 * socket may leave the status CONNECTION_OK until the next read) */
	if (!pc->c || PQstatus(pc->c) != CONNECTION_OK || !state || !strncmp(state, "08", 2) ||
	    !strncmp(state, "57P0", 4))
		code = -ENOTCONN;
	else if (state && !strcmp(state, "57014"))
		code = -ETIMEDOUT;
	else if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01")))
		code = -EAGAIN;
	else if (state && !strcmp(state, "23505"))
		code = -EEXIST;
	orch_err(err, code, "store: %s: %.*s", what, (int)strcspn(msg, "\n"), msg);
	if (code == -ENOTCONN)
		drop(pc);
	return code;
}

static bool ok(PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int pg_run(struct pg_conn *pc, unsigned id, const char *sql, int n, const char *const *params,
	   PGresult **ret_res, struct orch_error *err)
{
	char name[16];
	PGresult *res;
	int r;

	if (id >= PG_MAX_STMTS)
		return orch_err(err, -EINVAL, "store: statement %u out of range", id);
	if ((r = pg_conn_ensure(pc, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "s%u", id);
	if (!pc->prepared[id]) {
		res = PQprepare(pc->c, name, sql, n, NULL);
		if (!ok(res)) {
			r = pg_result_error(pc, res, "prepare", err);
			PQclear(res);
			return r;
		}
		PQclear(res);
		pc->prepared[id] = true;
	}
	res = PQexecPrepared(pc->c, name, n, params, NULL, NULL, 0);
	if (!ok(res)) {
		r = pg_result_error(pc, res, "query", err);
		PQclear(res);
		return r;
	}
	if (ret_res)
		*ret_res = res;
	else
		PQclear(res);
	return 0;
}

int pg_exec(struct pg_conn *pc, const char *sql, struct orch_error *err)
{
	PGresult *res;
	int r = 0;

	if (!pc->c)
		return orch_err(err, -ENOTCONN, "store: not connected to PostgreSQL");
	res = PQexec(pc->c, sql);
	if (!ok(res))
		r = pg_result_error(pc, res, "statement", err);
	PQclear(res);
	return r;
}

const char *pg_int(char buf[static PG_INT_BUF], int64_t v)
{
	snprintf(buf, PG_INT_BUF, "%lld", (long long)v);
	return buf;
}

int64_t pg_col_int(const PGresult *res, int row, int col, int64_t dflt)
{
	if (PQgetisnull(res, row, col))
		return dflt;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

char *pg_col_str(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return strdup(PQgetvalue(res, row, col));
}
