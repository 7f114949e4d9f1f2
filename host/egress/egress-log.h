/* SPDX-License-Identifier: Apache-2.0 */
/* The egress tables of orchd's store (migration 4 in host/store/store-schema.c): the sets each
 * task asked for (egress_tasks) and one row per agent connection (egress_log), bounded
 * to egress.log_keep rows (the oldest go first). */
#pragma once

#include <stdint.h>
#include <jansson.h>
#include <sqlite3.h>

#include "error.h"

struct egress_log_row {
	int64_t ts_ms; /* wall clock, ms since the epoch */
	int64_t task;  /* 0: none */
	const char *vm;
	int64_t slot;
	const char *kind; /* "connect" | "http" */
	const char *host;
	int64_t port;
	bool allowed;
	const char *reason; /* "" for an allowed connection that ended normally */
	int64_t bytes_up, bytes_down, duration_ms;
};

int egress_log_insert(sqlite3 *db, const struct egress_log_row *r, struct orch_error *err);
/* Keeps the newest keep rows. */
int egress_log_prune(sqlite3 *db, int64_t keep, struct orch_error *err);
/* The newest rows first (task 0: all tasks), at most limit, as an array of objects
 * {id, ts, task, vm, slot, kind, host, port, verdict, reason, bytes_up, bytes_down,
 * duration_ms}. */
int egress_log_query(sqlite3 *db, int64_t task, int64_t limit, json_t **ret,
		     struct orch_error *err);
/* {connections, allowed, denied, bytes_up, bytes_down, hosts: [{host, port, verdict,
 * connections}] (at most 20)} of one task; NULL when it made none. */
json_t *egress_log_summary(sqlite3 *db, int64_t task);

/* The sets task asked for (a JSON array text is stored). */
int egress_task_sets_put(sqlite3 *db, int64_t task, char *const *sets, struct orch_error *err);
/* NULL-terminated, free with orch_strv_free; an empty list when none were stored. */
int egress_task_sets_get(sqlite3 *db, int64_t task, char ***ret, struct orch_error *err);
