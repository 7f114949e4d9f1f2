/* SPDX-License-Identifier: Apache-2.0 */
/* The task store: migrations, every transition, lost/retry, ordering (priority, then
 * FIFO, named VM/slot) and the output index. Runs on a real SQLite file. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check-run.h"
#include "store.h"

static char dir[] = "/tmp/orch-check-store-XXXXXX";
static struct store *s;

static void setup(void)
{
	char path[256];
	struct orch_error err = {0};

	ck_assert_ptr_nonnull(mkdtemp(strcpy(dir, "/tmp/orch-check-store-XXXXXX")));
	snprintf(path, sizeof(path), "%s/orch.db", dir);
	ck_assert_msg(store_open(path, &s, &err) == 0, "%s", err.msg);
}

static void teardown(void)
{
	char cmd[300];

	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int64_t submit(const char *vm, int64_t slot, int64_t prio, int64_t retries)
{
	const char *argv[] = {"echo", "hi"};
	const char *env[] = {"A=1"};
	struct task_spec spec = {
		.argv = argv,
		.argc = 2,
		.env = env,
		.n_env = 1,
		.vm = vm,
		.slot = slot,
		.priority = prio,
		.retries = retries,
	};
	struct orch_error err = {0};
	int64_t id = 0;

	ck_assert_msg(store_task_insert(s, &spec, &id, &err) == 0, "%s", err.msg);
	ck_assert_int_gt(id, 0);
	return id;
}

static enum task_state state_of(int64_t id)
{
	struct task_row *t = NULL;
	enum task_state st;

	ck_assert_int_eq(store_task_get(s, id, &t, NULL), 0);
	st = t->state;
	task_row_free(t);
	return st;
}

static int64_t next(const char *vm, int64_t slot)
{
	int64_t id = -1;

	ck_assert_int_eq(store_task_next(s, vm, slot, NULL, &id, NULL), 0);
	return id;
}

START_TEST(test_schema)
{
	ck_assert_int_eq(store_schema_version(s), (int)store_n_migrations);
}
END_TEST

START_TEST(test_happy_path)
{
	struct task_result res = {.state = TASK_SUCCEEDED, .exit_code = 0, .duration_ms = 5};
	struct task_row *t = NULL;
	int64_t id = submit(NULL, -1, 0, 1);
	json_t *j;

	ck_assert_int_eq(state_of(id), TASK_QUEUED);
	ck_assert_int_eq(store_task_running(s, id, NULL), -ESTALE); /* not leased yet */
	ck_assert_int_eq(store_task_lease(s, id, "dev", 2, NULL), 0);
	ck_assert_int_eq(store_task_lease(s, id, "dev", 2, NULL), -ESTALE);
	ck_assert_int_eq(state_of(id), TASK_LEASED);
	ck_assert_int_eq(store_task_running(s, id, NULL), 0);
	ck_assert_int_eq(state_of(id), TASK_RUNNING);
	ck_assert_int_eq(store_task_finish(s, id, &res, NULL), 0);
	ck_assert_int_eq(store_task_finish(s, id, &res, NULL), -ESTALE);
	ck_assert_int_eq(store_task_get(s, id, &t, NULL), 0);
	ck_assert_int_eq(t->state, TASK_SUCCEEDED);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_str_eq(t->vm, "dev");
	ck_assert_int_eq(t->slot, 2);
	ck_assert_int_eq(t->attempts, 1);
	ck_assert_int_gt(t->finished_at, 0);
	j = task_row_to_json(t);
	ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "succeeded");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "argv"), 1)), "hi");
	json_decref(j);
	task_row_free(t);
	ck_assert_int_eq(store_task_get(s, 9999, &t, NULL), -ENOENT);
}
END_TEST

