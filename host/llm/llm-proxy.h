/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM proxy: one call from an agent becomes at most one upstream request.
 *
 *   route -> requests in flight (host, VM, agent) -> rate limits (agent, task) -> policy
 *   (size, JSON shape, max_tokens cap, stripped tools) -> model allowlist -> worst-case
 *   reservation in the ledger -> upstream with the real key -> stream back -> read usage
 *   -> settle.
 *
 * Every exchange counts as in flight until it is freed, also after its agent left (while
 * it is drained): so one VM or one agent can not hold the host's places by starting and
 * abandoning streams. The caps are llm_config's max_inflight (host), vm_inflight and
 * agent_inflight; a refusal is 429 with retry-after.
 *
 * Refusals are answered in the provider's error shape (llm-errors.h) and nothing is
 * forwarded. If the agent leaves mid-stream (llm_exchange_detach) the upstream is read on,
 * up to drain_max_bytes, so the usage is still recorded; when it can not be learnt the
 * reservation's worst case is charged. */
#pragma once

#include <stdint.h>
#include <sqlite3.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"
#include "llm-config.h"
#include "llm-types.h"

struct llm_proxy;
struct llm_exchange;

/* cfg (keys loaded) and db (migrated by store_migrate) must outlive the proxy. */
int llm_proxy_new(struct orch_loop *loop, sqlite3 *db, const struct llm_config *cfg,
		  struct llm_proxy **ret, struct orch_error *err);
/* Books reservations and spend through orchd's store (store.h's LLM operations: with
 * PostgreSQL shared by every node) instead of db. */
struct store;
void llm_proxy_use_store(struct llm_proxy *p, struct store *store);
/* Aborts what is in flight (reservations stay, settle_stale charges them at start). */
void llm_proxy_free(struct llm_proxy *p);
unsigned llm_proxy_inflight(const struct llm_proxy *p);

struct llm_call {
	const char *agent;  /* budget scope of the slot, e.g. "dev/2" (required) */
	const char *vm;	    /* the VM the agent runs in (its in-flight cap); NULL: none */
	const char *task;   /* task id or NULL */
	const char *method; /* "GET" / "POST" */
	const char *path;   /* "/v1/messages" ... (a query string is ignored) */
	json_t *headers;    /* agent's headers, string -> string (only a few are used) */
	const void *body;
	size_t body_len;
};

struct llm_outcome {
	int code;	 /* 0: complete; -errno: failed or refused (see msg) */
	const char *msg; /* "" or why */
	int status;	 /* HTTP status given to the agent */
	const char *model;
	struct llm_usage usage;
	int64_t cost_micro;  /* what the ledger recorded */
	const char *settled; /* "ok", "released", "incomplete", "disconnected", "refused", ... */
};

struct llm_sink {
	/* Response head: status and headers (borrowed). Called once. */
	void (*head)(void *data, int status, json_t *headers);
	/* Response bytes. When can_pause is true the sink may return true for "not taken,
	 * pause": the same bytes come again after llm_exchange_resume (backpressure when the
	 * guest channel is full). When can_pause is false (answers orch makes itself) the
	 * sink must take the bytes. */
	bool (*body)(void *data, const void *buf, size_t len, bool can_pause);
	/* The end; the exchange is freed after it returns. */
	void (*done)(void *data, const struct llm_outcome *o);
};

/* Starts one call. A refusal (and any error before the upstream is contacted) is delivered
 * through the sink before this returns, with *ret set to NULL; otherwise *ret is the
 * exchange, valid until sink->done. Returns < 0 only when nothing was delivered (no
 * memory). */
int llm_proxy_start(struct llm_proxy *p, const struct llm_call *call, const struct llm_sink *sink,
		    void *data, struct llm_exchange **ret);
/* Answers a call its caller refuses itself (orchd: no task runs in the slot) with status
 * and msg in the error shape of the call's path (code: OpenAI's error.code), through the
 * sink before this returns, as llm_proxy_start answers its own refusals. Nothing is
 * forwarded, reserved or billed. Returns < 0 only when nothing was delivered. */
int llm_proxy_refuse(struct llm_proxy *p, const struct llm_call *call, int status, const char *code,
		     const char *msg, const struct llm_sink *sink, void *data);
/* The agent hung up: no sink callback after this; the upstream is drained and billed and
 * the exchange freed by the proxy (the caller must forget ex). Safe from inside the
 * exchange's own sink callbacks (the exchange is never paused then). NULL is a no-op. */
void llm_exchange_detach(struct llm_exchange *ex);
/* Continues an exchange whose sink paused it. Not from inside its own sink callbacks. */
void llm_exchange_resume(struct llm_exchange *ex);
