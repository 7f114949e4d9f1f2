/* SPDX-License-Identifier: Apache-2.0 */
/* What llm-endpoint.c (listeners, endpoint processes, calls) shares with its split
 * llm-bridge.c (the calls' way to the host): private to the two. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "frame.h"
#include "helper-listener.h"
#include "llm-endpoint.h"
#include "loop.h"
#include "privsep.h"
#include "rpc.h"
#include "schema.h"

/* One request of an endpoint process, forwarded to the host. */
struct call {
	struct llm_endpoint *ep;	    /* NULL: orphaned, freed by the host's reply */
	json_int_t id;			    /* the endpoint process's JSON-RPC id */
	char req[ORCH_MAX_ID_LEN + 1];	    /* its req */
	char host_req[ORCH_MAX_ID_LEN + 1]; /* ours on the host channel: s<slot>-<n> */
	bool awaiting;			    /* the host's reply is pending (holds a pointer) */
	bool streaming;			    /* answered: chunks flow until llm.done */
	struct call *next, *prev;
};

struct llm_bridge {
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	struct llm_endpoint *eps[ORCH_MAX_SLOTS];
	uint64_t counter;
	char *helper;
	unsigned n_endpoints;
};

struct llm_endpoint {
	struct llm_bridge *b;
	struct llm_endpoint_opts o;
	char *task;
	struct sv_listener h; /* the endpoint process, started on the first connection */
	int sock;
	struct orch_frame *frame;
	struct orch_io *sock_io;
	const char *bad; /* why it must go, found while its line was read */
	char bad_buf[ORCH_ERROR_MSG_MAX + 64];
	struct call *calls;
	unsigned n_calls;
};

/* Ends a call (unlinked and freed, or orphaned while the host's reply is pending). */
void llm_ep_call_end(struct call *c);
/* The call with this id on the host channel, if its endpoint still has it. */
struct call *llm_ep_call_by_host_req(struct llm_bridge *b, const char *host_req);
/* A JSON-RPC notification towards an endpoint process (params taken). */
json_t *llm_ep_notification(const char *method, json_t *params_new);
/* Queues msg (taken) towards the endpoint process; < 0 when it cannot take more. */
int llm_ep_proc_send(struct llm_endpoint *ep, json_t *msg_new);
/* Stops the endpoint process (why: logged); restart: after the backoff. */
void llm_ep_proc_stop(struct llm_endpoint *ep, const char *why, bool restart);