START_TEST(test_lost_retry)
{
	bool requeued = false;
	int64_t a = submit(NULL, -1, 0, 1), b = submit(NULL, -1, 0, 0);
	struct task_row *t = NULL;

	ck_assert_int_eq(store_task_lease(s, a, "dev", 0, NULL), 0);
	ck_assert_int_eq(store_task_running(s, a, NULL), 0);
	ck_assert_int_eq(store_task_lost(s, a, "lost: test", &requeued, NULL), 0);
	ck_assert(requeued);
	ck_assert_int_eq(state_of(a), TASK_QUEUED);
	/* the second loss has no retry left */
	ck_assert_int_eq(store_task_lease(s, a, "dev", 1, NULL), 0);
	ck_assert_int_eq(store_task_lost(s, a, "lost: again", &requeued, NULL), 0);
	ck_assert(!requeued);
	ck_assert_int_eq(store_task_get(s, a, &t, NULL), 0);
	ck_assert_int_eq(t->state, TASK_LOST);
	ck_assert_int_eq(t->attempts, 2);
	ck_assert_int_eq(t->lost_count, 2);
	ck_assert_str_eq(t->reason, "lost: again");
	task_row_free(t);
	/* no retries at all */
	ck_assert_int_eq(store_task_lease(s, b, "dev", 0, NULL), 0);
	ck_assert_int_eq(store_task_lost(s, b, "lost", &requeued, NULL), 0);
	ck_assert(!requeued);
	ck_assert_int_eq(state_of(b), TASK_LOST);
	/* queued tasks cannot be lost */
	ck_assert_int_eq(store_task_lost(s, submit(NULL, -1, 0, 1), "x", &requeued, NULL), -ESTALE);
}
END_TEST

START_TEST(test_cancel_and_unlease)
{
	struct task_result res = {.state = TASK_CANCELLED, .exit_code = -1};
	bool requeued = true;
	int64_t a = submit(NULL, -1, 0, 1), b = submit(NULL, -1, 0, 3);

	ck_assert_int_eq(store_task_finish(s, a, &res, NULL), 0); /* queued -> cancelled */
	ck_assert_int_eq(state_of(a), TASK_CANCELLED);
	ck_assert_int_eq(store_task_set_cancel(s, a, NULL), -ESTALE);
	ck_assert_int_eq(store_task_lease(s, b, "dev", 0, NULL), 0);
	ck_assert_int_eq(store_task_unlease(s, b, NULL), 0);
	ck_assert_int_eq(state_of(b), TASK_QUEUED);
	ck_assert_int_eq(store_task_lease(s, b, "dev", 0, NULL), 0);
	ck_assert_int_eq(store_task_set_cancel(s, b, NULL), 0);
	/* a task being cancelled is not retried when lost */
	ck_assert_int_eq(store_task_lost(s, b, "lost", &requeued, NULL), 0);
	ck_assert(!requeued);
}
END_TEST

START_TEST(test_ordering)
{
	int64_t low1 = submit(NULL, -1, 0, 0);
	int64_t low2 = submit(NULL, -1, 0, 0);
	int64_t high = submit(NULL, -1, 5, 0);
	int64_t only_b = submit("b", -1, 10, 0);
	int64_t slot3 = submit(NULL, 3, 10, 0);
	int64_t counts[_TASK_STATE_MAX];

	/* VM a, slot 0: the highest priority it may take, then FIFO */
	ck_assert_int_eq(next("a", 0), high);
	ck_assert_int_eq(store_task_lease(s, high, "a", 0, NULL), 0);
	ck_assert_int_eq(next("a", 0), low1);
	ck_assert_int_eq(store_task_lease(s, low1, "a", 0, NULL), 0);
	ck_assert_int_eq(next("a", 0), low2);
	/* named VM and slot */
	ck_assert_int_eq(next("b", 0), only_b);
	ck_assert_int_eq(next("a", 3), slot3);
	ck_assert_int_eq(store_task_lease(s, low2, "a", 0, NULL), 0);
	ck_assert_int_eq(next("a", 0), 0);
	ck_assert_int_eq(store_task_counts(s, counts, NULL), 0);
	ck_assert_int_eq(counts[TASK_QUEUED], 2);
	ck_assert_int_eq(counts[TASK_LEASED], 3);
}
END_TEST

