/* SPDX-License-Identifier: Apache-2.0 */
/* The git_tasks table (git-store.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "git-store.h"

static int sql_err(sqlite3 *db, struct orch_error *err, const char *what)
{
	return orch_err(err, -EIO, "git store: %s: %s", what, sqlite3_errmsg(db));
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

static char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	return t ? strdup((const char *)t) : NULL;
}

/* Runs one statement that changes rows; returns the number of rows changed. */
static int exec(struct store *s, sqlite3_stmt *st, const char *what, struct orch_error *err)
{
	sqlite3 *db = store_db(s);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_err(db, err, what);
	return sqlite3_changes(db);
}

static int prep(struct store *s, const char *sql, sqlite3_stmt **st, const char *what,
		struct orch_error *err)
{
	if (sqlite3_prepare_v2(store_db(s), sql, -1, st, NULL) != SQLITE_OK)
		return sql_err(store_db(s), err, what);
	return 0;
}

void git_row_free(struct git_row *r)
{
	if (!r)
		return;
	free(r->repo);
	free(r->ref);
	free(r->prompt);
	free(r->state);
	free(r->base);
	free(r->vm);
	free(r->mount);
	free(r->image);
	free(r->branch);
	free(r->commit);
	free(r->changes);
	free(r->error);
	free(r->pushes);
	free(r);
}

int git_store_insert(struct store *s, int64_t task, const char *repo, const char *ref, int64_t uid,
		     int64_t gid, const char *prompt, struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(
		s, "INSERT INTO git_tasks (task, repo, ref, uid, gid, prompt) VALUES (?,?,?,?,?,?)",
		&st, "insert", err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, task);
	bind_text(st, 2, repo);
	bind_text(st, 3, ref);
	sqlite3_bind_int64(st, 4, uid);
	sqlite3_bind_int64(st, 5, gid);
	bind_text(st, 6, prompt);
	r = exec(s, st, "insert", err);
	return r < 0 ? r : 0;
}

int git_store_get(struct store *s, int64_t task, struct git_row **ret, struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s,
		     "SELECT repo, ref, uid, gid, prompt, state, base, vm, slot, mount, image,"
		     " ws_state, branch, commit_id, files_changed, insertions, deletions, changes,"
		     " error, recorded_at, pushes FROM git_tasks WHERE task = ?",
		     &st, "get", err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, task);
	r = sqlite3_step(st);
	if (r != SQLITE_ROW) {
		sqlite3_finalize(st);
		return r == SQLITE_DONE ? -ENOENT : sql_err(store_db(s), err, "get");
	}
	struct git_row *g = calloc(1, sizeof(*g));
	if (!g) {
		sqlite3_finalize(st);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	g->task = task;
	g->repo = col_text(st, 0);
	g->ref = col_text(st, 1);
	g->uid = sqlite3_column_int64(st, 2);
	g->gid = sqlite3_column_int64(st, 3);
	g->prompt = col_text(st, 4);
	g->state = col_text(st, 5);
	g->base = col_text(st, 6);
	g->vm = col_text(st, 7);
	g->slot = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 8);
	g->mount = col_text(st, 9);
	g->image = col_text(st, 10);
	const unsigned char *ws = sqlite3_column_text(st, 11);
	g->ws_present = ws && strcmp((const char *)ws, "present") == 0;
	g->branch = col_text(st, 12);
	g->commit = col_text(st, 13);
	g->files_changed = sqlite3_column_int64(st, 14);
	g->insertions = sqlite3_column_int64(st, 15);
	g->deletions = sqlite3_column_int64(st, 16);
	g->changes = col_text(st, 17);
	g->error = col_text(st, 18);
	g->recorded_at = sqlite3_column_int64(st, 19);
	g->pushes = col_text(st, 20);
	sqlite3_finalize(st);
	if (!g->repo || !g->state || !g->changes || !g->pushes) {
		git_row_free(g);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	*ret = g;
	return 0;
}

int git_store_set_state(struct store *s, int64_t task, const char *state, const char *error,
			struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s, "UPDATE git_tasks SET state = ?, error = ? WHERE task = ?", &st, "state",
		     err);
	if (r < 0)
		return r;
	bind_text(st, 1, state);
	bind_text(st, 2, error);
	sqlite3_bind_int64(st, 3, task);
	r = exec(s, st, "state", err);
	return r < 0 ? r : 0;
}

int git_store_preparing(struct store *s, int64_t task, const char *vm, int64_t slot,
			const char *image, const char *mount, struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s,
		     "UPDATE git_tasks SET state = 'preparing', vm = ?, slot = ?, image = ?,"
		     " mount = ?, ws_state = 'present', base = NULL, error = NULL WHERE task = ?",
		     &st, "preparing", err);
	if (r < 0)
		return r;
	bind_text(st, 1, vm);
	sqlite3_bind_int64(st, 2, slot);
	bind_text(st, 3, image);
	bind_text(st, 4, mount);
	sqlite3_bind_int64(st, 5, task);
	r = exec(s, st, "preparing", err);
	return r < 0 ? r : 0;
}

int git_store_ready(struct store *s, int64_t task, const char *base, struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s,
		     "UPDATE git_tasks SET state = 'ready', base = ? WHERE task = ? AND state = "
		     "'preparing'",
		     &st, "ready", err);
	if (r < 0)
		return r;
	bind_text(st, 1, base);
	sqlite3_bind_int64(st, 2, task);
	r = exec(s, st, "ready", err);
	if (r < 0)
		return r;
	return r == 0 ? -ESTALE : 0;
}

