/* SPDX-License-Identifier: Apache-2.0 */
/* Task rows and the output index. Each transition is one transaction whose WHERE clause
 * names the states it may leave, so a stale transition changes nothing (-ESTALE). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "sqlite-util.h"
#include "store.h"

static const char *const state_names[] = {
	[TASK_QUEUED] = "queued",	[TASK_LEASED] = "leased", [TASK_RUNNING] = "running",
	[TASK_SUCCEEDED] = "succeeded", [TASK_FAILED] = "failed", [TASK_TIMED_OUT] = "timed_out",
	[TASK_CANCELLED] = "cancelled", [TASK_LOST] = "lost",
};

const char *task_state_name(enum task_state s)
{
	return (unsigned)s < _TASK_STATE_MAX ? state_names[s] : "?";
}

int task_state_from_name(const char *s)
{
	for (int i = 0; i < _TASK_STATE_MAX; i++)
		if (strcmp(state_names[i], s) == 0)
			return i;
	return -EINVAL;
}

static int prep(struct store *s, const char *sql, sqlite3_stmt **ret, struct orch_error *err)
{
	int r = sql_prepare(store_db(s), sql, ret, err);
	return r < 0 ? orch_err_prefix(err, "store") : 0;
}

static int step_done(struct store *s, sqlite3_stmt *st, struct orch_error *err)
{
	return sql_step_done(store_db(s), st, "store", err);
}

static char *strv_json(const char *const *v, size_t n)
{
	_cleanup_json_ json_t *a = json_array();

	if (!a)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) < 0)
			return NULL;
	return json_dumps(a, JSON_COMPACT);
}

static char *limits_json(const struct orchd_limits *l)
{
	_cleanup_json_ json_t *o =
		json_pack("{sIsIsIsIsIsI}", "timeout_ms", (json_int_t)l->timeout_ms, "memory_mib",
			  (json_int_t)l->memory_mib, "pids", (json_int_t)l->pids, "cpu_percent",
			  (json_int_t)l->cpu_percent, "nofile", (json_int_t)l->nofile, "fsize_mib",
			  (json_int_t)l->fsize_mib);
	return o ? json_dumps(o, JSON_COMPACT) : NULL;
}

static void limits_parse(const char *text, struct orchd_limits *l)
{
	_cleanup_json_ json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	json_int_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0;

	if (o && json_unpack(o, "{s?I s?I s?I s?I s?I s?I}", "timeout_ms", &a, "memory_mib", &b,
			     "pids", &c, "cpu_percent", &d, "nofile", &e, "fsize_mib", &f) == 0)
		*l = (struct orchd_limits){a, b, c, d, e, f};
}

int store_task_insert(struct store *s, const struct task_spec *spec, int64_t *ret_id,
		      struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ char *argv = NULL, *env = NULL, *lim = NULL, *ro = NULL;
	int r;

	argv = strv_json(spec->argv, spec->argc);
	env = strv_json(spec->env, spec->n_env);
	lim = limits_json(&spec->limits);
	ro = strv_json(spec->ro_paths, spec->n_ro_paths);
	if (!argv || !env || !lim || !ro)
		return orch_err(err, -ENOMEM, "out of memory");
	r = prep(s,
		 "INSERT INTO tasks (state, priority, argv, env, cwd, want_vm, want_slot, profile,"
		 " limits, retries_left, created_at, ro_paths)"
		 " VALUES ('queued',?,?,?,?,?,?,?,?,?,?,?)",
		 &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, spec->priority);
	sqlite3_bind_text(st, 2, argv, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, env, -1, SQLITE_STATIC);
	sql_bind_text_or_null(st, 4, spec->cwd);
	sql_bind_text_or_null(st, 5, spec->vm);
	if (spec->slot >= 0)
		sqlite3_bind_int64(st, 6, spec->slot);
	sql_bind_text_or_null(st, 7, spec->profile);
	sqlite3_bind_text(st, 8, lim, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, spec->retries);
	sqlite3_bind_int64(st, 10, store_now_ms());
	sqlite3_bind_text(st, 11, ro, -1, SQLITE_STATIC);
	if ((r = step_done(s, st, err)) < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(store_db(s));
	return 0;
}

void task_row_free(struct task_row *t)
{
	if (!t)
		return;
	free(t->argv_json);
	free(t->env_json);
	free(t->cwd);
	free(t->want_vm);
	free(t->vm);
	free(t->profile);
	free(t->ro_paths_json);
	free(t->reason);
	free(t);
}

#define TASK_COLUMNS                                                                          \
	"id, state, priority, argv, env, cwd, want_vm, want_slot, vm, slot, profile, limits," \
	" retries_left, attempts, lost_count, cancel_requested, created_at, leased_at,"       \
	" started_at, finished_at, exit_code, signal, duration_ms, utime_ms, stime_ms,"       \
	" maxrss_kb, reason, spend_usd, spend_tokens, output_seq, output_bytes, ro_paths"

static char *col_str(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v ? strdup((const char *)v) : NULL;
}

static int64_t col_int(sqlite3_stmt *st, int i, int64_t dflt)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? dflt : sqlite3_column_int64(st, i);
}

static struct task_row *row_from_stmt(sqlite3_stmt *st)
{
	struct task_row *t = calloc(1, sizeof(*t));
	int st_idx;

	if (!t)
		return NULL;
	t->id = sqlite3_column_int64(st, 0);
	st_idx = task_state_from_name((const char *)sqlite3_column_text(st, 1));
	t->state = st_idx < 0 ? TASK_FAILED : (enum task_state)st_idx;
	t->priority = sqlite3_column_int64(st, 2);
	t->argv_json = col_str(st, 3);
	t->env_json = col_str(st, 4);
	t->cwd = col_str(st, 5);
	t->want_vm = col_str(st, 6);
	t->want_slot = col_int(st, 7, -1);
	t->vm = col_str(st, 8);
	t->slot = col_int(st, 9, -1);
	t->profile = col_str(st, 10);
	limits_parse((const char *)sqlite3_column_text(st, 11), &t->limits);
	t->retries_left = col_int(st, 12, 0);
	t->attempts = col_int(st, 13, 0);
	t->lost_count = col_int(st, 14, 0);
	t->cancel_requested = col_int(st, 15, 0) != 0;
	t->created_at = col_int(st, 16, 0);
	t->leased_at = col_int(st, 17, 0);
	t->started_at = col_int(st, 18, 0);
	t->finished_at = col_int(st, 19, 0);
	t->exit_code = col_int(st, 20, -1);
	t->signal = col_int(st, 21, 0);
	t->duration_ms = col_int(st, 22, 0);
	t->utime_ms = col_int(st, 23, 0);
	t->stime_ms = col_int(st, 24, 0);
	t->maxrss_kb = col_int(st, 25, 0);
	t->reason = col_str(st, 26);
	t->spend_usd = sqlite3_column_double(st, 27);
	t->spend_tokens = col_int(st, 28, 0);
	t->output_seq = col_int(st, 29, 0);
	t->output_bytes = col_int(st, 30, 0);
	t->ro_paths_json = col_str(st, 31);
	if (!t->argv_json || !t->env_json || !t->ro_paths_json) {
		task_row_free(t);
		return NULL;
	}
	return t;
}

int store_task_get(struct store *s, int64_t id, struct task_row **ret, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	struct task_row *t;
	int r;

	r = prep(s, "SELECT " TASK_COLUMNS " FROM tasks WHERE id = ?", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return orch_err(err, -ENOENT, "no task %lld", (long long)id);
	if (r != SQLITE_ROW)
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	t = row_from_stmt(st);
	if (!t)
		return orch_err(err, -ENOMEM, "out of memory");
	*ret = t;
	return 0;
}

static json_t *json_str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *task_row_to_json(const struct task_row *t)
{
	json_t *o = json_object();
	json_t *argv = json_loads(t->argv_json, 0, NULL);
	json_t *env = json_loads(t->env_json, 0, NULL);

	if (!o) {
		json_decref(argv);
		json_decref(env);
		return NULL;
	}
	json_object_set_new(o, "id", json_integer(t->id));
	json_object_set_new(o, "state", json_string(task_state_name(t->state)));
	json_object_set_new(o, "priority", json_integer(t->priority));
	json_object_set_new(o, "argv", argv ? argv : json_array());
	json_object_set_new(o, "env", env ? env : json_array());
	json_object_set_new(o, "cwd", json_str_or_null(t->cwd));
	json_object_set_new(o, "want_vm", json_str_or_null(t->want_vm));
	json_object_set_new(o, "want_slot",
			    t->want_slot >= 0 ? json_integer(t->want_slot) : json_null());
	json_object_set_new(o, "vm", json_str_or_null(t->vm));
	json_object_set_new(o, "slot", t->slot >= 0 ? json_integer(t->slot) : json_null());
	json_object_set_new(o, "profile", json_str_or_null(t->profile));
	json_t *ro = json_loads(t->ro_paths_json, 0, NULL);
	json_object_set_new(o, "ro_paths", json_is_array(ro) ? ro : json_array());
	if (ro && !json_is_array(ro))
		json_decref(ro);
	json_object_set_new(o, "timeout_ms", json_integer(t->limits.timeout_ms));
	json_object_set_new(o, "retries_left", json_integer(t->retries_left));
	json_object_set_new(o, "attempts", json_integer(t->attempts));
	json_object_set_new(o, "lost_count", json_integer(t->lost_count));
	json_object_set_new(o, "cancel_requested", json_boolean(t->cancel_requested));
	json_object_set_new(o, "created_at", json_integer(t->created_at));
	json_object_set_new(o, "started_at",
			    t->started_at ? json_integer(t->started_at) : json_null());
	json_object_set_new(o, "finished_at",
			    t->finished_at ? json_integer(t->finished_at) : json_null());
	json_object_set_new(o, "exit_code",
			    task_state_final(t->state) && t->exit_code >= 0
				    ? json_integer(t->exit_code)
				    : json_null());
	json_object_set_new(o, "signal", t->signal ? json_integer(t->signal) : json_null());
	json_object_set_new(o, "duration_ms", json_integer(t->duration_ms));
	json_object_set_new(o, "rusage",
			    json_pack("{sIsIsI}", "utime_ms", (json_int_t)t->utime_ms, "stime_ms",
				      (json_int_t)t->stime_ms, "maxrss_kb",
				      (json_int_t)t->maxrss_kb));
	json_object_set_new(o, "reason", json_str_or_null(t->reason));
	json_object_set_new(o, "spend_usd", json_real(t->spend_usd));
	json_object_set_new(o, "spend_tokens", json_integer(t->spend_tokens));
	json_object_set_new(o, "output_seq", json_integer(t->output_seq));
	json_object_set_new(o, "output_bytes", json_integer(t->output_bytes));
	return o;
}

int store_task_next(struct store *s, const char *vm, int64_t slot, const char *profiles_json,
		    int64_t *ret_id, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = prep(s,
		 "SELECT id FROM tasks WHERE state = 'queued'"
		 " AND (want_vm IS NULL OR want_vm = ?1) AND (want_slot IS NULL OR want_slot = ?2)"
		 " AND (profile IS NULL OR ?3 IS NULL OR profile IN (SELECT value FROM "
		 "json_each(?3)))"
		 " ORDER BY priority DESC, id LIMIT 1",
		 &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, slot);
	if (profiles_json)
		sqlite3_bind_text(st, 3, profiles_json, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*ret_id = sqlite3_column_int64(st, 0);
	else if (r == SQLITE_DONE)
		*ret_id = 0;
	else
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	return 0;
}

/* Runs one UPDATE; -ESTALE when it matched no row. */
static int update1(struct store *s, sqlite3_stmt *st, int64_t id, struct orch_error *err)
{
	int r = step_done(s, st, err);

	if (r < 0)
		return r;
	if (sqlite3_changes(store_db(s)) == 0)
		return orch_err(err, -ESTALE, "task %lld is not in a state that allows this",
				(long long)id);
	return 0;
}

