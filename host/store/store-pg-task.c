/* SPDX-License-Identifier: Apache-2.0 */
/* Task transitions and output in PostgreSQL. Each is one statement (one transaction, one
 * round trip) whose WHERE clause names the states it may leave and, for a slot's
 * messages, the attempt and this node: a stale transition changes nothing (-ESTALE). Each
 * tells the other nodes with pg_notify in the same statement (delivered at commit):
 * orch_tasks (the queue changed: lease), orch_done (a task ended: wake its waiters),
 * orch_output (output arrived), orch_cancel (cancel a task where it runs). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "store-pg.h"

/* Runs a statement expected to touch one row; -ESTALE when it touched none. */
static int one(struct store_pg *p, unsigned stmt, const char *sql, int n, const char *const *v,
	       int64_t id, PGresult **ret, struct orch_error *err)
{
	PGresult *res = NULL;
	int r = pg_run(&p->conn, stmt, sql, n, v, &res, err);

	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return orch_err(err, -ESTALE, "task %lld is not in a state that allows this",
				(long long)id);
	}
	if (ret)
		*ret = res;
	else
		PQclear(res);
	return 0;
}

int pg_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		   struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	_cleanup_free_ char *argv = store_strv_json(spec->argv, spec->argc),
			    *env = store_strv_json(spec->env, spec->n_env),
			    *lim = store_limits_json(&spec->limits),
			    *ro = store_strv_json(spec->ro_paths, spec->n_ro_paths);
	char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF], b4[PG_INT_BUF];
	const char *v[] = {pg_int(b1, spec->priority),
			   argv,
			   env,
			   spec->cwd,
			   spec->vm,
			   spec->slot >= 0 ? pg_int(b2, spec->slot) : NULL,
			   spec->profile,
			   lim,
			   pg_int(b3, spec->retries),
			   pg_int(b4, store_now_ms()),
			   ro};
	PGresult *res = NULL;
	int r;

	if (!argv || !env || !lim || !ro)
		return orch_err(err, -ENOMEM, "out of memory");
	r = pg_run(&p->conn, PGS_TASK_INSERT,
		   "WITH t AS (INSERT INTO tasks (state, priority, argv, env, cwd, want_vm,"
		   " want_slot, profile, limits, retries_left, created_at, ro_paths)"
		   " VALUES ('queued', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id)"
		   " SELECT id, pg_notify('orch_tasks', '') FROM t",
		   11, v, &res, err);
	if (r < 0)
		return r;
	*ret_id = pg_col_int(res, 0, 0, 0);
	PQclear(res);
	return 0;
}

/* One BEGIN .. COMMIT around every insert (store.h). The notifications of the inserts go
 * out once, at the commit. */
size_t pg_task_insert_many(struct store *s, struct task_insert *t, size_t n)
{
	struct store_pg *p = store_pg(s);
	struct orch_error err;
	size_t i;

	orch_err_clear(&err);
	if (pg_conn_ensure(&p->conn, &err) < 0 || pg_exec(&p->conn, "BEGIN", &err) < 0)
		return store_insert_none(t, n, &err);
	for (i = 0; i < n; i++)
		if (pg_task_insert(s, t[i].spec, &t[i].id, &t[i].err) < 0)
			break;
	if (i < n) {
		if (pg_conn_up(&p->conn))
			(void)pg_exec(&p->conn, "ROLLBACK", NULL);
		return store_insert_one_by_one(s, t, n);
	}
	/* A COMMIT whose answer is lost may have committed: reported as failed all the same
	 * (never a success that is not known to be durable), and never retried. */
	if (pg_exec(&p->conn, "COMMIT", &err) < 0)
		return store_insert_none(t, n, &err);
	return n;
}

int pg_task_get(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF], sql[1024];
	const char *v[] = {pg_int(b, id)};
	PGresult *res = NULL;
	struct task_row *t;
	int r;

	snprintf(sql, sizeof(sql), "SELECT %s FROM tasks WHERE id = $1", pg_task_columns);
	r = pg_run(&p->conn, PGS_TASK_GET, sql, 1, v, &res, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return orch_err(err, -ENOENT, "no task %lld", (long long)id);
	}
	t = pg_task_row(res, 0);
	PQclear(res);
	if (!t)
		return orch_err(err, -ENOMEM, "out of memory");
	*ret = t;
	return 0;
}

#define PG_ELIGIBLE                                               \
	"state = 'queued' AND (want_vm IS NULL OR want_vm = $1)"  \
	" AND (want_slot IS NULL OR want_slot = $2)"              \
	" AND (profile IS NULL OR $3::text IS NULL OR profile IN" \
	"  (SELECT json_array_elements_text($3::json)))"

