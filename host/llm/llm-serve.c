/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "schema.h"
#include "llm-serve.h"

/* Body bytes orch answered itself that did not fit the channel: kept until it drains. */
#define PENDING_MAX (1024 * 1024)

/* A call and its exchange (llm-proxy.c) point at each other while both live, and the
 * link is cut from one side only, in one of two ways:
 *   - the exchange ends: on_done clears c->ex (the proxy frees the exchange after it);
 *   - the call lets go (call_detach): c->ex is cleared, then llm_exchange_detach, after
 *     which the exchange never calls the sink again, so its pointer to the call is dead
 *     and the call may be freed at once (the exchange is drained, billed and freed by
 *     the proxy on its own).
 * A call is freed only once it holds no exchange. Every call_detach is followed by the
 * call's end in the same step: llm.cancel and llm_serve_free free it, a call whose bytes
 * can no longer be forwarded is ended (call_abandon: llm.done with an error, or
 * `finishing` until the channel takes it). While llm_proxy_start runs, c->ex is not set
 * yet: a refusal is delivered inside it and always ends with on_done. */
struct call {
	struct llm_serve *s;
	char req[ORCH_MAX_ID_LEN + 1];
	struct orch_rpc_req *rpc_req; /* until replied */
	struct llm_exchange *ex;      /* NULL once done or detached (see above) */
	int64_t seq;
	bool broken;		/* bytes were lost: the agent gets a cut stream */
	bool paused;		/* the exchange waits for the channel to drain */
	unsigned char *pending; /* bytes not yet sent as llm.chunk */
	size_t pending_len;
	bool finishing; /* done, but pending bytes and llm.done are still to be sent */
	int64_t done_code;
	char done_msg[ORCH_ERROR_MSG_MAX];
	unsigned gen;
	struct call *next, *prev;
};

struct llm_serve {
	struct llm_proxy *proxy;
	struct orch_rpc *rpc;
	char vm[65];
	llm_slot_resolver resolve;
	void *resolve_data;
	struct call *calls;
	unsigned n_calls;
	unsigned gen;
};

static void on_drain(struct orch_rpc *rpc, void *data);

int llm_serve_new(struct llm_proxy *proxy, struct orch_rpc *rpc, const char *vm_name,
		  llm_slot_resolver resolve, void *resolve_data, struct llm_serve **ret)
{
	struct llm_serve *s;

	if (!vm_name || strlen(vm_name) > 64 || !resolve)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->proxy = proxy;
	s->rpc = rpc;
	strcpy(s->vm, vm_name);
	s->resolve = resolve;
	s->resolve_data = resolve_data;
	/* The LLM channel is the serve's own: it takes the channel's drain callback (which
	 * gets the rpc's data: that must be the serve, see llm-serve.h). */
	orch_rpc_set_drain_cb(rpc, on_drain);
	*ret = s;
	return 0;
}

static void call_unlink(struct call *c)
{
	struct llm_serve *s = c->s;

	if (c->prev)
		c->prev->next = c->next;
	else if (s->calls == c)
		s->calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	s->n_calls--;
}

static void call_free(struct call *c)
{
	free(c->pending);
	if (c->rpc_req) {
		orch_rpc_reply_error(c->rpc_req, ORCH_RPC_CLOSED, "llm call abandoned", NULL);
		orch_rpc_req_unref(c->rpc_req);
	}
	free(c);
}

/* The call lets go of its exchange (see struct call); the caller ends the call. */
static void call_detach(struct call *c)
{
	struct llm_exchange *ex = c->ex;

	c->ex = NULL;
	c->paused = false;
	llm_exchange_detach(ex); /* no sink callback after this; may free ex */
}

void llm_serve_free(struct llm_serve *s)
{
	if (!s)
		return;
	while (s->calls) {
		struct call *c = s->calls;
		call_unlink(c);
		call_detach(c);
		call_free(c);
	}
	free(s);
}

unsigned llm_serve_inflight(const struct llm_serve *s)
{
	return s->n_calls;
}

static struct call *find(struct llm_serve *s, const char *req)
{
	for (struct call *c = s->calls; c; c = c->next)
		if (strcmp(c->req, req) == 0)
			return c;
	return NULL;
}

static void finish(struct call *c);

/* The call's bytes can no longer reach the agent (its channel is gone, or they do not fit):
 * the exchange is detached (drained and billed without forwarding) and the call ends with
 * an llm.done that says so, now or when the channel drains; c may be freed. Inside
 * llm_proxy_start (no exchange yet, not finishing) the call is only marked: on_done
 * follows there. */
