/* SPDX-License-Identifier: Apache-2.0 */
/* Internals shared by rpc.c (connection, sending) and rpc-dispatch.c (incoming). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "frame.h"
#include "rpc.h"

#define RPC_BUCKETS 64
#define RPC_MAX_BATCH 1024

struct rpc_pending {
	struct rpc_pending *next;
	struct orch_rpc *rpc;
	int64_t id;
	orch_rpc_reply_cb cb;
	void *data;
	struct orch_timer *timer;
	char method[];
};

/* The responses of one incoming batch, sent as one array once every request in it is
 * answered (some may be answered later by deferred handlers). */
struct rpc_batch {
	unsigned ref;
	unsigned outstanding; /* requests not answered yet */
	bool sealed;	      /* all members dispatched */
	bool sent;
	struct orch_rpc *rpc;
	json_t *responses;
};

struct orch_rpc_req {
	unsigned ref;
	bool answered;
	struct orch_rpc *rpc; /* holds a reference */
	json_t *id;
	struct rpc_batch *batch; /* NULL when not part of a batch */
	char method[];
};

struct orch_rpc {
	unsigned ref;
	bool closed, freeing, want_drain;
	bool reading;	       /* inside orch_frame_read */
	int deferred_close_fd; /* closed once orch_frame_read returns */
	int fail_code;	       /* != 0: close with it from the loop (rpc_fail_later) */
	struct orch_loop *loop;
	int fd;
	struct orch_io *io;
	struct orch_timer *resume; /* reads buffered lines left by the frame's budget */
	struct orch_frame *frame;
	const struct orch_rpc_method *methods;
	size_t n_methods;
	struct orch_rpc_opts opts;
	char name[64];
	void *data;
	uint32_t state;
	orch_rpc_close_cb close_cb;
	orch_rpc_drain_cb drain_cb;
	int64_t next_id;
	unsigned n_outstanding, n_inflight;
	struct rpc_pending *pending[RPC_BUCKETS];
	struct orch_rpc_stats stats;
};

/* rpc.c */
int rpc_send_json(struct orch_rpc *rpc, json_t *msg, bool is_reply);
/* Steals msg (NULL: -ENOMEM). A reply that cannot be queued closes the connection. */
int rpc_send_json_stolen(struct orch_rpc *rpc, json_t *msg, bool is_reply);
void rpc_close_code(struct orch_rpc *rpc, int code);
/* Closes from the loop's next io callback instead of here, so close callbacks never run
 * inside orch_rpc_reply and friends. Incoming lines are ignored meanwhile. */
void rpc_fail_later(struct orch_rpc *rpc, int code);
struct rpc_pending *rpc_pending_take(struct orch_rpc *rpc, int64_t id);

/* rpc-dispatch.c */
int rpc_on_line(void *data, const char *line, size_t len);
void rpc_on_frame_error(void *data, int code, const char *msg);
void rpc_batch_answered(struct rpc_batch *b);
void rpc_batch_unref(struct rpc_batch *b);
