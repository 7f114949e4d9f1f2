/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM budget ledger in PostgreSQL, with llm-ledger.h's contract: a reservation is one
 * transaction that locks the budgets' rows (agent, then task: one order for every node, so
 * no deadlock), checks room and books the worst case; a settlement is one transaction that
 * swaps the reservation for the spend. Nodes reserving against one budget at once queue on
 * its row and never overshoot it together. Reservations and spend carry the node that made
 * them: a node's restart charges its own stale reservations only, and a node declared dead
 * has its reservations charged by the node that reaps it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "llm-ledger.h"
#include "store-pg.h"

#define BUDGET_COLUMNS \
	"limit_micro, limit_tokens, spent_micro, spent_tokens, reserved_micro, reserved_tokens"

static bool scope_ok(const char *scope, const char *id)
{
	return scope && id &&
	       (strcmp(scope, "agent") == 0 || strcmp(scope, "task") == 0 ||
		strcmp(scope, "fleet") == 0);
}

static struct llm_budget budget_at(const PGresult *res, int row, int col)
{
	return (struct llm_budget){
		.limit_micro = pg_col_int(res, row, col, 0),
		.limit_tokens = pg_col_int(res, row, col + 1, 0),
		.spent_micro = pg_col_int(res, row, col + 2, 0),
		.spent_tokens = pg_col_int(res, row, col + 3, 0),
		.reserved_micro = pg_col_int(res, row, col + 4, 0),
		.reserved_tokens = pg_col_int(res, row, col + 5, 0),
	};
}

int pg_llm_get(struct store *s, const char *scope, const char *id, struct llm_budget *ret,
	       struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {scope, id};
	PGresult *res = NULL;
	int r;

	if (!scope_ok(scope, id))
		return orch_err(err, -EINVAL, "llm ledger: scope must be agent, task or fleet");
	r = pg_run(&p->conn, PGS_LLM_GET,
		   "SELECT " BUDGET_COLUMNS " FROM llm_budget WHERE scope = $1 AND id = $2", 2, v,
		   &res, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return orch_err(err, -ENOENT, "no llm budget for %s %s", scope, id);
	}
	*ret = budget_at(res, 0, 0);
	PQclear(res);
	return 0;
}

int pg_llm_set_limit(struct store *s, const char *scope, const char *id, int64_t limit_micro,
		     int64_t limit_tokens, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF];
	const char *v[] = {scope, id, pg_int(b1, limit_micro), pg_int(b2, limit_tokens)};

	if (!scope_ok(scope, id) || limit_micro < 0 || limit_tokens < 0)
		return orch_err(err, -EINVAL, "llm ledger: bad scope or negative limit");
	return pg_run(&p->conn, PGS_LLM_SET,
		      "INSERT INTO llm_budget (scope, id, limit_micro, limit_tokens)"
		      " VALUES ($1, $2, $3, $4) ON CONFLICT (scope, id) DO UPDATE SET"
		      " limit_micro = $3, limit_tokens = $4",
		      4, v, NULL, err);
}

int pg_llm_reset_spend(struct store *s, const char *scope, const char *id, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {scope, id};

	if (!scope_ok(scope, id))
		return orch_err(err, -EINVAL, "llm ledger: scope must be agent, task or fleet");
	return pg_run(&p->conn, PGS_LLM_RESET,
		      "UPDATE llm_budget SET spent_micro = 0, spent_tokens = 0"
		      " WHERE scope = $1 AND id = $2",
		      2, v, NULL, err);
}

int pg_llm_foreach(struct store *s, const char *scope, store_budget_cb cb, void *data,
		   struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {scope};
	PGresult *res = NULL;
	int r;

	if (scope && !scope_ok(scope, ""))
		return orch_err(err, -EINVAL, "llm ledger: scope must be agent, task or fleet");
	r = pg_run(&p->conn, PGS_LLM_LIST,
		   "SELECT scope, id, " BUDGET_COLUMNS " FROM llm_budget"
		   " WHERE $1::text IS NULL OR scope = $1 ORDER BY scope, id",
		   1, v, &res, err);
	if (r < 0)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(res); i++) {
		struct llm_budget b = budget_at(res, i, 2);
		r = cb(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), &b, data);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}

