/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM channel of its own (see llm-channel.h). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "dialer.h"
#include "llm-channel.h"
#include "log.h"
#include "rpc.h"
#include "schema.h"
#include "transport.h"

#include "llm-endpoint.h"

struct sv_llm_channel {
	struct supervisor *sv;
	struct orch_rpc *rpc; /* NULL while disconnected */
	struct orch_dialer *dialer;
	bool stopping;
};

static int m_chunk(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	struct sv_llm_channel *lc = data;
	return llm_bridge_on_chunk(lc->sv->llm, params, err);
}

static int m_done(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	struct sv_llm_channel *lc = data;
	return llm_bridge_on_done(lc->sv->llm, params, err);
}

/* Host -> guest on this channel: nothing else. */
static const struct orch_rpc_method methods[] = {
	{"llm.chunk", ORCH_RPC_M_NOTIFY, 0, m_chunk},
	{"llm.done", ORCH_RPC_M_NOTIFY, 0, m_done},
};

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	struct sv_llm_channel *lc = data;
	struct supervisor *sv = lc->sv;
	if (lc->rpc != rpc)
		return;
	orch_logf(ORCH_LOG_INFO, "llm", "LLM channel closed (%d)", code);
	lc->rpc = NULL;
	llm_bridge_set_rpc(sv->llm, NULL); /* calls in flight end; new ones get 503 */
	orch_rpc_unref(rpc);
	if (!lc->stopping)
		orch_dialer_closed(lc->dialer); /* the backoff starts over if it lasted */
}

static int on_connected(void *data, int fd, struct orch_error *err)
{
	struct sv_llm_channel *lc = data;
	struct supervisor *sv = lc->sv;
	/* An llm.request carries a body of up to ORCH_MAX_LLM_BODY in base64 on one line. */
	struct orch_rpc_opts opts = {.max_line = ORCH_PROTOCOL_MAX_LINE,
				     .max_queued = 2 * ORCH_PROTOCOL_MAX_LINE,
				     .name = "host-llm"};
	int r = orch_rpc_new(sv->loop, fd, methods, ELEMENTSOF(methods), &opts, lc, &lc->rpc);
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "cannot set up the LLM channel");
	}
	orch_rpc_set_close_cb(lc->rpc, on_close);
	orch_rpc_set_state(lc->rpc, ORCH_STATE_READY);
	llm_bridge_set_rpc(sv->llm, lc->rpc);
	orch_log(ORCH_LOG_INFO, "llm", "LLM channel connected", "connect", sv->cfg->llm_connect,
		 NULL);
	return 0;
}

static void on_dial_failed(void *data, const struct orch_error *err)
{
	orch_log(ORCH_LOG_WARN, "llm", "cannot reach the host's LLM channel", "error", err->msg,
		 NULL);
}

static void on_gone(void *data)
{
	struct sv_llm_channel *lc = data;
	orch_log(ORCH_LOG_WARN, "llm", "LLM channel closed and cannot be dialled again", "connect",
		 lc->sv->cfg->llm_connect, NULL);
}

static const struct orch_dialer_ops dialer_ops = {
	.connected = on_connected,
	.failed = on_dial_failed,
	.gone = on_gone,
};

int sv_llm_channel_start(struct supervisor *sv, struct orch_error *err)
{
	if (!sv->cfg->llm_connect || !sv->llm)
		return 0;
	struct sv_llm_channel *lc = calloc(1, sizeof(*lc));
	if (!lc)
		return orch_err(err, -ENOMEM, "out of memory");
	lc->sv = sv;
	struct orch_addr addr;
	int r = orch_addr_parse(sv->cfg->llm_connect, &addr, err);
	if (r < 0) {
		free(lc);
		return orch_err_prefix(err, "--llm-connect");
	}
	if ((r = orch_dialer_new(sv->loop, &addr, NULL, &dialer_ops, lc, &lc->dialer)) < 0) {
		free(lc);
		return orch_errno(err, r, "LLM channel dialer");
	}
	sv->llm_chan = lc;
	return 0;
}

void sv_llm_channel_stop(struct supervisor *sv)
{
	struct sv_llm_channel *lc = sv->llm_chan;
	if (!lc)
		return;
	lc->stopping = true;
	orch_dialer_free(lc->dialer);
	if (lc->rpc) {
		struct orch_rpc *rpc = lc->rpc;
		lc->rpc = NULL;
		llm_bridge_set_rpc(sv->llm, NULL);
		orch_rpc_close(rpc);
		orch_rpc_unref(rpc);
	}
	sv->llm_chan = NULL;
	free(lc);
}

bool sv_llm_channel_connected(const struct supervisor *sv)
{
	return sv->llm_chan && sv->llm_chan->rpc && !orch_rpc_is_closed(sv->llm_chan->rpc);
}

void sv_llm_channel_redial(struct supervisor *sv)
{
	struct sv_llm_channel *lc = sv->llm_chan;
	if (lc && !lc->rpc && !lc->stopping)
		orch_dialer_now(lc->dialer);
}
