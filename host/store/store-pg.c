/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL store: connection, migrations, task rows, lists and counts, VMs, and its
 * table of operations. Transitions and output are store-pg-task.c, the ledger
 * store-pg-ledger.c, nodes store-pg-node.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "pg-schema.h"
#include "store-pg.h"

#define PG_MIGRATE_LOCK "7275636800" /* pg_advisory_xact_lock key: "orch" */

const char pg_task_columns[] =
	"id, state, priority, argv, env, cwd, want_vm, want_slot, vm, slot, profile, limits,"
	" retries_left, attempts, lost_count, cancel_requested, created_at, leased_at,"
	" started_at, finished_at, exit_code, signal, duration_ms, utime_ms, stime_ms,"
	" maxrss_kb, reason, spend_usd, spend_tokens, output_seq, output_bytes, ro_paths";

struct task_row *pg_task_row(const PGresult *res, int i)
{
	struct task_row *t = calloc(1, sizeof(*t));
	int st;

	if (!t)
		return NULL;
	t->id = pg_col_int(res, i, 0, 0);
	st = task_state_from_name(PQgetvalue(res, i, 1));
	t->state = st < 0 ? TASK_FAILED : (enum task_state)st;
	t->priority = pg_col_int(res, i, 2, 0);
	t->argv_json = pg_col_str(res, i, 3);
	t->env_json = pg_col_str(res, i, 4);
	t->cwd = pg_col_str(res, i, 5);
	t->want_vm = pg_col_str(res, i, 6);
	t->want_slot = pg_col_int(res, i, 7, -1);
	t->vm = pg_col_str(res, i, 8);
	t->slot = pg_col_int(res, i, 9, -1);
	t->profile = pg_col_str(res, i, 10);
	store_limits_parse(PQgetvalue(res, i, 11), &t->limits);
	t->retries_left = pg_col_int(res, i, 12, 0);
	t->attempts = pg_col_int(res, i, 13, 0);
	t->lost_count = pg_col_int(res, i, 14, 0);
	t->cancel_requested = PQgetvalue(res, i, 15)[0] == 't';
	t->created_at = pg_col_int(res, i, 16, 0);
	t->leased_at = pg_col_int(res, i, 17, 0);
	t->started_at = pg_col_int(res, i, 18, 0);
	t->finished_at = pg_col_int(res, i, 19, 0);
	t->exit_code = pg_col_int(res, i, 20, -1);
	t->signal = pg_col_int(res, i, 21, 0);
	t->duration_ms = pg_col_int(res, i, 22, 0);
	t->utime_ms = pg_col_int(res, i, 23, 0);
	t->stime_ms = pg_col_int(res, i, 24, 0);
	t->maxrss_kb = pg_col_int(res, i, 25, 0);
	t->reason = pg_col_str(res, i, 26);
	t->spend_usd = strtod(PQgetvalue(res, i, 27), NULL);
	t->spend_tokens = pg_col_int(res, i, 28, 0);
	t->output_seq = pg_col_int(res, i, 29, 0);
	t->output_bytes = pg_col_int(res, i, 30, 0);
	t->ro_paths_json = pg_col_str(res, i, 31);
	if (!t->argv_json || !t->env_json || !t->ro_paths_json) {
		task_row_free(t);
		return NULL;
	}
	return t;
}

int pg_transaction(struct pg_conn *pc, int (*fn)(void *data), void *data, struct orch_error *err)
{
	int r;

	if ((r = pg_conn_ensure(pc, err)) < 0 || (r = pg_exec(pc, "BEGIN", err)) < 0)
		return r;
	r = fn(data);
	if (r >= 0)
		r = pg_exec(pc, "COMMIT", err);
	if (r < 0 && pg_conn_up(pc))
		(void)pg_exec(pc, "ROLLBACK", NULL);
	return r;
}

int pg_schema_version(struct pg_conn *pc, struct orch_error *err)
{
	PGresult *res = NULL;
	int v, r;

	r = pg_run(pc, _PGS_MAX, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL, &res,
		   err);
	if (r < 0)
		return r;
	v = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	if (!v)
		return 0;
	r = pg_run(pc, _PGS_MAX + 1, "SELECT version FROM schema_version", 0, NULL, &res, err);
	if (r < 0)
		return r;
	v = PQntuples(res) ? (int)pg_col_int(res, 0, 0, 0) : 0;
	PQclear(res);
	return v;
}

