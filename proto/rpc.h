/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 peer over one NDJSON connection, usable from both ends: either side sends
 * requests and notifications and answers the other's. Incoming methods come from a table;
 * a method is refused unless the table permits it in the connection's current state
 * (e.g. nothing but "hello" before the handshake). Batches follow the specification.
 * Every byte from the peer is untrusted: lines are bounded (see frame.h), parsed with
 * JSON_REJECT_DUPLICATES, and a bad message gets an error reply, never a crash. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"

/* Error codes from the specification. */
#define ORCH_RPC_PARSE_ERROR -32700
#define ORCH_RPC_INVALID_REQUEST -32600
#define ORCH_RPC_METHOD_NOT_FOUND -32601
#define ORCH_RPC_INVALID_PARAMS -32602
#define ORCH_RPC_INTERNAL_ERROR -32603
/* orch's own server errors (-32000..-32099 is reserved for implementations). */
#define ORCH_RPC_NOT_ALLOWED -32000 /* method not permitted in this state (e.g. before hello) */
#define ORCH_RPC_BUSY -32001	    /* slot busy, too many requests in flight, queue full */
#define ORCH_RPC_NOT_FOUND -32002   /* unknown task / vm / request id */
#define ORCH_RPC_TIMEOUT -32003	    /* a local timeout: no reply in time */
#define ORCH_RPC_CLOSED -32004	    /* the connection closed before a reply arrived */
#define ORCH_RPC_DENIED -32005	    /* caller not authorised */
#define ORCH_RPC_CONFLICT -32006    /* object is in the wrong state for this */
#define ORCH_RPC_LIMIT -32007	    /* a budget or rate limit refused it */

/* True for the codes above (protocol-level), false for -errno values. */
bool orch_rpc_is_rpc_code(int code);

struct orch_rpc;     /* one peer (one connection); refcounted */
struct orch_rpc_req; /* an incoming request awaiting its reply; refcounted */

/* Handler for an incoming request (req != NULL) or notification (req == NULL).
 * params is borrowed (NULL when absent; otherwise an object or array).
 * A request must be answered exactly once, now or later (orch_rpc_req_ref to keep req
 * past the handler). Returning < 0 without having replied answers with an error: err's
 * code when it is a JSON-RPC code (orch_rpc_is_rpc_code), else ORCH_RPC_INTERNAL_ERROR,
 * with err->msg as the message. Returning >= 0 without replying defers the reply. */
typedef int (*orch_rpc_handler)(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
				void *data, struct orch_error *err);

enum {
	ORCH_RPC_M_REQUEST = 1u << 0, /* may arrive as a request */
	ORCH_RPC_M_NOTIFY = 1u << 1,  /* may arrive as a notification */
};

struct orch_rpc_method {
	const char *name;
	unsigned flags;	 /* ORCH_RPC_M_* */
	uint32_t states; /* bit mask of connection states in which it is allowed; 0: any */
	orch_rpc_handler handler;
};

/* Result of an outgoing request: exactly one of result (borrowed) / err is set.
 * err->code is the peer's error code, or ORCH_RPC_TIMEOUT / ORCH_RPC_CLOSED locally.
 * When err comes from the peer, err_data is its "data" member (borrowed, may be NULL). */
typedef void (*orch_rpc_reply_cb)(struct orch_rpc *rpc, json_t *result,
				  const struct orch_error *err, json_t *err_data, void *data);

/* Called once when the connection ends (EOF, I/O error, orch_rpc_close). code is 0 for a
 * clean close, else -errno. Pending outgoing calls have already been failed with
 * ORCH_RPC_CLOSED. */
typedef void (*orch_rpc_close_cb)(struct orch_rpc *rpc, int code, void *data);

/* Called when the outgoing queue has drained below half of max_queued after a send was
 * refused with -ENOBUFS (resume producing). */
typedef void (*orch_rpc_drain_cb)(struct orch_rpc *rpc, void *data);

