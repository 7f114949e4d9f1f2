/* SPDX-License-Identifier: Apache-2.0 */
#include "llm-book.h"

int llm_book_reserve(struct store *s, sqlite3 *db, const struct llm_limits *defaults,
		     const char *agent, const char *task, int64_t micro, int64_t tokens,
		     int64_t *ret_id, struct orch_error *err)
{
	if (s)
		return store_llm_reserve(s, defaults, agent, task, micro, tokens, ret_id, err);
	return llm_ledger_reserve(db, defaults, agent, task, micro, tokens, ret_id, err);
}

int llm_book_settle(struct store *s, sqlite3 *db, int64_t id, const char *model,
		    const struct llm_usage *u, int64_t micro, const char *outcome,
		    struct orch_error *err)
{
	if (s)
		return store_llm_settle(s, id, model, u, micro, outcome, err);
	return llm_ledger_settle(db, id, model, u, micro, outcome, err);
}

int llm_book_release(struct store *s, sqlite3 *db, int64_t id, struct orch_error *err)
{
	if (s)
		return store_llm_release(s, id, err);
	return llm_ledger_release(db, id, err);
}