int pg_task_next(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
		 int64_t *ret_id, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF];
	const char *v[] = {vm, pg_int(b, slot), profiles_json};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_TASK_NEXT,
		   "SELECT id FROM tasks WHERE " PG_ELIGIBLE " ORDER BY priority DESC, id LIMIT 1",
		   3, v, &res, err);
	if (r < 0)
		return r;
	*ret_id = PQntuples(res) ? pg_col_int(res, 0, 0, 0) : 0;
	PQclear(res);
	return 0;
}

int pg_task_lease(struct store *s, int64_t id, const char *vm, int64_t slot, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF];
	const char *v[] = {pg_int(b1, id), vm, pg_int(b2, slot), pg_int(b3, store_now_ms()),
			   p->node};

	return one(p, PGS_TASK_LEASE,
		   "UPDATE tasks SET state = 'leased', vm = $2, slot = $3, leased_at = $4,"
		   " node = $5, attempts = attempts + 1, output_bytes = 0"
		   " WHERE id = $1 AND state = 'queued' RETURNING id",
		   5, v, id, NULL, err);
}

int pg_task_lease_next(struct store *s, const char *class_name, const char *vm, int64_t slot,
		       const char *profiles_json, struct task_row **ret, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF], sql[2048];
	const char *v[] = {class_name,	  pg_int(b1, slot),
			   profiles_json, pg_int(b2, store_now_ms()),
			   p->node,	  vm};
	PGresult *res = NULL;
	int r;

	*ret = NULL;
	/* SKIP LOCKED: a row another node is leasing right now is passed over, not waited
	 * for, so nodes leasing at once take different tasks without blocking each other. */
	snprintf(sql, sizeof(sql),
		 "WITH c AS (SELECT id AS cid FROM tasks WHERE " PG_ELIGIBLE
		 " ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
		 " UPDATE tasks SET state = 'leased', vm = $6, slot = $2, leased_at = $4,"
		 " node = $5, attempts = attempts + 1, output_bytes = 0"
		 " FROM c WHERE id = c.cid RETURNING %s",
		 pg_task_columns);
	r = pg_run(&p->conn, PGS_TASK_LEASE_NEXT, sql, 6, v, &res, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1 && !(*ret = pg_task_row(res, 0)))
		r = orch_err(err, -ENOMEM, "out of memory");
	PQclear(res);
	return r;
}

int pg_task_running(struct store *s, int64_t id, int64_t attempt, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF];
	const char *v[] = {pg_int(b1, id), pg_int(b2, attempt), pg_int(b3, store_now_ms()),
			   p->node};

	return one(p, PGS_TASK_RUNNING,
		   "UPDATE tasks SET state = 'running', started_at = $3"
		   " WHERE id = $1 AND state = 'leased'"
		   " AND ($2 = 0 OR (attempts = $2 AND node = $4)) RETURNING id",
		   4, v, id, NULL, err);
}

int pg_task_finish(struct store *s, int64_t id, const struct task_result *res,
		   struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[9][PG_INT_BUF];
	const char *v[] = {pg_int(b[0], id),
			   task_state_name(res->state),
			   pg_int(b[1], store_now_ms()),
			   res->exit_code >= 0 ? pg_int(b[2], res->exit_code) : NULL,
			   pg_int(b[3], res->signal),
			   pg_int(b[4], res->duration_ms),
			   pg_int(b[5], res->utime_ms),
			   pg_int(b[6], res->stime_ms),
			   pg_int(b[7], res->maxrss_kb),
			   res->reason && *res->reason ? res->reason : NULL,
			   pg_int(b[8], res->attempt),
			   p->node};

	return one(p, PGS_TASK_FINISH,
		   "WITH u AS (UPDATE tasks SET state = $2, finished_at = $3, exit_code = $4,"
		   " signal = $5, duration_ms = $6, utime_ms = $7, stime_ms = $8, maxrss_kb = $9,"
		   " reason = $10 WHERE id = $1 AND state IN ('queued', 'leased', 'running')"
		   " AND ($11 = 0 OR (attempts = $11 AND node = $12)) RETURNING id)"
		   " SELECT id, pg_notify('orch_done', id::text) FROM u",
		   12, v, id, NULL, err);
}

