/* SPDX-License-Identifier: Apache-2.0 */
/* The endpoints' bridge to the host (llm-endpoint.h): the channel their calls go out on,
 * and the host's chunks and ends of streamed answers coming back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "llm-endpoint-int.h"

int llm_bridge_new(struct orch_loop *loop, struct llm_bridge **ret, struct orch_error *err)
{
	struct llm_bridge *b = calloc(1, sizeof(*b));

	if (!b)
		return orch_err(err, -ENOMEM, "out of memory");
	b->loop = loop;
	*ret = b;
	return 0;
}

void llm_bridge_free(struct llm_bridge *b)
{
	if (!b)
		return;
	free(b->helper);
	free(b);
}

int llm_bridge_set_helper(struct llm_bridge *b, const char *exe)
{
	char *e = NULL;

	if (exe && !(e = strdup(exe)))
		return -ENOMEM;
	free(b->helper);
	b->helper = e;
	return 0;
}

void llm_bridge_set_rpc(struct llm_bridge *b, struct orch_rpc *rpc)
{
	struct orch_rpc *old = b->rpc;

	b->rpc = rpc;
	if (!old || old == rpc)
		return;
	/* The host side of the answers being streamed is gone: they end with an error.
	 * (Those still waiting for their head were failed by the old channel.) */
	for (size_t s = 0; s < ORCH_MAX_SLOTS; s++) {
		struct llm_endpoint *ep = b->eps[s];
		bool stuck = false;
		for (struct call *c = ep ? ep->calls : NULL, *next; c; c = next) {
			next = c->next;
			if (!c->streaming)
				continue;
			struct orch_llm_done d = {.req = c->req,
						  .error_code = ORCH_RPC_CLOSED,
						  .error_message =
							  "the LLM channel to the host closed"};
			json_t *m = llm_ep_notification("llm.done", orch_llm_done_build(&d));
			llm_ep_call_end(c);
			if (stuck)
				json_decref(m);
			else if (llm_ep_proc_send(ep, m) < 0)
				stuck = true;
		}
		if (stuck)
			llm_ep_proc_stop(ep, "does not read its connection", true);
	}
}

int llm_bridge_on_chunk(struct llm_bridge *b, json_t *params, struct orch_error *err)
{
	struct orch_llm_chunk ch;
	struct call *c;
	int64_t seq;
	int r;

	if ((r = orch_llm_chunk_parse(params, &ch, err)) < 0)
		return r;
	seq = ch.seq;
	c = llm_ep_call_by_host_req(b, ch.req);
	orch_llm_chunk_done(&ch);
	if (!c || !c->streaming)
		return 0; /* the agent left already */
	/* The data member is passed on as it came (validated above). */
	json_t *m = llm_ep_notification("llm.chunk", json_pack("{s:s, s:I, s:O}", "req", c->req,
							       "seq", (json_int_t)seq, "data",
							       json_object_get(params, "data")));
	if (llm_ep_proc_send(c->ep, m) < 0)
		llm_ep_proc_stop(c->ep, "does not read its connection", true);
	return 0;
}

int llm_bridge_on_done(struct llm_bridge *b, json_t *params, struct orch_error *err)
{
	struct orch_llm_done d;
	struct llm_endpoint *ep;
	struct call *c;
	int r;

	if ((r = orch_llm_done_parse(params, &d, err)) < 0)
		return r;
	c = llm_ep_call_by_host_req(b, d.req);
	if (!c || c->awaiting)
		return 0;
	d.req = c->req;
	json_t *m = llm_ep_notification("llm.done", orch_llm_done_build(&d));
	ep = c->ep;
	llm_ep_call_end(c);
	if (llm_ep_proc_send(ep, m) < 0)
		llm_ep_proc_stop(ep, "does not read its connection", true);
	return 0;
}

static int m_chunk(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	return llm_bridge_on_chunk(orch_rpc_get_data(rpc), params, err);
}

static int m_done(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return llm_bridge_on_done(orch_rpc_get_data(rpc), params, err);
}

const struct orch_rpc_method llm_bridge_methods[2] = {
	{"llm.chunk", ORCH_RPC_M_NOTIFY, 0, m_chunk},
	{"llm.done", ORCH_RPC_M_NOTIFY, 0, m_done},
};