static void call_abandon(struct call *c)
{
	c->broken = true;
	free(c->pending);
	c->pending = NULL;
	c->pending_len = 0;
	if (c->ex)
		call_detach(c);
	else if (!c->finishing)
		return;
	finish(c);
}

static void on_head(void *data, int status, json_t *headers)
{
	struct call *c = data;
	struct orch_llm_response r = {.status = status, .headers = headers};
	_cleanup_json_ json_t *empty = NULL;
	int ret;

	if (!c->rpc_req)
		return;
	if (!headers)
		r.headers = empty = json_object();
	ret = orch_rpc_reply(c->rpc_req, orch_llm_response_build(&r));
	orch_rpc_req_unref(c->rpc_req);
	c->rpc_req = NULL;
	if (ret < 0)
		call_abandon(c); /* may free c */
}

static int send_chunk(struct call *c, const unsigned char *p, size_t n)
{
	json_t *m = orch_llm_chunk_build(c->req, c->seq, p, n);
	int r;

	if (!m)
		return -ENOMEM;
	r = orch_rpc_notify(c->s->rpc, "llm.chunk", m);
	if (r >= 0)
		c->seq++;
	return r;
}

/* Sends pending bytes; 0 when all went, -ENOBUFS when the channel is full again, another
 * -errno when the channel can not take them at all. */
static int flush_pending(struct call *c)
{
	size_t off = 0;
	int r = 0;

	while (off < c->pending_len) {
		size_t n = c->pending_len - off;
		if (n > ORCH_MAX_LLM_CHUNK)
			n = ORCH_MAX_LLM_CHUNK;
		r = send_chunk(c, c->pending + off, n);
		if (r < 0)
			break;
		off += n;
	}
	memmove(c->pending, c->pending + off, c->pending_len - off);
	c->pending_len -= off;
	return r < 0 ? r : 0;
}

static bool keep(struct call *c, const void *buf, size_t len)
{
	unsigned char *n;

	if (c->pending_len + len > PENDING_MAX)
		return false;
	n = realloc(c->pending, c->pending_len + len);
	if (!n)
		return false;
	memcpy(n + c->pending_len, buf, len);
	c->pending = n;
	c->pending_len += len;
	return true;
}

/* Returns true for "not taken, pause" (only when can_pause). May free c (call_abandon):
 * the exchange is detached first, and it touches nothing of the call after this returns. */
static bool on_body(void *data, const void *buf, size_t len, bool can_pause)
{
	struct call *c = data;
	const unsigned char *p = buf;
	size_t off = 0;
	int r = 0;

	if (c->broken) {
		call_abandon(c);
		return false;
	}
	if (c->pending_len > 0 && can_pause) {
		c->paused = true; /* the same bytes come again once the pending ones went */
		return true;
	}
	if (c->pending_len == 0) {
		while (off < len) {
			size_t n = len - off > ORCH_MAX_LLM_CHUNK ? ORCH_MAX_LLM_CHUNK : len - off;
			r = send_chunk(c, p + off, n);
			if (r < 0)
				break;
			off += n;
		}
		if (off == len)
			return false;
		if (r != -ENOBUFS) {
			/* The channel is gone: stop forwarding, keep billing. */
			call_abandon(c);
			return false;
		}
		if (off == 0 && can_pause) {
			c->paused = true; /* resumed by llm_serve_drained */
			return true;
		}
	}
	if (!keep(c, p + off, len - off)) {
		call_abandon(c);
		return false;
	}
	if (can_pause)
		c->paused = true; /* taken, but nothing more until the pending bytes went */
	return false;
}

/* Sends llm.done and frees c; when the channel is full, c waits as `finishing`. */
static void finish(struct call *c)
{
	struct orch_llm_done d = {.req = c->req};

	if (c->broken) {
		d.error_code = -EPIPE;
		d.error_message = "the answer could not be forwarded in full";
	} else if (c->done_code) {
		d.error_code = c->done_code;
		d.error_message = c->done_msg;
	}
	if (orch_rpc_notify(c->s->rpc, "llm.done", orch_llm_done_build(&d)) == -ENOBUFS) {
		c->finishing = true; /* sent by llm_serve_drained */
		return;
	}
	call_unlink(c);
	call_free(c);
}

static void on_done(void *data, const struct llm_outcome *o)
{
	struct call *c = data;

	c->ex = NULL;
	c->paused = false;
	if (o->code < 0 && o->status < 400) {
		c->done_code = o->code;
		snprintf(c->done_msg, sizeof(c->done_msg), "%s",
			 o->msg && *o->msg ? o->msg : "the upstream answer was cut short");
	}
	if (c->pending_len) {
		c->finishing = true;
		return;
	}
	finish(c);
}

