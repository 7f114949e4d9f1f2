/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL store against a real server (tests/store/pg-server, started once for the
 * suite): migrations by several nodes and from an older version, leases that skip a row
 * another node holds, the attempt and node fences of every transition and of output,
 * output bytes, nodes with their leases and the reaper, the ledger with its fleet budget
 * and per-node stale reservations. Two stores with different node names stand for two orchd nodes. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "check-run.h"
#include "llm-ledger.h"
#include "pg-schema.h"
#include "store-config.h"
#include "store-pg.h"

static char dir[64], pg_script[4200];
static struct store_config cfg;
static char conninfo[256], pwfile[128];
static bool have_pg;

static void server_up(void)
{
	char cmd[4400];
	FILE *f;

	snprintf(pg_script, sizeof(pg_script), "%s/tests/store/pg-server",
		 getenv("ORCH_SOURCEDIR") ? getenv("ORCH_SOURCEDIR") : ".");
	snprintf(dir, sizeof(dir), "/tmp/orch-check-pg-XXXXXX");
	if (!mkdtemp(dir))
		return;
	snprintf(cmd, sizeof(cmd), "%s start %s", pg_script, dir);
	if (!(f = popen(cmd, "r")))
		return;
	have_pg = fgets(conninfo, sizeof(conninfo), f) != NULL;
	if (pclose(f) != 0)
		have_pg = false;
	conninfo[strcspn(conninfo, "\n")] = 0;
	snprintf(pwfile, sizeof(pwfile), "%s/password", dir);
	cfg = (struct store_config){
		.kind = STORE_POSTGRESQL,
		.conninfo = conninfo,
		.password_file = pwfile,
		.statement_timeout_ms = 5000,
		.heartbeat_ms = 100,
		.node_lease_ms = 300,
		.poll_ms = 500,
	};
}

