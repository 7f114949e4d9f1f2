/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM budget ledger in SQLite. Budgets exist per agent slot (scope "agent", id such as
 * "dev/2") and per task (scope "task", id the task id), each in micro-USD and in tokens
 * (0 = unlimited). A request reserves its worst case atomically (BEGIN IMMEDIATE) against
 * both scopes, is settled to the actual usage when it ends, or released when nothing was
 * spent. spent + reserved never exceeds a limit, so concurrent requests can not overshoot.
 * Works on any connection to a database migrated by store_migrate (host/store/: the
 * ledger's tables are in its one list); orchd passes its store's, which sets busy_timeout. */
#pragma once

#include <stdint.h>
#include <sqlite3.h>

#include "error.h"
#include "llm-types.h"

/* Limits applied to a scope the first time it is seen (0 = unlimited). */
struct llm_limits {
	int64_t agent_micro, agent_tokens;
	int64_t task_micro, task_tokens;
};

struct llm_budget {
	int64_t limit_micro, limit_tokens; /* 0: unlimited */
	int64_t spent_micro, spent_tokens;
	int64_t reserved_micro, reserved_tokens;
};

/* scope: "agent" or "task". -ENOENT when the scope id has never been seen or set. */
int llm_ledger_get(sqlite3 *db, const char *scope, const char *id, struct llm_budget *ret,
		   struct orch_error *err);
/* Sets (creates) the limits of one scope; spend is kept. */
int llm_ledger_set_limit(sqlite3 *db, const char *scope, const char *id, int64_t limit_micro,
			 int64_t limit_tokens, struct orch_error *err);
/* Zeroes the spend of one scope (e.g. `orch budget set --reset`). */
int llm_ledger_reset_spend(sqlite3 *db, const char *scope, const char *id, struct orch_error *err);

/* Calls cb for every budget of scope ("agent", "task", or NULL for both), ordered by scope
 * and id; a cb returning < 0 stops and is returned (for `orch budget show`). */
typedef int (*llm_budget_cb)(const char *scope, const char *id, const struct llm_budget *b,
			     void *data);
int llm_ledger_foreach(sqlite3 *db, const char *scope, llm_budget_cb cb, void *data,
		       struct orch_error *err);
/* Forgets a scope's budget row (e.g. a pruned task); its llm_spend rows stay. -EBUSY while
 * reservations are held against it. */
int llm_ledger_drop(sqlite3 *db, const char *scope, const char *id, struct orch_error *err);

/* Reserves micro/tokens against agent and task (task may be NULL). Returns 0 and the
 * reservation id, -EDQUOT when the spend alone leaves no room (the budget is exhausted),
 * -EAGAIN when only in-flight reservations are in the way (retry later), -EBUSY when the
 * database stayed locked. err names the budget and the numbers. */
int llm_ledger_reserve(sqlite3 *db, const struct llm_limits *defaults, const char *agent,
		       const char *task, int64_t micro, int64_t tokens, int64_t *ret_id,
		       struct orch_error *err);
/* Replaces a reservation by the actual spend and records it (model, usage, outcome such as
 * "ok", "disconnected", "error"). */
int llm_ledger_settle(sqlite3 *db, int64_t id, const char *model, const struct llm_usage *u,
		      int64_t micro, const char *outcome, struct orch_error *err);
/* Drops a reservation without spend (the upstream was never reached or billed nothing). */
int llm_ledger_release(sqlite3 *db, int64_t id, struct orch_error *err);
/* At start: reservations left by a previous run are charged at their reserved worst
 * case (the upstream may have billed them). Returns how many. */
int llm_ledger_settle_stale(sqlite3 *db, struct orch_error *err);
