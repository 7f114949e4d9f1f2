/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM channel of its own (see llm-channel.h). */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"
#include "llm-channel.h"
#include "log.h"
#include "rpc.h"
#include "schema.h"
#include "transport.h"

#if ORCH_HAVE_LLM
#include "llm-endpoint.h"

#define LLM_DIAL_TIMEOUT_MS 2000
#define LLM_BACKOFF_MIN_MS 100
#define LLM_BACKOFF_MAX_MS 5000

struct sv_llm_channel {
	struct supervisor *sv;
	struct orch_addr addr;
	struct orch_rpc *rpc; /* NULL while disconnected */
	struct orch_timer *reconnect;
	uint64_t backoff_ms;
	uint64_t connected_ms; /* when the current connection was made */
	bool fd_used;	       /* fd:N cannot be dialled twice */
	bool stopping;
};

static void schedule(struct sv_llm_channel *lc)
{
	if (lc->stopping)
		return;
	if (lc->addr.kind == ORCH_TRANSPORT_FD && lc->fd_used) {
		orch_log(ORCH_LOG_WARN, "llm", "LLM channel closed and cannot be dialled again",
			 "connect", lc->sv->cfg->llm_connect, NULL);
		return;
	}
	uint64_t d = lc->backoff_ms;
	lc->backoff_ms = lc->backoff_ms ? lc->backoff_ms * 2 : LLM_BACKOFF_MIN_MS;
	if (lc->backoff_ms > LLM_BACKOFF_MAX_MS)
		lc->backoff_ms = LLM_BACKOFF_MAX_MS;
	orch_timer_rearm(lc->reconnect, d);
}

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
	/* A connection that ends at once (a virtio-serial port nobody holds on the host side
	 * opens fine and reads EOF) keeps the backoff growing; one that lasted starts over. */
	if (orch_now_ms() - lc->connected_ms >= LLM_BACKOFF_MAX_MS)
		lc->backoff_ms = 0;
	lc->rpc = NULL;
	llm_bridge_set_rpc(sv->llm, NULL); /* calls in flight end; new ones get 503 */
	orch_rpc_unref(rpc);
	schedule(lc);
}

static int dial(struct sv_llm_channel *lc, struct orch_error *err)
{
	struct supervisor *sv = lc->sv;
	int fd = orch_transport_dial(&lc->addr, LLM_DIAL_TIMEOUT_MS, err);
	if (fd < 0)
		return fd;
	if (lc->addr.kind == ORCH_TRANSPORT_FD)
		lc->fd_used = true;
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
	lc->connected_ms = orch_now_ms();
	llm_bridge_set_rpc(sv->llm, lc->rpc);
	orch_log(ORCH_LOG_INFO, "llm", "LLM channel connected", "connect", sv->cfg->llm_connect,
		 NULL);
	return 0;
}

static void connect_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct sv_llm_channel *lc = data;
	struct orch_error err = {0};
	if (lc->rpc || lc->stopping)
		return;
	if (dial(lc, &err) < 0 && !lc->rpc) {
		orch_log(ORCH_LOG_WARN, "llm", "cannot reach the host's LLM channel", "error",
			 err.msg, NULL);
		schedule(lc);
	}
}

int sv_llm_channel_start(struct supervisor *sv, struct orch_error *err)
{
	if (!sv->cfg->llm_connect || !sv->llm)
		return 0;
	struct sv_llm_channel *lc = calloc(1, sizeof(*lc));
	if (!lc)
		return orch_err(err, -ENOMEM, "out of memory");
	lc->sv = sv;
	int r = orch_addr_parse(sv->cfg->llm_connect, &lc->addr, err);
	if (r < 0) {
		free(lc);
		return orch_err_prefix(err, "--llm-connect");
	}
	if ((r = orch_timer_add(sv->loop, 0, 0, connect_cb, lc, &lc->reconnect)) < 0) {
		free(lc);
		return orch_errno(err, r, "LLM channel timer");
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
	orch_timer_free(lc->reconnect);
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
	if (!lc || lc->rpc || lc->stopping)
		return;
	lc->backoff_ms = 0;
	orch_timer_rearm(lc->reconnect, 0);
}

#else /* without guest/llm there is nothing to carry */

int sv_llm_channel_start(struct supervisor *sv, struct orch_error *err)
{
	if (sv->cfg->llm_connect)
		orch_log(ORCH_LOG_WARN, "llm",
			 "--llm-connect ignored: this build has no LLM endpoint (guest/llm/)",
			 NULL);
	return 0;
}

void sv_llm_channel_stop(struct supervisor *sv)
{
}

bool sv_llm_channel_connected(const struct supervisor *sv)
{
	return false;
}

void sv_llm_channel_redial(struct supervisor *sv)
{
}
#endif