int git_store_ws_gone(struct store *s, int64_t task, struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s, "UPDATE git_tasks SET ws_state = 'none' WHERE task = ?", &st, "ws", err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, task);
	r = exec(s, st, "ws", err);
	return r < 0 ? r : 0;
}

int git_store_recorded(struct store *s, int64_t task, const struct git_result_stats *res,
		       struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s,
		     "UPDATE git_tasks SET state = 'recorded', error = NULL, branch = ?,"
		     " commit_id = ?, files_changed = ?, insertions = ?, deletions = ?,"
		     " changes = ?, recorded_at = ? WHERE task = ?",
		     &st, "recorded", err);
	if (r < 0)
		return r;
	bind_text(st, 1, res->branch);
	bind_text(st, 2, res->commit);
	sqlite3_bind_int64(st, 3, res->files_changed);
	sqlite3_bind_int64(st, 4, res->insertions);
	sqlite3_bind_int64(st, 5, res->deletions);
	bind_text(st, 6, res->changes ? res->changes : "[]");
	sqlite3_bind_int64(st, 7, store_now_ms());
	sqlite3_bind_int64(st, 8, task);
	r = exec(s, st, "recorded", err);
	return r < 0 ? r : 0;
}

int git_store_add_push(struct store *s, int64_t task, json_t *push, struct orch_error *err)
{
	_cleanup_free_ char *p = json_dumps(push, JSON_COMPACT);
	sqlite3_stmt *st;
	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	int r = prep(s,
		     "UPDATE git_tasks SET pushes = json_insert(pushes, '$[#]', json(?))"
		     " WHERE task = ?",
		     &st, "push", err);
	if (r < 0)
		return r;
	bind_text(st, 1, p);
	sqlite3_bind_int64(st, 2, task);
	r = exec(s, st, "push", err);
	return r < 0 ? r : 0;
}

static int ids(struct store *s, sqlite3_stmt *st, int64_t **ret, size_t *ret_n,
	       struct orch_error *err)
{
	int64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			int64_t *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				sqlite3_finalize(st);
				return orch_err(err, -ENOMEM, "out of memory");
			}
			v = nv;
		}
		v[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return sql_err(store_db(s), err, "query");
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int git_store_in_state(struct store *s, const char *state, int64_t **ret, size_t *ret_n,
		       struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s, "SELECT task FROM git_tasks WHERE state = ? ORDER BY task", &st, "query",
		     err);
	if (r < 0)
		return r;
	bind_text(st, 1, state);
	return ids(s, st, ret, ret_n, err);
}

int git_store_ws_expired(struct store *s, int64_t keep, int64_t **ret, size_t *ret_n,
			 struct orch_error *err)
{
	sqlite3_stmt *st;
	int r = prep(s,
		     "SELECT task FROM git_tasks WHERE ws_state = 'present' AND state IN"
		     " ('recorded','failed','none') ORDER BY task DESC LIMIT -1 OFFSET ?",
		     &st, "query", err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, keep);
	return ids(s, st, ret, ret_n, err);
}

int git_store_ws_list(struct store *s, json_t **ret, struct orch_error *err)
{
	sqlite3_stmt *st;
	json_t *a = json_array();
	int r = prep(s,
		     "SELECT g.task, g.state, t.state, g.vm, g.slot, g.repo, g.image, g.mount"
		     " FROM git_tasks g JOIN tasks t ON t.id = g.task WHERE g.ws_state = 'present'"
		     " ORDER BY g.task DESC",
		     &st, "workspaces", err);
	if (r < 0 || !a) {
		json_decref(a);
		return r < 0 ? r : orch_err(err, -ENOMEM, "out of memory");
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_pack(
			"{sIsssssssIssssss}", "task", (json_int_t)sqlite3_column_int64(st, 0),
			"state", (const char *)sqlite3_column_text(st, 1), "task_state",
			(const char *)sqlite3_column_text(st, 2), "vm",
			sqlite3_column_text(st, 3) ? (const char *)sqlite3_column_text(st, 3) : "",
			"slot", (json_int_t)sqlite3_column_int64(st, 4), "repo",
			(const char *)sqlite3_column_text(st, 5), "image",
			sqlite3_column_text(st, 6) ? (const char *)sqlite3_column_text(st, 6) : "",
			"mount",
			sqlite3_column_text(st, 7) ? (const char *)sqlite3_column_text(st, 7) : "");
		if (o)
			json_array_append_new(a, o);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE) {
		json_decref(a);
		return sql_err(store_db(s), err, "workspaces");
	}
	*ret = a;
	return 0;
}

static json_t *json_or_empty(const char *text)
{
	json_t *j = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	return j && json_is_array(j) ? j : (json_decref(j), json_array());
}

json_t *git_row_to_json(const struct git_row *r)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
#define STR(k, v) json_object_set_new(o, k, (v) ? json_string(v) : json_null())
	STR("repo", r->repo);
	STR("ref", r->ref);
	STR("state", r->state);
	STR("base", r->base);
	STR("branch", r->branch);
	STR("commit", r->commit);
	STR("error", r->error);
#undef STR
	json_object_set_new(o, "files_changed", json_integer(r->files_changed));
	json_object_set_new(o, "insertions", json_integer(r->insertions));
	json_object_set_new(o, "deletions", json_integer(r->deletions));
	json_object_set_new(o, "files", json_or_empty(r->changes));
	json_object_set_new(o, "pushes", json_or_empty(r->pushes));
	json_object_set_new(o, "workspace", json_boolean(r->ws_present));
	return o;
}