START_TEST(test_active_and_list)
{
	int64_t a = submit(NULL, -1, 0, 0), b = submit(NULL, -1, 0, 0);
	int64_t *ids = NULL;
	size_t n = 0;
	json_t *l = NULL;

	ck_assert_int_eq(store_task_lease(s, b, "dev", 0, NULL), 0);
	ck_assert_int_eq(store_tasks_active(s, &ids, &n, NULL), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(ids[0], b);
	free(ids);
	ck_assert_int_eq(store_task_list(s, TASK_QUEUED, 10, &l, NULL), 0);
	ck_assert_int_eq(json_array_size(l), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(l, 0), "id")), a);
	json_decref(l);
	ck_assert_int_eq(store_task_list(s, -1, 10, &l, NULL), 0);
	ck_assert_int_eq(json_array_size(l), 2); /* newest first */
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(l, 0), "id")), b);
	json_decref(l);
}
END_TEST

START_TEST(test_output_index)
{
	int64_t a = submit(NULL, -1, 0, 0);
	struct output_ref *refs = NULL;
	struct task_row *t = NULL;
	size_t n = 0;

	ck_assert_int_eq(store_output_add(s, a, 0, 1, 0, 10, NULL), 0);
	ck_assert_int_eq(store_output_add(s, a, 1, 2, 10, 5, NULL), 0);
	ck_assert_int_eq(store_output_add(s, a, 2, 1, 15, 7, NULL), 0);
	ck_assert_int_lt(store_output_add(s, a, 2, 1, 15, 7, NULL), 0); /* duplicate seq */
	ck_assert_int_eq(store_output_list(s, a, 0, 1, 10, &refs, &n, NULL), 0);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(refs[0].seq, 1);
	ck_assert_int_eq(refs[0].stream, 2);
	ck_assert_int_eq(refs[1].offset, 15);
	ck_assert_int_eq(refs[1].attempt, 1);
	free(refs);
	ck_assert_int_eq(store_task_get(s, a, &t, NULL), 0);
	ck_assert_int_eq(t->output_seq, 3);
	ck_assert_int_eq(t->output_bytes, 22);
	task_row_free(t);
}
END_TEST

/* A retried task: rows carry their attempt, a listing can take one attempt or all, and
 * output_bytes counts the latest attempt's bytes (what `orch logs` shows). */
START_TEST(test_output_attempts)
{
	int64_t a = submit(NULL, -1, 0, 1);
	struct output_seg one[] = {{1, 4}, {2, 3}}, two[] = {{1, 6}};
	struct output_ref *refs = NULL;
	struct task_row *t = NULL;
	bool requeued = false;
	size_t n = 0;

	ck_assert_int_eq(store_task_lease(s, a, "vm", 0, NULL), 0);
	ck_assert_int_eq(store_output_add_rows(s, a, 1, 0, 0, one, 2, NULL), 0);
	ck_assert_int_eq(store_task_lost(s, a, "lost: test", &requeued, NULL), 0);
	ck_assert(requeued);
	ck_assert_int_eq(store_task_lease(s, a, "vm", 0, NULL), 0);
	ck_assert_int_eq(store_task_get(s, a, &t, NULL), 0);
	ck_assert_int_eq(t->attempts, 2);
	ck_assert_int_eq(t->output_bytes, 0);
	task_row_free(t);
	ck_assert_int_eq(store_output_add_rows(s, a, 2, 2, 7, two, 1, NULL), 0);
	ck_assert_int_eq(store_output_list(s, a, 2, 0, 10, &refs, &n, NULL), 0);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(refs[0].seq, 2);
	ck_assert_int_eq(refs[0].offset, 7);
	free(refs);
	ck_assert_int_eq(store_output_list(s, a, 1, 0, 10, &refs, &n, NULL), 0);
	ck_assert_int_eq(n, 2);
	free(refs);
	ck_assert_int_eq(store_output_list(s, a, 0, 0, 10, &refs, &n, NULL), 0);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(refs[2].attempt, 2);
	free(refs);
	ck_assert_int_eq(store_task_get(s, a, &t, NULL), 0);
	ck_assert_int_eq(t->output_bytes, 6);
	ck_assert_int_eq(t->output_seq, 3);
	task_row_free(t);
}
END_TEST

