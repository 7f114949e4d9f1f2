/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: the SQLite budget ledger, including 20 concurrent reservations (threads,
 * each with its own connection to one WAL database) against a budget that covers 5. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sqlite3.h>

#include "check-run.h"
#include "llm-ledger.h"
#include "sqlite-util.h"

static char dir[64];
static char path[128];

static sqlite3 *open_db(void)
{
	sqlite3 *db = NULL;

	ck_assert_int_eq(
		sqlite3_open_v2(path, &db,
				SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
				NULL),
		SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	return db;
}

static void setup(void)
{
	sqlite3 *db;

	snprintf(dir, sizeof(dir), "/tmp/orch-ledger-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/orch.db", dir);
	db = open_db();
	ck_assert_int_eq(store_migrate(db, NULL), 0);
	ck_assert_int_eq(store_migrate(db, NULL), 0); /* idempotent */
	sqlite3_close(db);
}

static void teardown(void)
{
	char p[160];

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	unlink(path);
	rmdir(dir);
}

START_TEST(test_reserve_settle_release)
{
	sqlite3 *db = open_db();
	struct llm_limits lim = {.agent_micro = 10000, .task_micro = 6000};
	struct orch_error err = {0};
	struct llm_usage u = {.input = 100, .output = 50, .seen = true};
	struct llm_budget b;
	int64_t id1, id2, id3;

	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "dev/0", "t-1", 4000, 300, &id1, &err), 0);
	ck_assert_int_eq(llm_ledger_get(db, "agent", "dev/0", &b, NULL), 0);
	ck_assert_int_eq(b.limit_micro, 10000);
	ck_assert_int_eq(b.reserved_micro, 4000);
	ck_assert_int_eq(b.reserved_tokens, 300);
	ck_assert_int_eq(llm_ledger_get(db, "task", "t-1", &b, NULL), 0);
	ck_assert_int_eq(b.limit_micro, 6000);
	/* The task has 2000 left: in flight holds the rest, so retry later. */
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "dev/0", "t-1", 2500, 1, &id2, &err),
			 -EAGAIN);
	ck_assert_ptr_nonnull(strstr(err.msg, "task t-1"));
	ck_assert_int_eq(llm_ledger_settle(db, id1, "m", &u, 1000, "ok", &err), 0);
	ck_assert_int_eq(llm_ledger_get(db, "task", "t-1", &b, NULL), 0);
	ck_assert_int_eq(b.reserved_micro, 0);
	ck_assert_int_eq(b.spent_micro, 1000);
	ck_assert_int_eq(b.spent_tokens, 150);
	ck_assert_int_eq(llm_ledger_settle(db, id1, "m", &u, 1000, "ok", &err), -ENOENT);
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "dev/0", "t-1", 2500, 1, &id2, &err), 0);
	ck_assert_int_eq(llm_ledger_release(db, id2, &err), 0);
	ck_assert_int_eq(llm_ledger_get(db, "agent", "dev/0", &b, NULL), 0);
	ck_assert_int_eq(b.reserved_micro, 0);
	ck_assert_int_eq(b.spent_micro, 1000);
	/* Spend alone leaves no room: exhausted, not "retry". */
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "dev/0", "t-1", 5001, 1, &id3, &err),
			 -EDQUOT);
	ck_assert_ptr_nonnull(strstr(err.msg, "exhausted"));
	/* Without a task only the agent counts. */
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "dev/0", NULL, 9000, 1, &id3, &err), 0);
	ck_assert_int_eq(llm_ledger_release(db, id3, &err), 0);
	/* Raising the limit makes room again; reset clears spend. */
	ck_assert_int_eq(llm_ledger_set_limit(db, "task", "t-1", 100000, 0, &err), 0);
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "dev/0", "t-1", 5001, 1, &id3, &err), 0);
	ck_assert_int_eq(llm_ledger_release(db, id3, &err), 0);
	ck_assert_int_eq(llm_ledger_reset_spend(db, "agent", "dev/0", &err), 0);
	ck_assert_int_eq(llm_ledger_get(db, "agent", "dev/0", &b, NULL), 0);
	ck_assert_int_eq(b.spent_micro, 0);
	ck_assert_int_eq(llm_ledger_get(db, "agent", "nobody", &b, NULL), -ENOENT);
	ck_assert_int_eq(llm_ledger_get(db, "vm", "x", &b, NULL), -EINVAL);
	ck_assert_int_eq(llm_ledger_set_limit(db, "agent", "x", -1, 0, NULL), -EINVAL);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_tokens_and_unlimited)
{
	sqlite3 *db = open_db();
	struct llm_limits lim = {.agent_tokens = 1000};
	struct orch_error err = {0};
	int64_t id;

	ck_assert_int_eq(llm_ledger_reserve(db, NULL, "a", NULL, 1 << 30, 1 << 30, &id, &err), 0);
	ck_assert_int_eq(llm_ledger_release(db, id, &err), 0);
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "b", NULL, 5, 1001, &id, &err), -EDQUOT);
	ck_assert_ptr_nonnull(strstr(err.msg, "token budget"));
	ck_assert_int_eq(llm_ledger_reserve(db, &lim, "b", NULL, 5, 1000, &id, &err), 0);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_stale)
{
	sqlite3 *db = open_db();
	struct orch_error err = {0};
	struct llm_budget b;
	int64_t id;

	ck_assert_int_eq(llm_ledger_reserve(db, NULL, "a", "t", 700, 70, &id, &err), 0);
	ck_assert_int_eq(llm_ledger_reserve(db, NULL, "a", NULL, 300, 30, &id, &err), 0);
	ck_assert_int_eq(llm_ledger_settle_stale(db, &err), 2);
	ck_assert_int_eq(llm_ledger_get(db, "agent", "a", &b, NULL), 0);
	ck_assert_int_eq(b.spent_micro, 1000);
	ck_assert_int_eq(b.spent_tokens, 100);
	ck_assert_int_eq(b.reserved_micro, 0);
	ck_assert_int_eq(llm_ledger_settle_stale(db, &err), 0);
	sqlite3_close(db);
}
END_TEST