int store_task_lease(struct store *s, int64_t id, const char *vm, int64_t slot,
		     struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prep(s,
		     "UPDATE tasks SET state = 'leased', vm = ?2, slot = ?3, leased_at = ?4,"
		     " attempts = attempts + 1, output_bytes = 0"
		     " WHERE id = ?1 AND state = 'queued'",
		     &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, slot);
	sqlite3_bind_int64(st, 4, store_now_ms());
	return update1(s, st, id, err);
}

int store_task_running(struct store *s, int64_t id, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prep(s,
		     "UPDATE tasks SET state = 'running', started_at = ?2"
		     " WHERE id = ?1 AND state = 'leased'",
		     &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, store_now_ms());
	return update1(s, st, id, err);
}

int store_task_finish(struct store *s, int64_t id, const struct task_result *res,
		      struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prep(s,
		     "UPDATE tasks SET state = ?2, finished_at = ?3, exit_code = ?4, signal = ?5,"
		     " duration_ms = ?6, utime_ms = ?7, stime_ms = ?8, maxrss_kb = ?9, reason = ?10"
		     " WHERE id = ?1 AND state IN ('queued', 'leased', 'running')",
		     &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, task_state_name(res->state), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, store_now_ms());
	if (res->exit_code >= 0)
		sqlite3_bind_int64(st, 4, res->exit_code);
	sqlite3_bind_int64(st, 5, res->signal);
	sqlite3_bind_int64(st, 6, res->duration_ms);
	sqlite3_bind_int64(st, 7, res->utime_ms);
	sqlite3_bind_int64(st, 8, res->stime_ms);
	sqlite3_bind_int64(st, 9, res->maxrss_kb);
	sql_bind_text_or_null(st, 10, res->reason && *res->reason ? res->reason : NULL);
	return update1(s, st, id, err);
}