struct migrate_ctx {
	struct pg_conn *pc;
	int found;
	struct orch_error *err;
};

static int migrate_in(void *data)
{
	struct migrate_ctx *c = data;
	struct pg_conn *pc = c->pc;
	char sql[96];
	int v, r;

	if ((r = pg_exec(pc, "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ")", c->err)) < 0 ||
	    (r = pg_exec(pc,
			 "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
			 "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS"
			 " (SELECT 1 FROM schema_version)",
			 c->err)) < 0)
		return r;
	v = pg_schema_version(pc, c->err);
	if (v < 0)
		return v;
	c->found = v;
	if ((size_t)v > store_n_migrations)
		return orch_err(c->err, -EPROTONOSUPPORT,
				"store: the database's schema version %d is newer than this "
				"orchd's (%zu); upgrade this node",
				v, store_n_migrations);
	for (size_t i = (size_t)v; i < store_n_migrations; i++) {
		const char *sql_i = store_migrations[i].postgresql;

		if (sql_i && (r = pg_exec(pc, sql_i, c->err)) < 0)
			return orch_err_prefix(c->err, "store: migration %zu", i + 1);
		snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %zu", i + 1);
		if ((r = pg_exec(pc, sql, c->err)) < 0)
			return r;
	}
	return 0;
}

int pg_migrate(struct pg_conn *pc, int *ret_version, struct orch_error *err)
{
	struct migrate_ctx c = {.pc = pc, .err = err};
	int r;

	r = pg_transaction(pc, migrate_in, &c, err);
	if (r >= 0 && ret_version)
		*ret_version = c.found;
	return r;
}

static void pg_close(struct store *s)
{
	struct store_pg *p = store_pg(s);

	pg_conn_done(&p->conn);
	free(p);
}

int store_pg_open(const struct store_config *cfg, const char *node, struct store **ret,
		  struct orch_error *err)
{
	struct store_pg *p;
	char app[96];
	int r;

	if (!store_node_name_valid(node))
		return orch_err(err, -EINVAL, "store: '%s' is not a valid node name", node);
	p = calloc(1, sizeof(*p));
	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	p->base.ops = &store_pg_ops;
	snprintf(p->node, sizeof(p->node), "%s", node);
	p->base.node = p->node;
	p->node_lease_ms = cfg->node_lease_ms;
	snprintf(app, sizeof(app), "orchd %s", node);
	r = pg_conn_init(&p->conn, cfg, app, err);
	if (r >= 0)
		r = pg_migrate(&p->conn, NULL, err);
	if (r < 0) {
		pg_close(&p->base);
		return r;
	}
	*ret = &p->base;
	return 0;
}

static int pg_version(struct store *s)
{
	return pg_schema_version(&store_pg(s)->conn, NULL);
}

static int ids_of(PGresult *res, int64_t **ret_ids, size_t *ret_n, struct orch_error *err)
{
	int n = PQntuples(res);
	int64_t *ids = calloc(n ? (size_t)n : 1, sizeof(*ids));

	if (!ids)
		return orch_err(err, -ENOMEM, "out of memory");
	for (int i = 0; i < n; i++)
		ids[i] = pg_col_int(res, i, 0, 0);
	*ret_ids = ids;
	*ret_n = (size_t)n;
	return 0;
}

static int pg_tasks_active(struct store *s, int64_t **ret_ids, size_t *ret_n,
			   struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {p->node};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_TASKS_ACTIVE,
		   "SELECT id FROM tasks WHERE node = $1 AND state IN ('leased', 'running')"
		   " ORDER BY id",
		   1, v, &res, err);
	if (r < 0)
		return r;
	r = ids_of(res, ret_ids, ret_n, err);
	PQclear(res);
	return r;
}

static int pg_task_list(struct store *s, int state, int64_t limit, json_t **ret,
			struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF], sql[1024];
	const char *v[] = {state >= 0 ? task_state_name((enum task_state)state) : NULL,
			   pg_int(b, limit)};
	json_t *a = json_array();
	PGresult *res = NULL;
	int r;

	if (!a)
		return orch_err(err, -ENOMEM, "out of memory");
	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM tasks WHERE ($1::text IS NULL OR state = $1)"
		 " ORDER BY id DESC LIMIT $2",
		 pg_task_columns);
	r = pg_run(&p->conn, PGS_TASK_LIST, sql, 2, v, &res, err);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct task_row *t = pg_task_row(res, i);
		if (t)
			json_array_append_new(a, task_row_to_json(t));
		task_row_free(t);
	}
	PQclear(res);
	*ret = a;
	return 0;
}