static int collect(const char *scope, const char *id, const struct llm_budget *b, void *data)
{
	char *out = data;

	snprintf(out + strlen(out), 256 - strlen(out), "%s:%s:%lld;", scope, id,
		 (long long)b->spent_micro);
	return 0;
}

START_TEST(test_foreach_drop)
{
	sqlite3 *db = open_db();
	struct orch_error err = {0};
	char out[256] = "";
	int64_t id;
	struct llm_usage u = {.input = 1, .seen = true};

	ck_assert_int_eq(llm_ledger_reserve(db, NULL, "vm/1", "t-b", 10, 1, &id, &err), 0);
	ck_assert_int_eq(llm_ledger_settle(db, id, "m", &u, 7, "ok", &err), 0);
	ck_assert_int_eq(llm_ledger_reserve(db, NULL, "vm/0", "t-a", 10, 1, &id, &err), 0);
	ck_assert_int_eq(llm_ledger_foreach(db, NULL, collect, out, &err), 0);
	ck_assert_str_eq(out, "agent:vm/0:0;agent:vm/1:7;task:t-a:0;task:t-b:7;");
	out[0] = '\0';
	ck_assert_int_eq(llm_ledger_foreach(db, "task", collect, out, &err), 0);
	ck_assert_str_eq(out, "task:t-a:0;task:t-b:7;");
	ck_assert_int_eq(llm_ledger_drop(db, "task", "t-a", &err), -EBUSY);
	ck_assert_int_eq(llm_ledger_drop(db, "task", "t-b", &err), 0);
	ck_assert_int_eq(llm_ledger_drop(db, "task", "t-none", &err), 0);
	out[0] = '\0';
	ck_assert_int_eq(llm_ledger_foreach(db, "task", collect, out, &err), 0);
	ck_assert_str_eq(out, "task:t-a:0;");
	ck_assert_int_eq(llm_ledger_foreach(db, "vm", collect, out, &err), -EINVAL);
	sqlite3_close(db);
}
END_TEST

#define N_THREADS 20
#define LIMIT 10000
#define COST 2000 /* worst case per request: the budget covers 5 */

struct worker {
	pthread_barrier_t *barrier;
	int n;
	int result;
	char msg[ORCH_ERROR_MSG_MAX];
	int64_t actual;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct orch_error err = {0};
	struct llm_limits lim = {.agent_micro = LIMIT, .task_micro = LIMIT};
	sqlite3 *db = NULL;
	int64_t id;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		w->result = -EIO;
		return NULL;
	}
	sqlite3_busy_timeout(db, 30000);
	pthread_barrier_wait(w->barrier);
	w->result = llm_ledger_reserve(db, &lim, "dev/1", "t-race", COST, 100, &id, &err);
	snprintf(w->msg, sizeof(w->msg), "%s", err.msg);
	if (w->result == 0) {
		/* Holds the reservation a while, as a real request would. */
		struct llm_usage u = {.input = 10, .output = 20, .seen = true};
		usleep(20000 + (useconds_t)(w->n * 1000));
		w->actual = COST - 100 * (w->n % 3);
		if (llm_ledger_settle(db, id, "m", &u, w->actual, "ok", &err) < 0)
			w->result = err.code;
	}
	sqlite3_close(db);
	return NULL;
}

START_TEST(test_concurrent_never_overshoots)
{
	pthread_t th[N_THREADS];
	struct worker w[N_THREADS];
	pthread_barrier_t barrier;
	struct llm_budget b;
	sqlite3 *db;
	int ok = 0, refused = 0;
	int64_t sum = 0;

	pthread_barrier_init(&barrier, NULL, N_THREADS);
	for (int i = 0; i < N_THREADS; i++) {
		w[i] = (struct worker){.barrier = &barrier, .n = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N_THREADS; i++) {
		if (w[i].result == 0) {
			ok++;
			sum += w[i].actual;
		} else {
			ck_assert_msg(w[i].result == -EAGAIN || w[i].result == -EDQUOT,
				      "worker %d: %d %s", i, w[i].result, w[i].msg);
			ck_assert_ptr_nonnull(strstr(w[i].msg, "llm"));
			refused++;
		}
	}
	ck_assert_int_le(ok, LIMIT / COST);
	ck_assert_int_ge(ok, 1);
	ck_assert_int_eq(ok + refused, N_THREADS);
	db = open_db();
	ck_assert_int_eq(llm_ledger_get(db, "agent", "dev/1", &b, NULL), 0);
	ck_assert_int_le(b.spent_micro, LIMIT);
	ck_assert_int_eq(b.spent_micro, sum);
	ck_assert_int_eq(b.reserved_micro, 0);
	ck_assert_int_eq(llm_ledger_get(db, "task", "t-race", &b, NULL), 0);
	ck_assert_int_le(b.spent_micro, LIMIT);
	sqlite3_close(db);
	pthread_barrier_destroy(&barrier);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("llm_ledger");
	TCase *tc = tcase_create("ledger");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_reserve_settle_release);
	tcase_add_test(tc, test_tokens_and_unlimited);
	tcase_add_test(tc, test_stale);
	tcase_add_test(tc, test_foreach_drop);
	tcase_add_loop_test(tc, test_concurrent_never_overshoots, 0, 3);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