START_TEST(test_profiles_filter)
{
	const char *argv[] = {"x"};
	struct task_spec spec = {.argv = argv, .argc = 1, .slot = -1, .profile = "claude"};
	int64_t plain = submit(NULL, -1, 0, 0), prof = 0, id = -1;

	ck_assert_int_eq(store_task_insert(s, &spec, &prof, NULL), 0);
	ck_assert_int_eq(store_task_lease(s, plain, "a", 0, NULL), 0);
	/* a VM that only allows "shell" does not take the claude task */
	ck_assert_int_eq(store_task_next(s, "a", 0, "[\"shell\"]", &id, NULL), 0);
	ck_assert_int_eq(id, 0);
	ck_assert_int_eq(store_task_next(s, "a", 0, "[\"shell\",\"claude\"]", &id, NULL), 0);
	ck_assert_int_eq(id, prof);
	ck_assert_int_eq(next("a", 0), prof);
}
END_TEST

START_TEST(test_prune_and_vms)
{
	struct task_result res = {.state = TASK_SUCCEEDED, .exit_code = 0};
	int64_t ids[5], *gone = NULL;
	size_t n = 0;

	for (int i = 0; i < 5; i++) {
		ids[i] = submit(NULL, -1, 0, 0);
		ck_assert_int_eq(store_output_add(s, ids[i], 0, 1, 0, 1, NULL), 0);
		if (i < 4)
			ck_assert_int_eq(store_task_finish(s, ids[i], &res, NULL), 0);
	}
	ck_assert_int_eq(store_task_prune(s, 2, &gone, &n, NULL), 0);
	ck_assert_int_eq(n, 2); /* the two oldest finished; the queued one stays */
	free(gone);
	ck_assert_int_eq(store_task_get(s, ids[0], &(struct task_row *){NULL}, NULL), -ENOENT);
	ck_assert_int_eq(state_of(ids[2]), TASK_SUCCEEDED);
	ck_assert_int_eq(state_of(ids[4]), TASK_QUEUED);
	ck_assert_int_eq(store_task_prune(s, 0, &gone, &n, NULL), 0);
	ck_assert_int_eq(n, 0);

	ck_assert_int_eq(store_vm_update(s, "dev", "local", 4, "starting", NULL, NULL), 0);
	ck_assert_int_eq(store_vm_update(s, "dev", "local", 4, "ready", "b1", NULL), 0);
	ck_assert_int_eq(store_vm_set_cid(s, "dev", 42, NULL), 0);
	ck_assert_int_eq(store_exec(s, "SELECT 1", NULL), 0);
}
END_TEST

/* Pools: numbers never repeat, rows carry their class, a VM is used once a task was
 * leased to it, and the queued tasks a class could take. */