int store_task_lost(struct store *s, int64_t id, const char *reason, bool *ret_requeued,
		    struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	r = prep(
		s,
		"UPDATE tasks SET"
		" state = CASE WHEN retries_left > 0 AND cancel_requested = 0"
		"   THEN 'queued' ELSE 'lost' END,"
		" finished_at = CASE WHEN retries_left > 0 AND cancel_requested = 0"
		"   THEN NULL ELSE ?3 END,"
		" vm = CASE WHEN retries_left > 0 AND cancel_requested = 0 THEN NULL ELSE vm END,"
		" slot = CASE WHEN retries_left > 0 AND cancel_requested = 0 THEN NULL ELSE slot "
		"END,"
		" retries_left = MAX(retries_left - 1, 0), lost_count = lost_count + 1, reason = ?2"
		" WHERE id = ?1 AND state IN ('leased', 'running') RETURNING state",
		&st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sql_bind_text_or_null(st, 2, reason);
	sqlite3_bind_int64(st, 3, store_now_ms());
	r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return orch_err(err, -ESTALE, "task %lld is not leased or running", (long long)id);
	if (r != SQLITE_ROW)
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	if (ret_requeued)
		*ret_requeued = strcmp((const char *)sqlite3_column_text(st, 0), "queued") == 0;
	sqlite3_step(st);
	return 0;
}

int store_task_unlease(struct store *s, int64_t id, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prep(s,
		     "UPDATE tasks SET state = 'queued', vm = NULL, slot = NULL, leased_at = NULL"
		     " WHERE id = ?1 AND state = 'leased'",
		     &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return update1(s, st, id, err);
}

int store_task_set_spend(struct store *s, int64_t id, double usd, int64_t tokens,
			 struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prep(s, "UPDATE tasks SET spend_usd = ?2, spend_tokens = ?3 WHERE id = ?1", &st,
		     err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_double(st, 2, usd);
	sqlite3_bind_int64(st, 3, tokens);
	return update1(s, st, id, err);
}

int store_task_set_cancel(struct store *s, int64_t id, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = prep(s,
		     "UPDATE tasks SET cancel_requested = 1"
		     " WHERE id = ?1 AND state IN ('queued', 'leased', 'running')",
		     &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return update1(s, st, id, err);
}

int store_tasks_active(struct store *s, int64_t **ret_ids, size_t *ret_n, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int r;

	r = prep(s, "SELECT id FROM tasks WHERE state IN ('leased', 'running') ORDER BY id", &st,
		 err);
	if (r < 0)
		return r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			int64_t *p = realloc(ids, (cap = cap ? cap * 2 : 16) * sizeof(*ids));
			if (!p)
				return orch_err(err, -ENOMEM, "out of memory");
			ids = p;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	if (r != SQLITE_DONE)
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	*ret_ids = TAKE_PTR(ids);
	*ret_n = n;
	return 0;
}

int store_task_list(struct store *s, int state, int64_t limit, json_t **ret, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_json_ json_t *a = json_array();
	int r;

	if (!a)
		return orch_err(err, -ENOMEM, "out of memory");
	r = prep(s,
		 "SELECT " TASK_COLUMNS " FROM tasks WHERE (?1 IS NULL OR state = ?1)"
		 " ORDER BY id DESC LIMIT ?2",
		 &st, err);
	if (r < 0)
		return r;
	sql_bind_text_or_null(st, 1, state >= 0 ? task_state_name((enum task_state)state) : NULL);
	sqlite3_bind_int64(st, 2, limit);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		struct task_row *t = row_from_stmt(st);
		if (!t)
			return orch_err(err, -ENOMEM, "out of memory");
		json_array_append_new(a, task_row_to_json(t));
		task_row_free(t);
	}
	if (r != SQLITE_DONE)
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	*ret = TAKE_PTR(a);
	return 0;
}

int store_task_counts(struct store *s, int64_t counts[], struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r;

	for (int i = 0; i < _TASK_STATE_MAX; i++)
		counts[i] = 0;
	r = prep(s, "SELECT state, COUNT(*) FROM tasks GROUP BY state", &st, err);
	if (r < 0)
		return r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int i = task_state_from_name((const char *)sqlite3_column_text(st, 0));
		if (i >= 0)
			counts[i] = sqlite3_column_int64(st, 1);
	}
	if (r != SQLITE_DONE)
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	return 0;
}

int store_output_add_rows(struct store *s, int64_t task, int64_t attempt, int64_t first_seq,
			  int64_t offset, const struct output_seg *rows, size_t n,
			  struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL, *up = NULL;
	int64_t at = offset;
	int r;

	if (n == 0)
		return 0;
	r = prep(s,
		 "INSERT INTO output (task, seq, stream, offset, length, attempt)"
		 " VALUES (?,?,?,?,?,?)",
		 &st, err);
	if (r >= 0)
		r = prep(s,
			 "UPDATE tasks SET output_seq = ?2, output_bytes = output_bytes + ?3"
			 " WHERE id = ?1",
			 &up, err);
	if (r < 0)
		return r;
	if ((r = store_begin(s, err)) < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, task);
		sqlite3_bind_int64(st, 2, first_seq + (int64_t)i);
		sqlite3_bind_int(st, 3, rows[i].stream);
		sqlite3_bind_int64(st, 4, at);
		sqlite3_bind_int64(st, 5, rows[i].len);
		sqlite3_bind_int64(st, 6, attempt);
		r = step_done(s, st, err);
		at += rows[i].len;
	}
	if (r >= 0) {
		sqlite3_bind_int64(up, 1, task);
		sqlite3_bind_int64(up, 2, first_seq + (int64_t)n);
		sqlite3_bind_int64(up, 3, at - offset);
		r = step_done(s, up, err);
	}
	if (r < 0) {
		store_rollback(s);
		return r;
	}
	return store_commit(s, err);
}

int store_output_add(struct store *s, int64_t task, int64_t seq, int stream, int64_t offset,
		     int64_t length, struct orch_error *err)
{
	struct output_seg row = {stream, length};

	return store_output_add_rows(s, task, 1, seq, offset, &row, 1, err);
}

int store_output_list(struct store *s, int64_t task, int64_t attempt, int64_t from_seq, size_t max,
		      struct output_ref **ret, size_t *ret_n, struct orch_error *err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	_cleanup_free_ struct output_ref *v = NULL;
	size_t n = 0;
	int r;

	v = calloc(max ? max : 1, sizeof(*v));
	if (!v)
		return orch_err(err, -ENOMEM, "out of memory");
	r = prep(s,
		 "SELECT seq, stream, offset, length, attempt FROM output"
		 " WHERE task = ?1 AND seq >= ?2 AND (?4 = 0 OR attempt = ?4)"
		 " ORDER BY seq LIMIT ?3",
		 &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, task);
	sqlite3_bind_int64(st, 2, from_seq);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	sqlite3_bind_int64(st, 4, attempt);
	while ((r = sqlite3_step(st)) == SQLITE_ROW && n < max) {
		v[n].seq = sqlite3_column_int64(st, 0);
		v[n].stream = sqlite3_column_int(st, 1);
		v[n].offset = sqlite3_column_int64(st, 2);
		v[n].length = sqlite3_column_int64(st, 3);
		v[n].attempt = sqlite3_column_int64(st, 4);
		n++;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		return orch_err(err, -EIO, "store: %s", sqlite3_errmsg(store_db(s)));
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}