int pg_llm_drop(struct store *s, const char *scope, const char *id, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {scope, id};
	struct llm_budget b;
	PGresult *res = NULL;
	int r, n;

	if (!scope_ok(scope, id))
		return orch_err(err, -EINVAL, "llm ledger: scope must be agent, task or fleet");
	r = pg_run(&p->conn, PGS_LLM_DROP,
		   "DELETE FROM llm_budget WHERE scope = $1 AND id = $2"
		   " AND reserved_micro = 0 AND reserved_tokens = 0 RETURNING 1",
		   2, v, &res, err);
	if (r < 0)
		return r;
	n = PQntuples(res);
	PQclear(res);
	if (n == 0 && pg_llm_get(s, scope, id, &b, NULL) == 0)
		return orch_err(err, -EBUSY, "llm budget of %s %s has requests in flight", scope,
				id);
	return 0;
}

/* The room a reservation needs in one budget (llm-ledger.c's rule and messages). */
static int room(const char *scope, const char *id, const struct llm_budget *b, int64_t micro,
		int64_t tokens, struct orch_error *err)
{
	if (b->limit_micro > 0 && b->spent_micro + micro > b->limit_micro)
		return orch_err(err, -EDQUOT,
				"llm budget of %s %s exhausted: spent $%.6f of $%.6f, this request "
				"may cost up to $%.6f",
				scope, id, (double)b->spent_micro / 1e6,
				(double)b->limit_micro / 1e6, (double)micro / 1e6);
	if (b->limit_tokens > 0 && b->spent_tokens + tokens > b->limit_tokens)
		return orch_err(err, -EDQUOT,
				"llm token budget of %s %s exhausted: spent %lld of %lld tokens, "
				"this request may use up to %lld",
				scope, id, (long long)b->spent_tokens, (long long)b->limit_tokens,
				(long long)tokens);
	if (b->limit_micro > 0 && b->spent_micro + b->reserved_micro + micro > b->limit_micro)
		return orch_err(err, -EAGAIN,
				"llm budget of %s %s is held by requests in flight: spent $%.6f + "
				"reserved $%.6f of $%.6f; retry when they finish",
				scope, id, (double)b->spent_micro / 1e6,
				(double)b->reserved_micro / 1e6, (double)b->limit_micro / 1e6);
	if (b->limit_tokens > 0 && b->spent_tokens + b->reserved_tokens + tokens > b->limit_tokens)
		return orch_err(err, -EAGAIN,
				"llm token budget of %s %s is held by requests in flight; retry "
				"when they finish",
				scope, id);
	return 0;
}

static int adjust(struct store_pg *p, const char *scope, const char *id, int64_t d_res_micro,
		  int64_t d_res_tokens, int64_t d_spent_micro, int64_t d_spent_tokens,
		  struct orch_error *err)
{
	char b[4][PG_INT_BUF];
	const char *v[] = {scope,
			   id,
			   pg_int(b[0], d_res_micro),
			   pg_int(b[1], d_res_tokens),
			   pg_int(b[2], d_spent_micro),
			   pg_int(b[3], d_spent_tokens)};

	return pg_run(&p->conn, PGS_LLM_ADJUST,
		      "UPDATE llm_budget SET reserved_micro = GREATEST(0, reserved_micro + $3),"
		      " reserved_tokens = GREATEST(0, reserved_tokens + $4),"
		      " spent_micro = spent_micro + $5, spent_tokens = spent_tokens + $6"
		      " WHERE scope = $1 AND id = $2",
		      6, v, NULL, err);
}

struct reserve_ctx {
	struct store_pg *p;
	const struct llm_limits *def;
	const char *agent, *task;
	int64_t micro, tokens, id;
	struct orch_error *err;
};