START_TEST(test_pools)
{
	int64_t a = 0, b = 0, c = 0, demand = -1;
	char **names = NULL;
	size_t n = 0;
	bool used = true;

	ck_assert_int_eq(store_pool_next_seq(s, "dev", &a, NULL), 0);
	ck_assert_int_eq(store_pool_next_seq(s, "dev", &b, NULL), 0);
	ck_assert_int_eq(store_pool_next_seq(s, "other", &c, NULL), 0);
	ck_assert_int_eq(a, 1);
	ck_assert_int_eq(b, 2);
	ck_assert_int_eq(c, 1);
	ck_assert_int_eq(store_pool_vm_add(s, "dev.1", "dev", "libvirt", 1, NULL), 0);
	ck_assert_int_eq(store_pool_vm_add(s, "dev.2", "dev", "libvirt", 1, NULL), 0);
	ck_assert_int_eq(store_vm_update(s, "plain", "local", 4, "ready", NULL, NULL), 0);
	ck_assert_int_eq(store_vm_update(s, "dev.1", "libvirt", 1, "ready", "x", NULL), 0);
	ck_assert_int_eq(store_pool_vms(s, "dev", &names, &n, NULL), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(names[0], "dev.1");
	ck_assert_str_eq(names[1], "dev.2");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	/* retired: its number is not given again */
	ck_assert_int_eq(store_vm_delete(s, "dev.2", NULL), 0);
	ck_assert_int_eq(store_pool_next_seq(s, "dev", &a, NULL), 0);
	ck_assert_int_eq(a, 3);
	ck_assert_int_eq(store_pool_vms(s, "dev", &names, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	free(names[0]);
	free(names);

	/* demand: tasks for the class or any VM, a slot it has */
	int64_t t1 = submit("dev", -1, 0, 0);
	submit(NULL, -1, 0, 0);
	submit("plain", -1, 0, 0);
	submit(NULL, 3, 0, 0);
	ck_assert_int_eq(store_pool_demand(s, "dev", 1, NULL, &demand, NULL), 0);
	ck_assert_int_eq(demand, 2);
	ck_assert_int_eq(store_pool_demand(s, "dev", 4, NULL, &demand, NULL), 0);
	ck_assert_int_eq(demand, 3);
	ck_assert_int_eq(store_vm_used(s, "dev.1", &used, NULL), 0);
	ck_assert(!used);
	/* a task for the class is leased to one of its VMs */
	struct task_row *t = NULL;
	ck_assert_int_eq(store_task_lease_next(s, "dev", "dev.1", 0, NULL, &t, NULL), 0);
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->id, t1);
	ck_assert_str_eq(t->want_vm, "dev");
	ck_assert_str_eq(t->vm, "dev.1");
	task_row_free(t);
	ck_assert_int_eq(store_vm_used(s, "dev.1", &used, NULL), 0);
	ck_assert(used);
	ck_assert_int_eq(store_pool_demand(s, "dev", 1, NULL, &demand, NULL), 0);
	ck_assert_int_eq(demand, 1);
}
END_TEST

START_TEST(test_reopen)
{
	char path[256];
	int64_t a = submit(NULL, -1, 0, 0);

	store_close(s);
	snprintf(path, sizeof(path), "%s/orch.db", dir);
	ck_assert_int_eq(store_open(path, &s, NULL), 0);
	ck_assert_int_eq(state_of(a), TASK_QUEUED);
	ck_assert_int_eq(store_schema_version(s), (int)store_n_migrations);
}
END_TEST

/* A store made by an orchd of schema version 1 (before ro_paths): its tasks survive the
 * migration with no read-only paths; new ones keep theirs. */
START_TEST(test_migrate_from_v1)
{
	char path[256];
	sqlite3 *db = NULL;
	struct task_row *t = NULL;

	store_close(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/v1.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, store_migrations[0].sqlite, NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
				      "CREATE TABLE schema_version (version INTEGER NOT NULL);"
				      "INSERT INTO schema_version VALUES (1);"
				      "INSERT INTO tasks (state, argv, created_at) "
				      "VALUES ('queued', '[\"old\"]', 1);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(store_open(path, &s, NULL), 0);
	ck_assert_int_eq(store_schema_version(s), (int)store_n_migrations);
	ck_assert_int_eq(store_task_get(s, 1, &t, NULL), 0);
	ck_assert_str_eq(t->argv_json, "[\"old\"]");
	ck_assert_str_eq(t->ro_paths_json, "[]");
	json_t *j = task_row_to_json(t);
	ck_assert(json_is_array(json_object_get(j, "ro_paths")));
	ck_assert_uint_eq(json_array_size(json_object_get(j, "ro_paths")), 0);
	json_decref(j);
	task_row_free(t);

	const char *argv[] = {"claude"}, *ro[] = {"/opt/claude-code", "/srv/tools"};
	struct task_spec spec = {
		.argv = argv, .argc = 1, .slot = -1, .ro_paths = ro, .n_ro_paths = 2};
	int64_t id = 0;
	ck_assert_int_eq(store_task_insert(s, &spec, &id, NULL), 0);
	ck_assert_int_eq(store_task_get(s, id, &t, NULL), 0);
	ck_assert_str_eq(t->ro_paths_json, "[\"/opt/claude-code\",\"/srv/tools\"]");
	task_row_free(t);
}
END_TEST

/* A database of an orchd whose LLM ledger created its own tables (versioned in llm_meta)
 * joins the one migration list: its budgets and spend are kept, llm_meta goes. */
START_TEST(test_migrate_ledger_of_its_own)
{
	char path[256];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	store_close(s);
	s = NULL;
	snprintf(path, sizeof(path), "%s/v4.db", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
				      "CREATE TABLE schema_version (version INTEGER NOT NULL);"
				      "INSERT INTO schema_version VALUES (0);",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sqlite3_exec(db, store_migrations[i].sqlite, NULL, NULL, NULL),
				 SQLITE_OK);
	ck_assert_int_eq(
		sqlite3_exec(
			db,
			"UPDATE schema_version SET version = 4;"
			"CREATE TABLE llm_budget (scope TEXT NOT NULL, id TEXT NOT NULL,"
			" limit_micro INTEGER NOT NULL DEFAULT 0, limit_tokens INTEGER NOT NULL"
			" DEFAULT 0, spent_micro INTEGER NOT NULL DEFAULT 0, spent_tokens"
			" INTEGER NOT NULL DEFAULT 0, reserved_micro INTEGER NOT NULL DEFAULT 0,"
			" reserved_tokens INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, id))"
			" WITHOUT ROWID;"
			"INSERT INTO llm_budget (scope, id, limit_micro, spent_micro)"
			" VALUES ('agent', 'dev/0', 500000, 1234);"
			"CREATE TABLE llm_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
			"INSERT INTO llm_meta VALUES ('schema', 1);",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(store_open(path, &s, NULL), 0);
	ck_assert_int_eq(store_schema_version(s), (int)store_n_migrations);
	ck_assert_int_eq(sqlite3_prepare_v2(store_db(s),
					    "SELECT limit_micro, spent_micro FROM llm_budget"
					    " WHERE scope = 'agent' AND id = 'dev/0'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int64(st, 0), 500000);
	ck_assert_int_eq(sqlite3_column_int64(st, 1), 1234);
	sqlite3_finalize(st);
	ck_assert_int_eq(sqlite3_prepare_v2(store_db(s),
					    "SELECT count(*) FROM sqlite_master WHERE name IN"
					    " ('llm_meta', 'llm_reservation', 'llm_spend')",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(st, 0), 2); /* the ledger's, not llm_meta */
	sqlite3_finalize(st);
}
END_TEST

static int count_commit(void *data)
{
	(*(int *)data)++;
	return 0;
}

static int64_t n_tasks(void)
{
	int64_t counts[_TASK_STATE_MAX], n = 0;

	ck_assert_int_eq(store_task_counts(s, counts, NULL), 0);
	for (int i = 0; i < _TASK_STATE_MAX; i++)
		n += counts[i];
	return n;
}

/* Group commit: n tasks in one transaction; one task whose insert fails fails alone; a
 * commit that fails stores none of them. */
START_TEST(test_insert_many)
{
	const char *argv[] = {"echo", "hi"};
	const char *cwds[5] = {"/a", "/b", "/c", "/d", "/e"};
	struct task_spec spec[5];
	struct task_insert t[5];
	struct task_row *row;
	int commits = 0;

	for (int i = 0; i < 5; i++) {
		spec[i] = (struct task_spec){.argv = argv, .argc = 2, .cwd = cwds[i], .slot = -1};
		t[i] = (struct task_insert){.spec = &spec[i]};
	}
	sqlite3_commit_hook(store_db(s), count_commit, &commits);
	ck_assert_uint_eq(store_task_insert_many(s, t, 5), 5);
	ck_assert_int_eq(commits, 1);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_gt(t[i].id, 0);
		ck_assert(i == 0 || t[i].id > t[i - 1].id);
		ck_assert_int_eq(store_task_get(s, t[i].id, &row, NULL), 0);
		ck_assert_str_eq(row->cwd, cwds[i]);
		ck_assert_int_eq(row->state, TASK_QUEUED);
		task_row_free(row);
	}
	ck_assert_int_eq(n_tasks(), 5);

	/* the third task's insert fails: it alone, the others are stored */
	ck_assert_int_eq(sqlite3_exec(store_db(s),
				      "CREATE TEMP TRIGGER refuse BEFORE INSERT ON tasks"
				      " WHEN NEW.cwd = '/refused'"
				      " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	spec[2].cwd = "/refused";
	ck_assert_uint_eq(store_task_insert_many(s, t, 5), 4);
	for (int i = 0; i < 5; i++) {
		if (i == 2) {
			ck_assert_int_eq(t[i].id, 0);
			ck_assert_int_lt(t[i].err.code, 0);
			ck_assert_msg(strstr(t[i].err.msg, "refused by the test"), "%s",
				      t[i].err.msg);
			continue;
		}
		ck_assert_int_gt(t[i].id, 0);
		ck_assert_int_eq(t[i].err.code, 0);
		ck_assert_int_eq(store_task_get(s, t[i].id, &row, NULL), 0);
		ck_assert_str_eq(row->cwd, cwds[i]);
		task_row_free(row);
	}
	ck_assert_int_eq(n_tasks(), 9);

	/* the commit fails (a deferred foreign key the test breaks): none is stored */
	ck_assert_int_eq(
		sqlite3_exec(store_db(s),
			     "CREATE TABLE p (id INTEGER PRIMARY KEY);"
			     "CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY"
			     " DEFERRED);"
			     "CREATE TEMP TRIGGER at_commit AFTER INSERT ON tasks"
			     " WHEN NEW.cwd = '/at-commit' BEGIN INSERT INTO c VALUES (42); END",
			     NULL, NULL, NULL),
		SQLITE_OK);
	spec[2].cwd = "/at-commit";
	commits = 0;
	ck_assert_uint_eq(store_task_insert_many(s, t, 5), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(t[i].id, 0);
		ck_assert_int_lt(t[i].err.code, 0);
		ck_assert_msg(strstr(t[i].err.msg, "FOREIGN KEY"), "%s", t[i].err.msg);
	}
	ck_assert_int_eq(n_tasks(), 9);
	ck_assert(sqlite3_get_autocommit(store_db(s))); /* no transaction left open */
	sqlite3_commit_hook(store_db(s), NULL, NULL);
	ck_assert_uint_eq(store_task_insert_many(s, t, 0), 0);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("host_store");
	TCase *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_schema);
	tcase_add_test(tc, test_happy_path);
	tcase_add_test(tc, test_insert_many);
	tcase_add_test(tc, test_lost_retry);
	tcase_add_test(tc, test_cancel_and_unlease);
	tcase_add_test(tc, test_ordering);
	tcase_add_test(tc, test_active_and_list);
	tcase_add_test(tc, test_output_index);
	tcase_add_test(tc, test_output_attempts);
	tcase_add_test(tc, test_profiles_filter);
	tcase_add_test(tc, test_prune_and_vms);
	tcase_add_test(tc, test_pools);
	tcase_add_test(tc, test_reopen);
	tcase_add_test(tc, test_migrate_from_v1);
	tcase_add_test(tc, test_migrate_ledger_of_its_own);
	suite_add_tcase(su, tc);
	return orch_check_run(su);
}