static int pg_task_counts(struct store *s, int64_t counts[], struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	PGresult *res = NULL;
	int r;

	for (int i = 0; i < _TASK_STATE_MAX; i++)
		counts[i] = 0;
	r = pg_run(&p->conn, PGS_TASK_COUNTS, "SELECT state, count(*) FROM tasks GROUP BY state", 0,
		   NULL, &res, err);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res); i++) {
		int st = task_state_from_name(PQgetvalue(res, i, 0));
		if (st >= 0)
			counts[st] = pg_col_int(res, i, 1, 0);
	}
	PQclear(res);
	return 0;
}

static int pg_task_prune(struct store *s, int64_t keep, int64_t **ret_ids, size_t *ret_n,
			 struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF];
	const char *v[] = {pg_int(b, keep)};
	PGresult *res = NULL;
	int r;

	*ret_ids = NULL;
	*ret_n = 0;
	if (keep <= 0)
		return 0;
	r = pg_run(&p->conn, PGS_TASK_PRUNE,
		   "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE state IN"
		   " ('succeeded','failed','timed_out','cancelled','lost')"
		   " ORDER BY id DESC OFFSET $1) RETURNING id",
		   1, v, &res, err);
	if (r < 0)
		return r;
	r = ids_of(res, ret_ids, ret_n, err);
	PQclear(res);
	return r;
}

/* A VM is its node's: another node may take the name only once that node is not up. */
static int pg_vm_update(struct store *s, const char *name, const char *backend, int64_t slots,
			const char *state, const char *boot_id, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF];
	const char *v[] = {name,   backend, pg_int(b1, slots),
			   state,  boot_id, pg_int(b2, store_now_ms()),
			   p->node};
	PGresult *res = NULL;
	int r, n;

	r = pg_run(&p->conn, PGS_VM_UPDATE,
		   "INSERT INTO vms (name, backend, slots, state, boot_id, updated_at, node)"
		   " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO UPDATE SET"
		   " backend = $2, slots = $3, state = $4, boot_id = $5, updated_at = $6, node = $7"
		   " WHERE vms.node = $7 OR NOT EXISTS (SELECT 1 FROM nodes"
		   "  WHERE nodes.name = vms.node AND nodes.state = 'up')"
		   " RETURNING 1",
		   7, v, &res, err);
	if (r < 0)
		return r;
	n = PQntuples(res);
	PQclear(res);
	if (n == 0)
		return orch_err(err, -EEXIST,
				"vm %s belongs to another node that is up; give this node's VM "
				"another name (VM names are unique in a cluster)",
				name);
	return 0;
}

static int pg_vm_set_cid(struct store *s, const char *name, int64_t cid, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF];
	const char *v[] = {name, pg_int(b, cid), p->node};

	return pg_run(&p->conn, PGS_VM_CID, "UPDATE vms SET cid = $2 WHERE name = $1 AND node = $3",
		      3, v, NULL, err);
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.schema_version = pg_version,
	.task_insert = pg_task_insert,
	.task_insert_many = pg_task_insert_many,
	.task_get = pg_task_get,
	.task_next = pg_task_next,
	.task_lease = pg_task_lease,
	.task_lease_next = pg_task_lease_next,
	.task_running = pg_task_running,
	.task_finish = pg_task_finish,
	.task_lost = pg_task_lost,
	.task_unlease = pg_task_unlease,
	.task_set_spend = pg_task_set_spend,
	.task_set_cancel = pg_task_set_cancel,
	.tasks_active = pg_tasks_active,
	.task_list = pg_task_list,
	.task_counts = pg_task_counts,
	.task_prune = pg_task_prune,
	.vm_update = pg_vm_update,
	.vm_set_cid = pg_vm_set_cid,
	.output_add = pg_output_add,
	.output_list = pg_output_list,
	.llm_get = pg_llm_get,
	.llm_set_limit = pg_llm_set_limit,
	.llm_reset_spend = pg_llm_reset_spend,
	.llm_foreach = pg_llm_foreach,
	.llm_drop = pg_llm_drop,
	.llm_reserve = pg_llm_reserve,
	.llm_settle = pg_llm_settle,
	.llm_release = pg_llm_release,
	.llm_settle_stale = pg_llm_settle_stale,
	.llm_totals = pg_llm_totals,
};
