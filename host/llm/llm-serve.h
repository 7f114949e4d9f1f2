/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's side of one guest LLM channel: llm.request (guest -> host request) becomes an
 * llm_proxy call; its result {status, headers} is the reply, the body follows as
 * llm.chunk notifications and ends with llm.done. llm.cancel (the agent hung up) detaches
 * the call so that the upstream is drained and billed without forwarding.
 *
 * The agent's identity is "<vm>/<slot>", where the slot comes from the llm.request and is
 * checked by orchd's resolver (which also names the task running in it): the guest's own
 * "task" member is ignored. A slot with no task running is refused (403 in the provider's
 * shape, "no task is running in agent slot N"): nothing is forwarded, reserved or billed.
 *
 * Ownership: each call in flight holds its llm_exchange until the exchange ends (the
 * sink's done) or the call detaches it; a detached exchange never calls back, and the
 * call that detached it ends at once (llm.cancel, llm_serve_free, or a channel that can
 * no longer take the call's bytes: llm.done with an error). No pointer outlives its
 * object in either direction; llm-serve.c states the rule at struct call. */
#pragma once

#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "rpc.h"
#include "llm-proxy.h"

struct llm_serve;

/* Maps a slot of this VM to the task running in it (*ret_task NULL when idle; the string
 * must stay valid until the call returns). Returns < 0 for a slot that does not exist.
 * Required. */
typedef int (*llm_slot_resolver)(void *data, int64_t slot, const char **ret_task);

#define LLM_SERVE_MAX_INFLIGHT 256

/* rpc is the LLM channel of VM vm_name (borrowed; free the serve before the rpc). The
 * serve installs the channel's drain callback (backpressure: a stream whose chunks do not
 * fit the channel's queue pauses its upstream transfer until the queue drains); that
 * callback expects the rpc's data to be the serve. If orchd keeps other data on the rpc,
 * it sets its own drain callback after this and calls llm_serve_drained from it. */
int llm_serve_new(struct llm_proxy *proxy, struct orch_rpc *rpc, const char *vm_name,
		  llm_slot_resolver resolve, void *resolve_data, struct llm_serve **ret);
/* Detaches every call in flight (they are drained and billed) and frees them; a request
 * not answered yet gets an error reply (dropped when the channel is closed). Free the
 * serve when its channel closes (from the rpc's close callback is fine: nothing of the
 * rpc is used but orch_rpc_notify/reply, which fail quietly on a closed channel) and
 * before the proxy. */
void llm_serve_free(struct llm_serve *s);
unsigned llm_serve_inflight(const struct llm_serve *s);
void llm_serve_drained(struct llm_serve *s);

/* Handlers for orchd's method table; they expect orch_rpc_get_data(rpc) to be the
 * struct llm_serve (or call llm_serve_request/llm_serve_cancel from your own handlers):
 *   {"llm.request", ORCH_RPC_M_REQUEST, <state>, llm_serve_on_request}
 *   {"llm.cancel",  ORCH_RPC_M_NOTIFY,  <state>, llm_serve_on_cancel} */
int llm_serve_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			 struct orch_error *err);
int llm_serve_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err);

int llm_serve_request(struct llm_serve *s, struct orch_rpc_req *req, json_t *params,
		      struct orch_error *err);
int llm_serve_cancel(struct llm_serve *s, json_t *params, struct orch_error *err);
