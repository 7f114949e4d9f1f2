/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "llm-ledger.h"
#include "sqlite-util.h"

/* The ledger's tables are in the store's one migration list (host/store/store-schema.c). */

static int sql_err(sqlite3 *db, struct orch_error *err, int rc, const char *what)
{
	return sql_error(db, rc, err, "llm ledger: %s", what);
}

static int exec(sqlite3 *db, const char *sql, struct orch_error *err)
{
	int r = sql_exec(db, sql, err);
	return r < 0 ? orch_err_prefix(err, "llm ledger") : 0;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, struct orch_error *err)
{
	int r = sql_prepare(db, sql, ret, err);
	return r < 0 ? orch_err_prefix(err, "llm ledger") : 0;
}

static bool scope_valid(const char *scope)
{
	return scope && (strcmp(scope, "agent") == 0 || strcmp(scope, "task") == 0);
}

static int check_scope(const char *scope, const char *id, struct orch_error *err)
{
	if (!scope_valid(scope) || !id)
		return orch_err(err, -EINVAL, "llm ledger: scope must be agent or task");
	return 0;
}

/* Prepares sql whose ?1 and ?2 are a budget's scope and id, and binds them. */
static int prepare_scoped(sqlite3 *db, const char *sql, const char *scope, const char *id,
			  sqlite3_stmt **ret, struct orch_error *err)
{
	int r = prepare(db, sql, ret, err);

	if (r < 0)
		return r;
	sqlite3_bind_text(*ret, 1, scope, -1, SQLITE_STATIC);
	sqlite3_bind_text(*ret, 2, id, -1, SQLITE_STATIC);
	return 0;
}

static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, struct orch_error *err)
{
	int rc = sqlite3_step(st);

	return rc == SQLITE_DONE ? 0 : sql_err(db, err, rc, what);
}

/* Runs one statement on a caller's budget (?1 scope, ?2 id, both checked first). */
static int exec_scoped(sqlite3 *db, const char *sql, const char *scope, const char *id,
		       const char *what, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = check_scope(scope, id, err);
	if (r < 0)
		return r;
	r = prepare_scoped(db, sql, scope, id, &st, err);
	if (r < 0)
		return r;
	return step_done(db, st, what, err);
}