static int reserve_in(void *data)
{
	struct reserve_ctx *c = data;
	struct store_pg *p = c->p;
	char b[8][PG_INT_BUF];
	bool fleet_def = c->def->fleet_micro > 0 || c->def->fleet_tokens > 0, fleet = false;
	const char *ens[] = {c->agent,
			     c->task,
			     pg_int(b[0], c->def->agent_micro > 0 ? c->def->agent_micro : 0),
			     pg_int(b[1], c->def->agent_tokens > 0 ? c->def->agent_tokens : 0),
			     pg_int(b[2], c->def->task_micro > 0 ? c->def->task_micro : 0),
			     pg_int(b[3], c->def->task_tokens > 0 ? c->def->task_tokens : 0),
			     fleet_def ? "t" : "f",
			     pg_int(b[4], c->def->fleet_micro > 0 ? c->def->fleet_micro : 0),
			     pg_int(b[5], c->def->fleet_tokens > 0 ? c->def->fleet_tokens : 0)};
	const char *lock[] = {c->agent, c->task};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_LLM_ENSURE,
		   "INSERT INTO llm_budget (scope, id, limit_micro, limit_tokens)"
		   " SELECT 'agent', $1::text, $3::bigint, $4::bigint UNION ALL"
		   " SELECT 'task', $2::text, $5::bigint, $6::bigint WHERE $2::text IS NOT NULL"
		   " UNION ALL SELECT 'fleet', '" LLM_FLEET_ID "', $8::bigint, $9::bigint"
		   " WHERE $7::boolean ON CONFLICT (scope, id) DO NOTHING",
		   9, ens, NULL, c->err);
	if (r < 0)
		return r;
	/* one order on every node (agent, fleet, task): no deadlock between reservations */
	r = pg_run(&p->conn, PGS_LLM_LOCK,
		   "SELECT scope, id, " BUDGET_COLUMNS " FROM llm_budget"
		   " WHERE (scope = 'agent' AND id = $1) OR (scope = 'task' AND id = $2)"
		   " OR (scope = 'fleet' AND id = '" LLM_FLEET_ID "')"
		   " ORDER BY scope, id FOR UPDATE",
		   2, lock, &res, c->err);
	if (r < 0)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(res); i++) {
		struct llm_budget bu = budget_at(res, i, 2);
		fleet |= strcmp(PQgetvalue(res, i, 0), "fleet") == 0;
		r = room(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), &bu, c->micro, c->tokens,
			 c->err);
	}
	PQclear(res);
	if (r >= 0)
		r = adjust(p, "agent", c->agent, c->micro, c->tokens, 0, 0, c->err);
	if (r >= 0 && c->task)
		r = adjust(p, "task", c->task, c->micro, c->tokens, 0, 0, c->err);
	if (r >= 0 && fleet)
		r = adjust(p, "fleet", LLM_FLEET_ID, c->micro, c->tokens, 0, 0, c->err);
	if (r < 0)
		return r;
	const char *ins[] = {p->node,
			     c->agent,
			     c->task,
			     pg_int(b[6], c->micro),
			     pg_int(b[7], c->tokens),
			     pg_int(b[0], store_now_ms()),
			     fleet ? "t" : "f"};
	r = pg_run(
		&p->conn, PGS_LLM_RESERVE,
		"INSERT INTO llm_reservation (node, agent, task, micro, tokens, created_ms, fleet)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
		7, ins, &res, c->err);
	if (r < 0)
		return r;
	c->id = pg_col_int(res, 0, 0, 0);
	PQclear(res);
	return 0;
}

int pg_llm_reserve(struct store *s, const struct llm_limits *defaults, const char *agent,
		   const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		   struct orch_error *err)
{
	static const struct llm_limits none;
	struct reserve_ctx c = {
		store_pg(s), defaults ? defaults : &none, agent, task, micro, tokens, 0, err};
	int r;

	if (!agent || micro < 0 || tokens < 0)
		return orch_err(err, -EINVAL, "llm ledger: bad reservation");
	r = pg_transaction(&c.p->conn, reserve_in, &c, err);
	if (r < 0)
		return r;
	*ret_id = c.id;
	return 0;
}

struct finish_ctx {
	struct store_pg *p;
	int64_t id;
	const char *model;
	const struct llm_usage *u;
	int64_t micro;
	const char *outcome;
	bool record, stale; /* stale: charge the reservation's worst case */
	struct orch_error *err;
};