struct orch_rpc_opts {
	size_t max_line;	     /* 0: ORCH_FRAME_DEFAULT_MAX_LINE */
	size_t max_queued;	     /* 0: ORCH_FRAME_DEFAULT_MAX_QUEUED */
	unsigned max_inflight;	     /* incoming requests awaiting replies; 0: 64 */
	unsigned max_outstanding;    /* outgoing requests awaiting replies; 0: 1024 */
	uint64_t default_timeout_ms; /* for orch_rpc_call with timeout 0; 0: 30000 */
	const char *name;	     /* for messages, e.g. "guest:dev" */
};

/* Takes ownership of fd (non-blocking; closed when the rpc is freed) and watches it on loop.
 * methods must outlive the rpc. data is passed to handlers and callbacks. */
int orch_rpc_new(struct orch_loop *loop, int fd, const struct orch_rpc_method *methods,
		 size_t n_methods, const struct orch_rpc_opts *opts, void *data,
		 struct orch_rpc **ret);
struct orch_rpc *orch_rpc_ref(struct orch_rpc *rpc);
void orch_rpc_unref(struct orch_rpc *rpc);
/* Flushes what it can, stops reading, fails pending calls, fires on_close. Idempotent. */
void orch_rpc_close(struct orch_rpc *rpc);

void orch_rpc_set_close_cb(struct orch_rpc *rpc, orch_rpc_close_cb cb);
void orch_rpc_set_drain_cb(struct orch_rpc *rpc, orch_rpc_drain_cb cb);
/* The initial state is 1u (ORCH_STATE_NEW in schema.h). */
void orch_rpc_set_state(struct orch_rpc *rpc, uint32_t state);
uint32_t orch_rpc_get_state(const struct orch_rpc *rpc);
void *orch_rpc_get_data(const struct orch_rpc *rpc);
void orch_rpc_set_data(struct orch_rpc *rpc, void *data);
int orch_rpc_fd(const struct orch_rpc *rpc);
bool orch_rpc_is_closed(const struct orch_rpc *rpc);
/* Bytes waiting in the outgoing queue. */
size_t orch_rpc_queued(const struct orch_rpc *rpc);
/* True when the next incoming request would be refused as one too many in flight
 * (max_inflight requests await their replies). */
bool orch_rpc_inflight_full(const struct orch_rpc *rpc);

/* Counters of what the peer sent that was dropped or refused (never a crash). */
struct orch_rpc_stats {
	uint64_t dropped_responses;	/* responses to unknown/expired ids, duplicates */
	uint64_t invalid_messages;	/* parse errors, invalid requests/responses */
	uint64_t oversized_lines;	/* lines over max_line, skipped */
	uint64_t dropped_notifications; /* unknown or not-allowed notifications */
	uint64_t busy_refusals;		/* requests refused because max_inflight was reached */
};
void orch_rpc_get_stats(const struct orch_rpc *rpc, struct orch_rpc_stats *ret);

/* Sends a request; params_new is stolen (may be NULL). cb may be NULL (reply ignored).
 * timeout_ms 0 takes the default. Returns 0 or -ENOBUFS/-ENOTCONN/-EBUSY (too many
 * outstanding); on failure cb is NOT called. */
int orch_rpc_call(struct orch_rpc *rpc, const char *method, json_t *params_new, uint64_t timeout_ms,
		  orch_rpc_reply_cb cb, void *data);
/* Sends a notification; params_new is stolen. Returns 0 or -ENOBUFS/-ENOTCONN. */
int orch_rpc_notify(struct orch_rpc *rpc, const char *method, json_t *params_new);

/* Replies to an incoming request (result_new stolen; NULL means json null). Returns 0, or
 * -EALREADY if it was answered before, -ENOTCONN if the connection is gone (dropped). */
int orch_rpc_reply(struct orch_rpc_req *req, json_t *result_new);
int orch_rpc_reply_error(struct orch_rpc_req *req, int code, const char *msg, json_t *data_new);
struct orch_rpc_req *orch_rpc_req_ref(struct orch_rpc_req *req);
void orch_rpc_req_unref(struct orch_rpc_req *req);
struct orch_rpc *orch_rpc_req_rpc(const struct orch_rpc_req *req);
const char *orch_rpc_req_method(const struct orch_rpc_req *req);

/* Pure helpers (no I/O), shared by the peer and tests. */
json_t *orch_rpc_make_error(json_t *id, int code, const char *msg, json_t *data_new);