/* A reservation's or spend's task column: NULL when it has none. */
static void bind_task(sqlite3_stmt *st, int i, const char *task)
{
	if (task)
		sqlite3_bind_text(st, i, task, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* The budget columns, in the order column_budget() reads them. */
#define BUDGET_COLUMNS \
	"limit_micro, limit_tokens, spent_micro, spent_tokens, reserved_micro, reserved_tokens"

/* Reads BUDGET_COLUMNS from column col on. */
static struct llm_budget column_budget(sqlite3_stmt *st, int col)
{
	return (struct llm_budget){
		.limit_micro = sqlite3_column_int64(st, col),
		.limit_tokens = sqlite3_column_int64(st, col + 1),
		.spent_micro = sqlite3_column_int64(st, col + 2),
		.spent_tokens = sqlite3_column_int64(st, col + 3),
		.reserved_micro = sqlite3_column_int64(st, col + 4),
		.reserved_tokens = sqlite3_column_int64(st, col + 5),
	};
}

/* Ends a transaction begun with BEGIN IMMEDIATE: commits when r >= 0; rolls back when r < 0
 * or the commit fails. Returns r or the commit's error. */
static int end_transaction(sqlite3 *db, int r, struct orch_error *err)
{
	if (r >= 0)
		r = exec(db, "COMMIT", err);
	if (r < 0)
		sql_rollback(db);
	return r;
}

int llm_ledger_get(sqlite3 *db, const char *scope, const char *id, struct llm_budget *ret,
		   struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	r = check_scope(scope, id, err);
	if (r < 0)
		return r;
	r = prepare_scoped(db,
			   "SELECT " BUDGET_COLUMNS " FROM llm_budget WHERE scope = ?1 AND id = ?2",
			   scope, id, &st, err);
	if (r < 0)
		return r;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return orch_err(err, -ENOENT, "no llm budget for %s %s", scope, id);
	if (rc != SQLITE_ROW)
		return sql_err(db, err, rc, "read budget");
	*ret = column_budget(st, 0);
	return 0;
}

int llm_ledger_set_limit(sqlite3 *db, const char *scope, const char *id, int64_t limit_micro,
			 int64_t limit_tokens, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (!scope_valid(scope) || !id || limit_micro < 0 || limit_tokens < 0)
		return orch_err(err, -EINVAL, "llm ledger: bad scope or negative limit");
	r = prepare_scoped(
		db,
		"INSERT INTO llm_budget(scope, id, limit_micro, limit_tokens) VALUES (?1,?2,?3,?4)"
		" ON CONFLICT(scope, id) DO UPDATE SET limit_micro = ?3, limit_tokens = ?4",
		scope, id, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 3, limit_micro);
	sqlite3_bind_int64(st, 4, limit_tokens);
	return step_done(db, st, "set budget", err);
}

int llm_ledger_reset_spend(sqlite3 *db, const char *scope, const char *id, struct orch_error *err)
{
	return exec_scoped(db,
			   "UPDATE llm_budget SET spent_micro = 0, spent_tokens = 0"
			   " WHERE scope = ?1 AND id = ?2",
			   scope, id, "reset spend", err);
}

int llm_ledger_foreach(sqlite3 *db, const char *scope, llm_budget_cb cb, void *data,
		       struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r, rc;

	if (scope && !scope_valid(scope))
		return orch_err(err, -EINVAL, "llm ledger: scope must be agent or task");
	r = prepare(db,
		    "SELECT scope, id, " BUDGET_COLUMNS " FROM llm_budget"
		    " WHERE ?1 IS NULL OR scope = ?1 ORDER BY scope, id",
		    &st, err);
	if (r < 0)
		return r;
	if (scope)
		sqlite3_bind_text(st, 1, scope, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct llm_budget b = column_budget(st, 2);
		r = cb((const char *)sqlite3_column_text(st, 0),
		       (const char *)sqlite3_column_text(st, 1), &b, data);
		if (r < 0)
			return r;
	}
	return rc == SQLITE_DONE ? 0 : sql_err(db, err, rc, "list budgets");
}

int llm_ledger_drop(sqlite3 *db, const char *scope, const char *id, struct orch_error *err)
{
	int r;

	/* Only while nothing is reserved against it. */
	r = exec_scoped(db,
			"DELETE FROM llm_budget WHERE scope = ?1 AND id = ?2"
			" AND reserved_micro = 0 AND reserved_tokens = 0",
			scope, id, "drop budget", err);
	if (r < 0)
		return r;
	if (sqlite3_changes(db) == 0) {
		struct llm_budget b;
		if (llm_ledger_get(db, scope, id, &b, NULL) == 0)
			return orch_err(err, -EBUSY, "llm budget of %s %s has requests in flight",
					scope, id);
	}
	return 0;
}

/* Inside a transaction: makes sure the row exists, then checks room for micro/tokens. */
static int check_room(sqlite3 *db, const char *scope, const char *id, int64_t def_micro,
		      int64_t def_tokens, int64_t micro, int64_t tokens, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *ins = NULL;
	struct llm_budget b;
	int r;

	r = prepare_scoped(db,
			   "INSERT OR IGNORE INTO llm_budget(scope, id, limit_micro, limit_tokens)"
			   " VALUES (?1,?2,?3,?4)",
			   scope, id, &ins, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(ins, 3, def_micro > 0 ? def_micro : 0);
	sqlite3_bind_int64(ins, 4, def_tokens > 0 ? def_tokens : 0);
	r = step_done(db, ins, "create budget", err);
	if (r < 0)
		return r;
	r = llm_ledger_get(db, scope, id, &b, err);
	if (r < 0)
		return r;
	if (b.limit_micro > 0 && b.spent_micro + micro > b.limit_micro)
		return orch_err(err, -EDQUOT,
				"llm budget of %s %s exhausted: spent $%.6f of $%.6f, this request "
				"may cost up to $%.6f",
				scope, id, (double)b.spent_micro / 1e6, (double)b.limit_micro / 1e6,
				(double)micro / 1e6);
	if (b.limit_tokens > 0 && b.spent_tokens + tokens > b.limit_tokens)
		return orch_err(err, -EDQUOT,
				"llm token budget of %s %s exhausted: spent %lld of %lld tokens, "
				"this request may use up to %lld",
				scope, id, (long long)b.spent_tokens, (long long)b.limit_tokens,
				(long long)tokens);
	if (b.limit_micro > 0 && b.spent_micro + b.reserved_micro + micro > b.limit_micro)
		return orch_err(err, -EAGAIN,
				"llm budget of %s %s is held by requests in flight: spent $%.6f + "
				"reserved $%.6f of $%.6f; retry when they finish",
				scope, id, (double)b.spent_micro / 1e6,
				(double)b.reserved_micro / 1e6, (double)b.limit_micro / 1e6);
	if (b.limit_tokens > 0 && b.spent_tokens + b.reserved_tokens + tokens > b.limit_tokens)
		return orch_err(err, -EAGAIN,
				"llm token budget of %s %s is held by requests in flight; retry "
				"when they finish",
				scope, id);
	return 0;
}

static int adjust(sqlite3 *db, const char *scope, const char *id, int64_t d_res_micro,
		  int64_t d_res_tokens, int64_t d_spent_micro, int64_t d_spent_tokens,
		  struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = prepare_scoped(db,
			   "UPDATE llm_budget SET reserved_micro = max(0, reserved_micro + ?3),"
			   " reserved_tokens = max(0, reserved_tokens + ?4),"
			   " spent_micro = spent_micro + ?5, spent_tokens = spent_tokens + ?6"
			   " WHERE scope = ?1 AND id = ?2",
			   scope, id, &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 3, d_res_micro);
	sqlite3_bind_int64(st, 4, d_res_tokens);
	sqlite3_bind_int64(st, 5, d_spent_micro);
	sqlite3_bind_int64(st, 6, d_spent_tokens);
	return step_done(db, st, "update budget", err);
}

int llm_ledger_reserve(sqlite3 *db, const struct llm_limits *defaults, const char *agent,
		       const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		       struct orch_error *err)
{
	static const struct llm_limits none;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	if (!agent || micro < 0 || tokens < 0)
		return orch_err(err, -EINVAL, "llm ledger: bad reservation");
	if (!defaults)
		defaults = &none;
	r = exec(db, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	r = check_room(db, "agent", agent, defaults->agent_micro, defaults->agent_tokens, micro,
		       tokens, err);
	if (r >= 0 && task)
		r = check_room(db, "task", task, defaults->task_micro, defaults->task_tokens, micro,
			       tokens, err);
	if (r >= 0)
		r = adjust(db, "agent", agent, micro, tokens, 0, 0, err);
	if (r >= 0 && task)
		r = adjust(db, "task", task, micro, tokens, 0, 0, err);
	if (r >= 0)
		r = prepare(db,
			    "INSERT INTO llm_reservation(agent, task, micro, tokens, created_ms)"
			    " VALUES (?1,?2,?3,?4,?5)",
			    &st, err);
	if (r >= 0) {
		sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
		bind_task(st, 2, task);
		sqlite3_bind_int64(st, 3, micro);
		sqlite3_bind_int64(st, 4, tokens);
		sqlite3_bind_int64(st, 5, sql_now_ms());
		r = step_done(db, st, "insert reservation", err);
	}
	r = end_transaction(db, r, err);
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(db);
	return 0;
}

struct reservation {
	char agent[256];
	char task[256];
	bool has_task;
	int64_t micro, tokens;
};

static int load_reservation(sqlite3 *db, int64_t id, struct reservation *ret,
			    struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	const unsigned char *a, *t;
	int r, rc;

	r = prepare(db, "SELECT agent, task, micro, tokens FROM llm_reservation WHERE id = ?1", &st,
		    err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		return orch_err(err, -ENOENT, "llm ledger: no reservation %lld", (long long)id);
	if (rc != SQLITE_ROW)
		return sql_err(db, err, rc, "read reservation");
	a = sqlite3_column_text(st, 0);
	t = sqlite3_column_text(st, 1);
	memset(ret, 0, sizeof(*ret));
	snprintf(ret->agent, sizeof(ret->agent), "%s", a ? (const char *)a : "");
	ret->has_task = t != NULL;
	snprintf(ret->task, sizeof(ret->task), "%s", t ? (const char *)t : "");
	ret->micro = sqlite3_column_int64(st, 2);
	ret->tokens = sqlite3_column_int64(st, 3);
	return 0;
}

/* Inside a transaction: turns reservation id into spend (micro/tokens, may be 0). */
static int finish(sqlite3 *db, int64_t id, const char *model, const struct llm_usage *u,
		  int64_t micro, const char *outcome, bool record, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *del = NULL, *ins = NULL;
	struct reservation res;
	int64_t tokens = u ? llm_usage_tokens(u) : 0;
	int r;

	r = load_reservation(db, id, &res, err);
	if (r < 0)
		return r;
	r = adjust(db, "agent", res.agent, -res.micro, -res.tokens, micro, tokens, err);
	if (r >= 0 && res.has_task)
		r = adjust(db, "task", res.task, -res.micro, -res.tokens, micro, tokens, err);
	if (r >= 0)
		r = prepare(db, "DELETE FROM llm_reservation WHERE id = ?1", &del, err);
	if (r >= 0) {
		sqlite3_bind_int64(del, 1, id);
		r = step_done(db, del, "delete reservation", err);
	}
	if (r < 0 || !record)
		return r;
	r = prepare(db,
		    "INSERT INTO llm_spend(agent, task, model, input_tokens, output_tokens,"
		    " cache_write_tokens, cache_read_tokens, micro, outcome, at_ms)"
		    " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
		    &ins, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(ins, 1, res.agent, -1, SQLITE_STATIC);
	bind_task(ins, 2, res.has_task ? res.task : NULL);
	sqlite3_bind_text(ins, 3, model ? model : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 4, u ? u->input : 0);
	sqlite3_bind_int64(ins, 5, u ? u->output : 0);
	sqlite3_bind_int64(ins, 6, u ? u->cache_write : 0);
	sqlite3_bind_int64(ins, 7, u ? u->cache_read : 0);
	sqlite3_bind_int64(ins, 8, micro);
	sqlite3_bind_text(ins, 9, outcome ? outcome : "ok", -1, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 10, sql_now_ms());
	return step_done(db, ins, "record spend", err);
}

static int in_transaction(sqlite3 *db, int64_t id, const char *model, const struct llm_usage *u,
			  int64_t micro, const char *outcome, bool record, struct orch_error *err)
{
	int r;

	r = exec(db, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	return end_transaction(db, finish(db, id, model, u, micro, outcome, record, err), err);
}

int llm_ledger_settle(sqlite3 *db, int64_t id, const char *model, const struct llm_usage *u,
		      int64_t micro, const char *outcome, struct orch_error *err)
{
	if (micro < 0 || !u)
		return orch_err(err, -EINVAL, "llm ledger: bad settlement");
	return in_transaction(db, id, model, u, micro, outcome, true, err);
}

int llm_ledger_release(sqlite3 *db, int64_t id, struct orch_error *err)
{
	return in_transaction(db, id, NULL, NULL, 0, NULL, false, err);
}

int llm_ledger_settle_stale(sqlite3 *db, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int r, rc = SQLITE_DONE;

	r = exec(db, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	r = prepare(db, "SELECT id FROM llm_reservation", &st, err);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			int64_t *nv = reallocarray(ids, cap ? cap * 2 : 16, sizeof(*ids));
			if (!nv) {
				r = orch_err(err, -ENOMEM, "out of memory");
				break;
			}
			ids = nv;
			cap = cap ? cap * 2 : 16;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = sql_err(db, err, rc, "read reservations");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct reservation res;
		struct llm_usage u = {0};
		r = load_reservation(db, ids[i], &res, err);
		if (r < 0)
			break;
		u.input = res.tokens;
		r = finish(db, ids[i], "", &u, res.micro, "stale", true, err);
	}
	r = end_transaction(db, r, err);
	return r < 0 ? r : (int)n;
}