int pg_task_lost(struct store *s, int64_t id, int64_t attempt, const char *reason,
		 bool *ret_requeued, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF];
	const char *v[] = {pg_int(b1, id), reason, pg_int(b2, store_now_ms()), pg_int(b3, attempt),
			   p->node};
	PGresult *res = NULL;
	int r;

	r = one(p, PGS_TASK_LOST,
		"WITH u AS (UPDATE tasks SET"
		" state = CASE WHEN retries_left > 0 AND NOT cancel_requested"
		"   THEN 'queued' ELSE 'lost' END,"
		" finished_at = CASE WHEN retries_left > 0 AND NOT cancel_requested"
		"   THEN NULL ELSE $3::bigint END,"
		" vm = CASE WHEN retries_left > 0 AND NOT cancel_requested THEN NULL ELSE vm END,"
		" slot = CASE WHEN retries_left > 0 AND NOT cancel_requested THEN NULL ELSE slot "
		"END,"
		" retries_left = GREATEST(retries_left - 1, 0), lost_count = lost_count + 1,"
		" reason = $2"
		" WHERE id = $1 AND state IN ('leased', 'running')"
		" AND ($4 = 0 OR (attempts = $4 AND node = $5)) RETURNING id, state)"
		" SELECT state, pg_notify('orch_tasks', ''), pg_notify('orch_done', id::text) FROM "
		"u",
		5, v, id, &res, err);
	if (r < 0)
		return r;
	if (ret_requeued)
		*ret_requeued = strcmp(PQgetvalue(res, 0, 0), "queued") == 0;
	PQclear(res);
	return 0;
}

int pg_task_unlease(struct store *s, int64_t id, int64_t attempt, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF];
	const char *v[] = {pg_int(b1, id), pg_int(b2, attempt), p->node};

	return one(p, PGS_TASK_UNLEASE,
		   "WITH u AS (UPDATE tasks SET state = 'queued', vm = NULL, slot = NULL,"
		   " leased_at = NULL, node = NULL WHERE id = $1 AND state = 'leased'"
		   " AND ($2 = 0 OR (attempts = $2 AND node = $3)) RETURNING id)"
		   " SELECT id, pg_notify('orch_tasks', '') FROM u",
		   3, v, id, NULL, err);
}

int pg_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
		      struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[40], b3[PG_INT_BUF];
	const char *v[] = {pg_int(b1, id), b2, pg_int(b3, tokens)};

	snprintf(b2, sizeof(b2), "%.17g", usd);
	return one(p, PGS_TASK_SPEND,
		   "UPDATE tasks SET spend_usd = $2, spend_tokens = $3 WHERE id = $1 RETURNING id",
		   3, v, id, NULL, err);
}

int pg_task_set_cancel(struct store *s, int64_t id, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF];
	const char *v[] = {pg_int(b, id)};

	return one(p, PGS_TASK_CANCEL,
		   "WITH u AS (UPDATE tasks SET cancel_requested = true"
		   " WHERE id = $1 AND state IN ('queued', 'leased', 'running') RETURNING id)"
		   " SELECT id, pg_notify('orch_cancel', id::text) FROM u",
		   1, v, id, NULL, err);
}

/* An array literal of n elements made by put(i, buf) (the caller's own escaping). */
static char *array_of(size_t n, size_t each_max, void (*put)(size_t i, char *out, void *data),
		      void *data)
{
	char *a = malloc(n * (each_max + 1) + 3), *at = a;

	if (!a)
		return NULL;
	*at++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i)
			*at++ = ',';
		put(i, at, data);
		at += strlen(at);
	}
	*at++ = '}';
	*at = 0;
	return a;
}

struct out_ctx {
	int64_t first_seq;
	const struct output_seg *rows;
	const unsigned char *data;
	size_t *offs;
};

static void put_seq(size_t i, char *out, void *data)
{
	struct out_ctx *c = data;

	sprintf(out, "%lld", (long long)(c->first_seq + (int64_t)i));
}

static void put_stream(size_t i, char *out, void *data)
{
	struct out_ctx *c = data;

	sprintf(out, "%d", c->rows[i].stream);
}

/* "\\x<hex>": bytea's hex input inside a quoted array element. */
static void put_bytes(size_t i, char *out, void *data)
{
	static const char hex[] = "0123456789abcdef";
	struct out_ctx *c = data;
	const unsigned char *b = c->data + c->offs[i];

	memcpy(out, "\"\\\\x", 4);
	out += 4;
	for (int64_t k = 0; k < c->rows[i].len; k++) {
		*out++ = hex[b[k] >> 4];
		*out++ = hex[b[k] & 15];
	}
	memcpy(out, "\"", 2);
}