/* Inside a transaction: turns reservation id into spend. */
static int finish_in(void *data)
{
	struct finish_ctx *c = data;
	struct store_pg *p = c->p;
	char b[8][PG_INT_BUF];
	const char *v[] = {pg_int(b[0], c->id)};
	_cleanup_free_ char *agent = NULL, *task = NULL, *node = NULL;
	int64_t rmicro, rtokens, micro = c->micro, tokens;
	bool fleet;
	struct llm_usage u = c->u ? *c->u : (struct llm_usage){0};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_LLM_LOAD,
		   "DELETE FROM llm_reservation WHERE id = $1"
		   " RETURNING agent, task, micro, tokens, node, fleet",
		   1, v, &res, c->err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return orch_err(c->err, -ENOENT, "llm ledger: no reservation %lld",
				(long long)c->id);
	}
	agent = pg_col_str(res, 0, 0);
	task = pg_col_str(res, 0, 1);
	rmicro = pg_col_int(res, 0, 2, 0);
	rtokens = pg_col_int(res, 0, 3, 0);
	node = pg_col_str(res, 0, 4);
	fleet = PQgetvalue(res, 0, 5)[0] == 't';
	PQclear(res);
	if (!agent || !node)
		return orch_err(c->err, -ENOMEM, "out of memory");
	if (c->stale) {
		u = (struct llm_usage){.input = rtokens};
		micro = rmicro;
	}
	tokens = c->record || c->stale ? llm_usage_tokens(&u) : 0;
	r = adjust(p, "agent", agent, -rmicro, -rtokens, micro, tokens, c->err);
	if (r >= 0 && task)
		r = adjust(p, "task", task, -rmicro, -rtokens, micro, tokens, c->err);
	if (r >= 0 && fleet)
		r = adjust(p, "fleet", LLM_FLEET_ID, -rmicro, -rtokens, micro, tokens, c->err);
	if (r < 0 || !(c->record || c->stale))
		return r;
	const char *ins[] = {node,
			     agent,
			     task,
			     c->model ? c->model : "",
			     pg_int(b[1], u.input),
			     pg_int(b[2], u.output),
			     pg_int(b[3], u.cache_write),
			     pg_int(b[4], u.cache_read),
			     pg_int(b[5], micro),
			     c->stale	  ? "stale"
			     : c->outcome ? c->outcome
					  : "ok",
			     pg_int(b[6], store_now_ms())};
	return pg_run(
		&p->conn, PGS_LLM_SPEND,
		"INSERT INTO llm_spend (node, agent, task, model, input_tokens,"
		" output_tokens, cache_write_tokens, cache_read_tokens, micro, outcome, at_ms)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
		11, ins, NULL, c->err);
}

int pg_llm_settle(struct store *s, int64_t id, const char *model, const struct llm_usage *u,
		  int64_t micro, const char *outcome, struct orch_error *err)
{
	struct finish_ctx c = {store_pg(s), id, model, u, micro, outcome, true, false, err};

	if (micro < 0 || !u)
		return orch_err(err, -EINVAL, "llm ledger: bad settlement");
	return pg_transaction(&c.p->conn, finish_in, &c, err);
}

int pg_llm_release(struct store *s, int64_t id, struct orch_error *err)
{
	struct finish_ctx c = {store_pg(s), id, NULL, NULL, 0, NULL, false, false, err};

	return pg_transaction(&c.p->conn, finish_in, &c, err);
}

/* Inside a transaction: charges every reservation of node at its worst case. */
int pg_llm_settle_node(struct store_pg *p, const char *node, struct orch_error *err)
{
	const char *v[] = {node};
	PGresult *res = NULL;
	int r, n;

	r = pg_run(&p->conn, PGS_LLM_STALE,
		   "SELECT id FROM llm_reservation WHERE node = $1 ORDER BY id FOR UPDATE", 1, v,
		   &res, err);
	if (r < 0)
		return r;
	n = PQntuples(res);
	for (int i = 0; r >= 0 && i < n; i++) {
		struct finish_ctx c = {p,  pg_col_int(res, i, 0, 0), "", NULL, 0, NULL, false, true,
				       err};
		r = finish_in(&c);
	}
	PQclear(res);
	return r < 0 ? r : n;
}

struct stale_ctx {
	struct store_pg *p;
	int n;
	struct orch_error *err;
};

static int stale_in(void *data)
{
	struct stale_ctx *c = data;

	c->n = pg_llm_settle_node(c->p, c->p->node, c->err);
	return c->n;
}

int pg_llm_settle_stale(struct store *s, struct orch_error *err)
{
	struct stale_ctx c = {store_pg(s), 0, err};
	int r = pg_transaction(&c.p->conn, stale_in, &c, err);

	return r < 0 ? r : c.n;
}

int pg_llm_totals(struct store *s, store_llm_total_cb cb, void *data, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {p->node};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_LLM_TOTALS,
		   "SELECT model, count(*), sum(input_tokens), sum(output_tokens),"
		   " sum(cache_write_tokens), sum(cache_read_tokens), sum(micro)"
		   " FROM llm_spend WHERE node = $1 GROUP BY model ORDER BY model",
		   1, v, &res, err);
	if (r < 0)
		return r;
	for (int i = 0; r >= 0 && i < PQntuples(res); i++) {
		struct store_llm_total t = {
			.model = PQgetvalue(res, i, 0),
			.requests = pg_col_int(res, i, 1, 0),
			.input = pg_col_int(res, i, 2, 0),
			.output = pg_col_int(res, i, 3, 0),
			.cache_write = pg_col_int(res, i, 4, 0),
			.cache_read = pg_col_int(res, i, 5, 0),
			.micro = pg_col_int(res, i, 6, 0),
		};
		r = cb(&t, data);
	}
	PQclear(res);
	return r < 0 ? r : 0;
}