/* The channel has room again: pending bytes first, then paused exchanges, in turn. */
static void on_drain(struct orch_rpc *rpc, void *data)
{
	llm_serve_drained(data);
}

/* Each turn starts again from the list's head: whatever a turn did (a call freed, another
 * paused or ended by its exchange), only the list is trusted, and `gen` keeps a call from
 * being served twice in one drain. */
void llm_serve_drained(struct llm_serve *s)
{
	unsigned gen = ++s->gen;

	for (;;) {
		struct call *c = s->calls;
		int r = 0;
		while (c && (c->gen == gen || !(c->paused || c->finishing)))
			c = c->next;
		if (!c)
			return;
		c->gen = gen;
		if (c->pending_len)
			r = flush_pending(c);
		if (r == -ENOBUFS)
			return; /* full again: the next drain goes on */
		if (r < 0) {
			call_abandon(c); /* may free c */
			continue;
		}
		if (c->finishing) {
			finish(c); /* may free c */
			continue;
		}
		c->paused = false;
		llm_exchange_resume(c->ex); /* may pause it again, or end and free c */
	}
}

static const struct llm_sink sink = {
	.head = on_head,
	.body = on_body,
	.done = on_done,
};

int llm_serve_request(struct llm_serve *s, struct orch_rpc_req *req, json_t *params,
		      struct orch_error *err)
{
	struct orch_llm_request r;
	struct llm_call call = {0};
	struct llm_exchange *ex = NULL;
	const char *task = NULL;
	char agent[96], msg[128];
	struct call *c;
	int ret;

	ret = orch_llm_request_parse(params, &r, err);
	if (ret < 0)
		return ret;
	if (find(s, r.req)) {
		ret = orch_err(err, ORCH_RPC_CONFLICT, "llm.request: request id '%s' is in use",
			       r.req);
		goto out;
	}
	if (s->n_calls >= LLM_SERVE_MAX_INFLIGHT) {
		ret = orch_err(err, ORCH_RPC_BUSY, "llm.request: too many requests in flight");
		goto out;
	}
	if (s->resolve(s->resolve_data, r.slot, &task) < 0) {
		ret = orch_err(err, ORCH_RPC_NOT_FOUND, "llm.request: no slot %lld on vm %s",
			       (long long)r.slot, s->vm);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		ret = orch_err(err, -ENOMEM, "out of memory");
		goto out;
	}
	snprintf(agent, sizeof(agent), "%s/%lld", s->vm, (long long)r.slot);
	c->s = s;
	snprintf(c->req, sizeof(c->req), "%s", r.req);
	c->rpc_req = orch_rpc_req_ref(req);
	c->next = s->calls;
	if (s->calls)
		s->calls->prev = c;
	s->calls = c;
	s->n_calls++;
	call = (struct llm_call){
		.agent = agent,
		.vm = s->vm,
		.task = task,
		.method = r.method,
		.path = r.path,
		.headers = r.headers,
		.body = r.body,
		.body_len = r.body_len,
	};
	/* Refusals complete (and may free c) inside these calls: c is touched again only when
	 * an exchange was started (no sink callback has run then). */
	if (!task) {
		/* Between tasks nothing may spend: there is no task to bill it to. */
		snprintf(msg, sizeof(msg),
			 "no task is running in agent slot %lld; orch serves LLM requests to "
			 "running tasks only",
			 (long long)r.slot);
		ret = llm_proxy_refuse(s->proxy, &call, 403, "no_running_task", msg, &sink, c);
	} else {
		ret = llm_proxy_start(s->proxy, &call, &sink, c, &ex);
	}
	if (ret >= 0 && ex)
		c->ex = ex;
	if (ret < 0) {
		call_unlink(c);
		orch_rpc_req_unref(c->rpc_req);
		c->rpc_req = NULL;
		free(c);
		ret = orch_err(err, ret, "llm.request: out of memory");
	}
out:
	orch_llm_request_done(&r);
	return ret;
}

int llm_serve_cancel(struct llm_serve *s, json_t *params, struct orch_error *err)
{
	struct orch_llm_cancel cn;
	struct call *c;
	int r;

	r = orch_llm_cancel_parse(params, &cn, err);
	if (r < 0)
		return r;
	c = find(s, cn.req);
	if (!c)
		return 0; /* finished already */
	call_unlink(c);
	call_detach(c);
	call_free(c);
	return 0;
}

int llm_serve_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			 struct orch_error *err)
{
	return llm_serve_request(orch_rpc_get_data(rpc), req, params, err);
}

int llm_serve_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	return llm_serve_cancel(orch_rpc_get_data(rpc), params, err);
}