int pg_output_add(struct store *s, int64_t task, int64_t attempt, int64_t first_seq, int64_t offset,
		  const struct output_seg *rows, size_t n, const void *data, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	_cleanup_free_ size_t *offs = NULL;
	_cleanup_free_ char *seqs = NULL, *streams = NULL, *bytes = NULL;
	char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF], b4[PG_INT_BUF];
	struct out_ctx c = {first_seq, rows, data, NULL};
	size_t total = 0, longest = 0;

	(void)offset; /* the bytes are in the row, not in a spool */
	if (n == 0)
		return 0;
	if (!data)
		return orch_err(err, -EINVAL, "store: PostgreSQL keeps output bytes, none given");
	if (!(offs = calloc(n, sizeof(*offs))))
		return orch_err(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		offs[i] = total;
		total += (size_t)rows[i].len;
		if ((size_t)rows[i].len > longest)
			longest = (size_t)rows[i].len;
	}
	c.offs = offs;
	seqs = array_of(n, PG_INT_BUF, put_seq, &c);
	streams = array_of(n, 4, put_stream, &c);
	bytes = array_of(n, 2 * longest + 8, put_bytes, &c);
	if (!seqs || !streams || !bytes)
		return orch_err(err, -ENOMEM, "out of memory");
	const char *v[] = {pg_int(b1, task),
			   pg_int(b2, attempt),
			   p->node,
			   pg_int(b3, first_seq + (int64_t)n),
			   pg_int(b4, (int64_t)total),
			   seqs,
			   streams,
			   bytes};
	/* Only while this node holds the attempt: a node whose lease was taken away adds
	 * nothing to the task another node now runs. */
	return one(p, PGS_OUTPUT_ADD,
		   "WITH t AS (UPDATE tasks SET output_seq = $4, output_bytes = output_bytes + $5"
		   " WHERE id = $1 AND attempts = $2 AND node = $3"
		   " AND state IN ('leased', 'running') RETURNING id),"
		   " i AS (INSERT INTO output (task, seq, attempt, stream, data)"
		   " SELECT t.id, u.s, $2, u.st, u.d FROM t,"
		   " unnest($6::bigint[], $7::smallint[], $8::bytea[]) AS u(s, st, d))"
		   " SELECT id, pg_notify('orch_output', id::text) FROM t",
		   8, v, task, NULL, err);
}

int pg_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		   struct output_ref **ret, size_t *ret_n, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b1[PG_INT_BUF], b2[PG_INT_BUF], b3[PG_INT_BUF], b4[PG_INT_BUF];
	const char *v[] = {pg_int(b1, task), pg_int(b2, from_seq), pg_int(b3, (int64_t)max),
			   pg_int(b4, attempt)};
	struct output_ref *refs;
	PGresult *res = NULL;
	size_t total = 0;
	char *at;
	int r, n;

	r = pg_run(&p->conn, PGS_OUTPUT_LIST,
		   "SELECT seq, stream, attempt, data FROM output"
		   " WHERE task = $1 AND seq >= $2 AND ($4 = 0 OR attempt = $4)"
		   " ORDER BY seq LIMIT $3",
		   4, v, &res, err);
	if (r < 0)
		return r;
	n = PQntuples(res);
	if (n < 0 || (size_t)n > max)
		n = 0;
	for (int i = 0; i < n; i++)
		total += (size_t)PQgetlength(res, i, 3) / 2; /* "\x" + two digits a byte */
	/* one allocation: the array, then the bytes it points to */
	size_t head = ((size_t)n + 1) * sizeof(*refs);
	refs = total <= SIZE_MAX / 2 ? calloc(1, head + total + 1) : NULL;
	if (!refs) {
		PQclear(res);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	at = (char *)refs + head;
	for (int i = 0; i < n; i++) {
		const char *hex = PQgetvalue(res, i, 3) + 2;
		size_t len = strlen(hex) / 2;

		for (size_t k = 0; k < len; k++) {
			unsigned hi = (unsigned)(hex[2 * k] <= '9' ? hex[2 * k] - '0'
								   : hex[2 * k] - 'a' + 10);
			unsigned lo = (unsigned)(hex[2 * k + 1] <= '9' ? hex[2 * k + 1] - '0'
								       : hex[2 * k + 1] - 'a' + 10);
			at[k] = (char)(hi << 4 | lo);
		}
		refs[i] = (struct output_ref){
			.seq = pg_col_int(res, i, 0, 0),
			.stream = (int)pg_col_int(res, i, 1, 1),
			.attempt = pg_col_int(res, i, 2, 1),
			.offset = 0,
			.length = (int64_t)len,
			.data = at,
		};
		at += len;
	}
	PQclear(res);
	*ret = refs;
	*ret_n = (size_t)n;
	return 0;
}
