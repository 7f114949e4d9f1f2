/* SPDX-License-Identifier: Apache-2.0 */
/* Where the LLM proxy books its reservations and spend: orchd's store (store.h's LLM
 * operations: SQLite or a PostgreSQL ledger shared by every node) when it has one, else
 * a bare ledger database (llm-ledger.h), as the proxy's own tests give it. */
#pragma once

#include <stdint.h>
#include <sqlite3.h>

#include "llm-ledger.h"
#include "store.h"

int llm_book_reserve(struct store *s, sqlite3 *db, const struct llm_limits *defaults,
		     const char *agent, const char *task, int64_t micro, int64_t tokens,
		     int64_t *ret_id, struct orch_error *err);
int llm_book_settle(struct store *s, sqlite3 *db, int64_t id, const char *model,
		    const struct llm_usage *u, int64_t micro, const char *outcome,
		    struct orch_error *err);
int llm_book_release(struct store *s, sqlite3 *db, int64_t id, struct orch_error *err);