static void server_down(void)
{
	char cmd[4400];

	snprintf(cmd, sizeof(cmd), "%s stop %s >/dev/null 2>&1; rm -rf %s", pg_script, dir, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot stop the server in %s\n", dir);
}

static struct store *open_node(const char *node)
{
	struct orch_error err = {0};
	struct store *s = NULL;

	ck_assert_msg(store_open_config(&cfg, "/nonexistent", node, &s, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(store_kind_name(s), "postgresql");
	ck_assert(store_shared(s));
	return s;
}

/* Every test starts from empty tables. */
static void clean(void)
{
	struct store *s = open_node("cleaner");

	ck_assert_int_eq(pg_exec(&store_pg(s)->conn,
				 "TRUNCATE tasks, output, vms, nodes, llm_budget, llm_reservation,"
				 " llm_spend RESTART IDENTITY CASCADE",
				 NULL),
			 0);
	store_close(s);
}

static int64_t submit(struct store *s, const char *vm, int64_t retries)
{
	const char *argv[] = {"echo", "hi"};
	struct task_spec spec = {.argv = argv, .argc = 2, .vm = vm, .slot = -1, .retries = retries};
	int64_t id = 0;

	ck_assert_int_eq(store_task_insert(s, &spec, &id, NULL), 0);
	return id;
}

START_TEST(test_migrations)
{
	struct store *a, *b;
	struct orch_error err = {0};
	char what[160];

	if (!have_pg)
		return;
	a = open_node("n1");
	b = open_node("n2"); /* finds the schema made, applies nothing */
	ck_assert_int_eq(store_schema_version(a), (int)store_n_migrations);
	ck_assert_int_eq(store_check(&cfg, what, sizeof(what), &err), 0);
	ck_assert_ptr_nonnull(strstr(what, "schema version"));
	store_close(a);
	store_close(b);
}
END_TEST

/* Runs sql on a connection of the test's own; true when it succeeded. */
static bool run_sql(PGconn *c, const char *sql)
{
	PGresult *res = PQexec(c, sql);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;

	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
	PQclear(res);
	return ok;
}

static PGconn *connect_to(const char *ci, const char *password)
{
	PGconn *c = PQconnectdbParams((const char *[]){"dbname", "password", NULL},
				      (const char *[]){ci, password, NULL}, 1);

	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	return c;
}

/* A database left at schema version 5 (the ledger before the fleet budget) by the first
 * five entries of the one migration list keeps its budgets and reservations through
 * migrations 6 (nothing in PostgreSQL) and 7, run when a node opens it, and then takes the
 * fleet scope: the same versions
 * as SQLite's (store-schema.c). */
START_TEST(test_migrate_from_5)
{
	struct store_config c5 = cfg;
	struct orch_error err = {0};
	struct store *a, *s = NULL;
	struct llm_budget b;
	char ci[400];
	PGconn *c;
	int64_t id;

	if (!have_pg)
		return;
	a = open_node("n1");
	c = connect_to(conninfo, store_pg(a)->conn.password);
	ck_assert(run_sql(c, "DROP DATABASE IF EXISTS orch_v5"));
	ck_assert(run_sql(c, "CREATE DATABASE orch_v5"));
	PQfinish(c);
	snprintf(ci, sizeof(ci), "%s dbname=orch_v5", conninfo);
	c = connect_to(ci, store_pg(a)->conn.password);
	ck_assert(run_sql(c, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
			     "INSERT INTO schema_version VALUES (5)"));
	for (size_t i = 0; i < 5; i++)
		ck_assert(!store_migrations[i].postgresql ||
			  run_sql(c, store_migrations[i].postgresql));
	ck_assert(!run_sql(c, "INSERT INTO llm_budget (scope, id) VALUES ('fleet', 'all')"));
	ck_assert(run_sql(c, "INSERT INTO llm_budget (scope, id, limit_micro, spent_micro)"
			     " VALUES ('agent', 'x/1', 5000, 1234);"
			     "INSERT INTO llm_reservation (node, agent, micro, tokens, created_ms)"
			     " VALUES ('n1', 'x/1', 10, 1, 0)"));
	PQfinish(c);
	store_close(a);

	c5.conninfo = ci;
	ck_assert_msg(store_open_config(&c5, "/nonexistent", "n1", &s, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(store_schema_version(s), (int)store_n_migrations);
	ck_assert_int_eq(store_llm_get(s, "agent", "x/1", &b, NULL), 0);
	ck_assert_int_eq(b.limit_micro, 5000);
	ck_assert_int_eq(b.spent_micro, 1234);
	ck_assert_int_eq(store_llm_release(s, 1, NULL), 0); /* an old reservation: no fleet */
	ck_assert_int_eq(store_llm_set_limit(s, "fleet", LLM_FLEET_ID, 100, 0, NULL), 0);
	ck_assert_int_eq(store_llm_reserve(s, NULL, "x/1", NULL, 101, 1, &id, NULL), -EDQUOT);
	store_close(s);
}
END_TEST

START_TEST(test_lease_skips_locked)
{
	struct store *a, *b;
	struct task_row *t1 = NULL, *t2 = NULL, *t3 = NULL;
	PGconn *other;
	PGresult *res;
	char xs[24];
	int64_t x, y;

	if (!have_pg)
		return;
	clean();
	a = open_node("n1");
	b = open_node("n2");
	x = submit(a, NULL, 0);
	y = submit(b, NULL, 0);
	/* a third connection holds the first task's row, as a node in mid-lease would */
	other = PQconnectdbParams((const char *[]){"dbname", "password", NULL},
				  (const char *[]){conninfo, store_pg(a)->conn.password, NULL}, 1);
	ck_assert_int_eq(PQstatus(other), CONNECTION_OK);
	PQclear(PQexec(other, "BEGIN"));
	snprintf(xs, sizeof(xs), "%lld", (long long)x);
	res = PQexecParams(other, "SELECT id FROM tasks WHERE id = $1 FOR UPDATE", 1, NULL,
			   (const char *[]){xs}, NULL, NULL, 0);
	PQclear(res);
	ck_assert_int_eq(store_task_lease_next(a, "v1", "v1", 0, NULL, &t1, NULL), 0);
	ck_assert_ptr_nonnull(t1);
	ck_assert_int_eq(t1->id, y); /* not blocked on x: skipped */
	ck_assert_int_eq(store_task_lease_next(b, "v2", "v2", 0, NULL, &t2, NULL), 0);
	ck_assert_ptr_null(t2); /* x still held, y leased */
	PQclear(PQexec(other, "ROLLBACK"));
	PQfinish(other);
	ck_assert_int_eq(store_task_lease_next(b, "v2", "v2", 0, NULL, &t2, NULL), 0);
	ck_assert_int_eq(t2->id, x);
	ck_assert_int_eq(t2->attempts, 1);
	ck_assert_str_eq(t2->vm, "v2");
	ck_assert_int_eq(store_task_lease_next(b, "v2", "v2", 1, NULL, &t3, NULL), 0);
	ck_assert_ptr_null(t3);
	task_row_free(t1);
	task_row_free(t2);
	store_close(a);
	store_close(b);
}
END_TEST

START_TEST(test_fences)
{
	struct store *a, *b;
	struct task_row *t = NULL;
	struct output_ref *refs = NULL;
	struct output_seg segs[2] = {{1, 3}, {2, 2}};
	struct task_result ok = {.state = TASK_SUCCEEDED, .exit_code = 0};
	bool requeued = false;
	size_t n = 0;
	int64_t id;

	if (!have_pg)
		return;
	clean();
	a = open_node("n1");
	b = open_node("n2");
	id = submit(a, NULL, 1);
	ck_assert_int_eq(store_task_lease_next(a, "v1", "v1", 0, NULL, &t, NULL), 0);
	task_row_free(t);
	/* another node, or another attempt, cannot move it */
	ck_assert_int_eq(store_task_running_attempt(b, id, 1, NULL), -ESTALE);
	ck_assert_int_eq(store_task_running_attempt(a, id, 2, NULL), -ESTALE);
	ck_assert_int_eq(store_task_running_attempt(a, id, 1, NULL), 0);
	ck_assert_int_eq(store_output_add_data(a, id, 1, 0, segs, 2, "abcde", NULL), 0);
	ck_assert_int_eq(store_output_add_data(b, id, 1, 2, segs, 1, "xyz", NULL), -ESTALE);
	ok.attempt = 1;
	ck_assert_int_eq(store_task_finish(b, id, &ok, NULL), -ESTALE);
	/* lost and re-run by the other node: the first node's late messages change nothing */
	ck_assert_int_eq(store_task_lost_attempt(a, id, 1, "lost: test", &requeued, NULL), 0);
	ck_assert(requeued);
	ck_assert_int_eq(store_task_lease_next(b, "v2", "v2", 3, NULL, &t, NULL), 0);
	ck_assert_int_eq(t->attempts, 2);
	task_row_free(t);
	ck_assert_int_eq(store_task_finish(a, id, &ok, NULL), -ESTALE);
	ck_assert_int_eq(store_output_add_data(a, id, 1, 2, segs, 1, "zzz", NULL), -ESTALE);
	ck_assert_int_eq(store_task_unlease_attempt(a, id, 1, NULL), -ESTALE);
	ck_assert_int_eq(store_task_running_attempt(b, id, 2, NULL), 0);
	ck_assert_int_eq(store_output_add_data(b, id, 2, 2, segs + 1, 1, "fg", NULL), 0);
	ok.attempt = 2;
	ok.exit_code = 0;
	ck_assert_int_eq(store_task_finish(b, id, &ok, NULL), 0);
	ck_assert_int_eq(store_task_finish(b, id, &ok, NULL), -ESTALE);
	ck_assert_int_eq(store_task_get(a, id, &t, NULL), 0);
	ck_assert_int_eq(t->state, TASK_SUCCEEDED);
	ck_assert_int_eq(t->attempts, 2);
	ck_assert_int_eq(t->lost_count, 1);
	ck_assert_int_eq(t->output_seq, 3);
	ck_assert_int_eq(t->output_bytes, 2); /* the latest attempt's */
	task_row_free(t);
	/* both attempts' output, bytes included, from either node */
	ck_assert_int_eq(store_output_list(b, id, 0, 0, 10, &refs, &n, NULL), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(refs[0].attempt, 1);
	ck_assert_int_eq(refs[0].length, 3);
	ck_assert(memcmp(refs[0].data, "abc", 3) == 0);
	ck_assert_int_eq(refs[1].stream, 2);
	ck_assert(memcmp(refs[1].data, "de", 2) == 0);
	ck_assert_int_eq(refs[2].attempt, 2);
	ck_assert(memcmp(refs[2].data, "fg", 2) == 0);
	free(refs);
	ck_assert_int_eq(store_output_list(a, id, 2, 0, 10, &refs, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	free(refs);
	store_close(a);
	store_close(b);
}
END_TEST

START_TEST(test_nodes_and_reaper)
{
	struct store *a, *b, *imp;
	struct task_row *t = NULL;
	struct orch_error err = {0};
	bool restart = true;
	json_t *nodes = NULL;
	int64_t id, slots = 0;
	char *node = NULL;

	if (!have_pg)
		return;
	clean();
	usleep(400 * 1000); /* the server is older than a lease: reaping is allowed */
	a = open_node("n1");
	b = open_node("n2");
	ck_assert_int_eq(store_node_register(a, "token-a", "/a.sock", &restart, NULL), 0);
	ck_assert(!restart);
	ck_assert_int_eq(store_node_register(b, "token-b", "/b.sock", &restart, NULL), 0);
	ck_assert_int_eq(store_vm_update(b, "v2", "local", 4, "ready", NULL, NULL), 0);
	/* a VM name and a node name are one live node's */
	ck_assert_int_eq(store_vm_update(a, "v2", "local", 4, "ready", NULL, &err), -EEXIST);
	imp = open_node("n2");
	ck_assert_int_eq(store_node_register(imp, "token-x", "/x.sock", NULL, &err), -EEXIST);
	store_close(imp);
	ck_assert_int_eq(store_vm_find(a, "v2", &node, &slots, NULL), 0);
	ck_assert_str_eq(node, "n2");
	ck_assert_int_eq(slots, 4);
	free(node);
	/* n2 runs a task, then stops renewing */
	id = submit(a, "v2", 1);
	ck_assert_int_eq(store_task_lease_next(b, "v2", "v2", 0, NULL, &t, NULL), 0);
	task_row_free(t);
	ck_assert_int_eq(store_node_heartbeat(b, NULL), 0);
	ck_assert_int_eq(store_node_reap(a, NULL), 0); /* alive */
	usleep(450 * 1000);
	ck_assert_int_eq(store_node_heartbeat(a, NULL), 0);
	ck_assert_int_eq(store_node_reap(a, NULL), 1);
	ck_assert_int_eq(store_node_reap(a, NULL), 0);
	ck_assert_int_eq(store_task_get(a, id, &t, NULL), 0);
	ck_assert_int_eq(t->state, TASK_QUEUED);
	ck_assert_int_eq(t->lost_count, 1);
	ck_assert_str_eq(t->reason, "lost: node n2 stopped renewing its lease");
	task_row_free(t);
	/* n2 learns it was fenced, registers again as itself; its VM name is free meanwhile */
	ck_assert_int_eq(store_node_heartbeat(b, NULL), -ESTALE);
	ck_assert_int_eq(store_node_register(b, "token-b", "/b.sock", &restart, NULL), 0);
	ck_assert(restart);
	ck_assert_int_eq(store_node_heartbeat(b, NULL), 0);
	ck_assert_int_eq(store_nodes_json(a, &nodes, NULL), 0);
	ck_assert_uint_eq(json_array_size(nodes), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(nodes, 1), "state")),
			 "up");
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_array_get(nodes, 1), "incarnation")), 2);
	json_decref(nodes);
	store_close(a);
	store_close(b);
}
END_TEST

START_TEST(test_ledger)
{
	struct store *a, *b;
	struct llm_limits lim = {.agent_micro = 5000, .fleet_micro = 1000};
	struct llm_usage u = {.input = 10, .output = 5, .seen = true};
	struct llm_budget bu;
	struct orch_error err = {0};
	int64_t r1, r2, r3;

	if (!have_pg)
		return;
	clean();
	a = open_node("n1");
	b = open_node("n2");
	/* two nodes' agents against one fleet budget */
	ck_assert_int_eq(store_llm_reserve(a, &lim, "v1/0", "1", 600, 10, &r1, NULL), 0);
	ck_assert_int_eq(store_llm_reserve(b, &lim, "v2/0", "2", 600, 10, &r2, &err), -EAGAIN);
	ck_assert_ptr_nonnull(strstr(err.msg, "fleet all"));
	ck_assert_int_eq(store_llm_settle(a, r1, "m", &u, 300, "ok", NULL), 0);
	ck_assert_int_eq(store_llm_reserve(b, &lim, "v2/0", "2", 600, 10, &r2, NULL), 0);
	ck_assert_int_eq(store_llm_get(a, "fleet", LLM_FLEET_ID, &bu, NULL), 0);
	ck_assert_int_eq(bu.spent_micro, 300);
	ck_assert_int_eq(bu.reserved_micro, 600);
	ck_assert_int_eq(store_llm_get(b, "task", "1", &bu, NULL), 0);
	ck_assert_int_eq(bu.spent_tokens, 15);
	ck_assert_int_eq(store_llm_reserve(a, &lim, "v1/0", NULL, 50, 1, &r3, NULL), 0);
	/* n1's restart charges its own stale reservation, not n2's */
	ck_assert_int_eq(store_llm_settle_stale(a, NULL), 1);
	ck_assert_int_eq(store_llm_get(a, "fleet", LLM_FLEET_ID, &bu, NULL), 0);
	ck_assert_int_eq(bu.spent_micro, 350);
	ck_assert_int_eq(bu.reserved_micro, 600);
	ck_assert_int_eq(store_llm_release(b, r2, NULL), 0);
	ck_assert_int_eq(store_llm_release(b, r2, NULL), -ENOENT);
	ck_assert_int_eq(store_llm_set_limit(b, "fleet", LLM_FLEET_ID, 300, 0, NULL), 0);
	ck_assert_int_eq(store_llm_reserve(a, NULL, "v1/0", NULL, 1, 1, &r3, NULL), -EDQUOT);
	ck_assert_int_eq(store_llm_drop(a, "task", "1", NULL), 0);
	ck_assert_int_eq(store_llm_get(a, "task", "1", &bu, NULL), -ENOENT);
	store_close(a);
	store_close(b);
}
END_TEST

START_TEST(test_away)
{
	struct store *a;
	struct orch_error err = {0};
	char cmd[4400];
	int64_t counts[_TASK_STATE_MAX];
	int r = 0;

	if (!have_pg)
		return;
	a = open_node("n1");
	snprintf(cmd, sizeof(cmd), "%s stop %s >/dev/null", pg_script, dir);
	ck_assert_int_eq(system(cmd), 0);
	/* refused with -ENOTCONN (the store is away), quickly, and again without a wait */
	r = store_task_counts(a, counts, &err);
	ck_assert_msg(r == -ENOTCONN, "%d %s", r, err.msg);
	r = store_task_counts(a, counts, &err);
	ck_assert_msg(r == -ENOTCONN, "%d %s", r, err.msg);
	snprintf(cmd, sizeof(cmd), "%s start %s >/dev/null", pg_script, dir);
	ck_assert_int_eq(system(cmd), 0);
	for (int i = 0; i < 100 && (r = store_task_counts(a, counts, &err)) < 0; i++)
		usleep(50 * 1000); /* back within the backoff (a third of the lease, 100 ms) */
	ck_assert_msg(r == 0, "%s", err.msg);
	store_close(a);
}
END_TEST

static int64_t count_where(struct store *s, const char *sql)
{
	PGresult *res = PQexec(store_pg(s)->conn.c, sql);
	int64_t n;

	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	n = pg_col_int(res, 0, 0, -1);
	PQclear(res);
	return n;
}

static void store_sql(struct store *s, const char *sql)
{
	struct orch_error err = {0};

	ck_assert_msg(pg_exec(&store_pg(s)->conn, sql, &err) == 0, "%s", err.msg);
}

/* Group commit: n tasks in one transaction (one xmin); one task whose insert fails fails
 * alone (rolled back, then one transaction each); a commit that fails, or a connection
 * lost at the commit, stores none; a connection lost at an insert is reconnected and the
 * others are stored, once each. */
START_TEST(test_insert_many)
{
	const char *argv[] = {"echo", "hi"};
	const char *cwds[5] = {"/a", "/b", "/c", "/d", "/e"};
	struct task_spec spec[5];
	struct task_insert t[5];
	struct task_row *row;
	struct store *a;

	if (!have_pg)
		return;
	clean();
	a = open_node("n1");
	for (int i = 0; i < 5; i++) {
		spec[i] = (struct task_spec){.argv = argv, .argc = 2, .cwd = cwds[i], .slot = -1};
		t[i] = (struct task_insert){.spec = &spec[i]};
	}
	ck_assert_uint_eq(store_task_insert_many(a, t, 5), 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_gt(t[i].id, 0);
		ck_assert(i == 0 || t[i].id > t[i - 1].id);
		ck_assert_int_eq(store_task_get(a, t[i].id, &row, NULL), 0);
		ck_assert_str_eq(row->cwd, cwds[i]);
		ck_assert_int_eq(row->state, TASK_QUEUED);
		task_row_free(row);
	}
	/* one transaction: every row has the same xmin */
	ck_assert_int_eq(count_where(a, "SELECT count(DISTINCT xmin::text) FROM tasks"), 1);

	store_sql(a, "CREATE OR REPLACE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
		     " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;"
		     "CREATE OR REPLACE FUNCTION test_kill() RETURNS trigger LANGUAGE plpgsql AS"
		     " $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid());"
		     " PERFORM pg_sleep(5); RETURN NEW; END $$;"
		     "CREATE TRIGGER test_refuse BEFORE INSERT ON tasks FOR EACH ROW"
		     " WHEN (NEW.cwd = '/refused') EXECUTE FUNCTION test_refuse();"
		     "CREATE CONSTRAINT TRIGGER test_at_commit AFTER INSERT ON tasks"
		     " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
		     " WHEN (NEW.cwd = '/at-commit') EXECUTE FUNCTION test_refuse();"
		     "CREATE TRIGGER test_kill BEFORE INSERT ON tasks FOR EACH ROW"
		     " WHEN (NEW.cwd = '/kill') EXECUTE FUNCTION test_kill();"
		     "CREATE CONSTRAINT TRIGGER test_kill_at_commit AFTER INSERT ON tasks"
		     " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
		     " WHEN (NEW.cwd = '/kill-at-commit') EXECUTE FUNCTION test_kill()");

	/* the third task's insert fails: it alone */
	spec[2].cwd = "/refused";
	ck_assert_uint_eq(store_task_insert_many(a, t, 5), 4);
	ck_assert_int_eq(t[2].id, 0);
	ck_assert_msg(strstr(t[2].err.msg, "refused by the test"), "%s", t[2].err.msg);
	for (int i = 0; i < 5; i++)
		ck_assert(i == 2 || (t[i].id > 0 && t[i].err.code == 0));
	ck_assert_int_eq(count_where(a, "SELECT count(*) FROM tasks"), 9);

	/* the commit fails: none is stored, each says why */
	spec[2].cwd = "/at-commit";
	ck_assert_uint_eq(store_task_insert_many(a, t, 5), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(t[i].id, 0);
		ck_assert_msg(strstr(t[i].err.msg, "refused by the test"), "%s", t[i].err.msg);
	}
	ck_assert_int_eq(count_where(a, "SELECT count(*) FROM tasks"), 9);

	/* the connection is lost at the commit: none is stored, none is retried */
	spec[2].cwd = "/kill-at-commit";
	ck_assert_uint_eq(store_task_insert_many(a, t, 5), 0);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(t[i].id, 0);
		ck_assert_int_eq(t[i].err.code, -ENOTCONN);
	}

	/* the connection is lost at the third insert: the transaction is gone; after the
	 * reconnect the others are stored one by one (once each), the third fails again */
	spec[2].cwd = "/kill";
	ck_assert_uint_eq(store_task_insert_many(a, t, 5), 4);
	ck_assert_int_eq(t[2].id, 0);
	ck_assert_int_eq(t[2].err.code, -ENOTCONN);
	for (int i = 0; i < 5; i++)
		ck_assert(i == 2 || t[i].id > 0);
	ck_assert_int_eq(count_where(a, "SELECT count(*) FROM tasks"), 13);
	ck_assert_int_eq(count_where(a, "SELECT count(*) FROM tasks WHERE cwd = '/a'"), 3);

	store_sql(a, "DROP TRIGGER test_refuse ON tasks; DROP TRIGGER test_at_commit ON tasks;"
		     "DROP TRIGGER test_kill ON tasks; DROP TRIGGER test_kill_at_commit ON tasks");
	store_close(a);
}
END_TEST

int main(void)
{
	static const struct orch_check_opts opts = {.no_fork = true}; /* one server */
	Suite *su = suite_create("store_pg");
	TCase *tc = tcase_create("pg");
	int failed;

	server_up();
	if (!have_pg) {
		printf("SKIP: no PostgreSQL server could be started (scripts/install-deps)\n");
		server_down();
		return 77;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_migrations);
	tcase_add_test(tc, test_migrate_from_5);
	tcase_add_test(tc, test_lease_skips_locked);
	tcase_add_test(tc, test_insert_many);
	tcase_add_test(tc, test_fences);
	tcase_add_test(tc, test_nodes_and_reaper);
	tcase_add_test(tc, test_ledger);
	tcase_add_test(tc, test_away);
	suite_add_tcase(su, tc);
	failed = orch_check_run_opts(su, &opts);
	server_down();
	return failed;
}
