/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's side of the in-jail LLM endpoints: listeners, endpoint processes,
 * re-validation and routing (see llm-endpoint.h). Nothing here parses HTTP; what comes
 * from an endpoint process is treated as an agent's words. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "frame.h"
#include "llm-endpoint-int.h"
#include "llm-endpoint.h"
#include "llm-helper.h"
#include "llm-http.h"
#include "log.h"
#include "privsep.h"
#include "schema.h"

#define HOST_TIMEOUT_MS (15 * 60 * 1000) /* until the host has the upstream's head */
#define PROC_MAX_QUEUED ((size_t)ORCH_PROTOCOL_MAX_LINE) /* towards one endpoint process */

static const char *mhd_path = ORCH_MHD_LIBRARY;
static bool mhd_path_set;

const char *llm_endpoint_library(void)
{
	return mhd_path;
}

int llm_endpoint_set_library(const char *path)
{
	mhd_path = path;
	mhd_path_set = true;
	return 0;
}

/* ---- calls ---- */

static void call_link(struct llm_endpoint *ep, struct call *c)
{
	c->ep = ep;
	c->prev = NULL;
	c->next = ep->calls;
	if (ep->calls)
		ep->calls->prev = c;
	ep->calls = c;
	ep->n_calls++;
}

/* Out of its endpoint's list; freed now, or by the host's reply when that is pending. */
void llm_ep_call_end(struct call *c)
{
	struct llm_endpoint *ep = c->ep;

	if (ep) {
		if (c->prev)
			c->prev->next = c->next;
		else
			ep->calls = c->next;
		if (c->next)
			c->next->prev = c->prev;
		ep->n_calls--;
		c->ep = NULL;
	}
	if (!c->awaiting)
		free(c);
}

static struct call *call_by_req(struct llm_endpoint *ep, const char *req, json_int_t id)
{
	for (struct call *c = ep->calls; c; c = c->next)
		if (strcmp(c->req, req) == 0 || (id >= 0 && c->id == id))
			return c;
	return NULL;
}

/* The host's ids name their slot: s<slot>-<n>. */
struct call *llm_ep_call_by_host_req(struct llm_bridge *b, const char *host_req)
{
	char *end;
	unsigned long slot;

	if (host_req[0] != 's' || host_req[1] < '0' || host_req[1] > '9')
		return NULL;
	slot = strtoul(host_req + 1, &end, 10);
	if (*end != '-' || slot >= ORCH_MAX_SLOTS || !b->eps[slot])
		return NULL;
	for (struct call *c = b->eps[slot]->calls; c; c = c->next)
		if (strcmp(c->host_req, host_req) == 0)
			return c;
	return NULL;
}

static void host_cancel(struct llm_bridge *b, struct call *c)
{
	struct orch_llm_cancel cn = {.req = c->host_req};

	if (b->rpc)
		(void)orch_rpc_notify(b->rpc, "llm.cancel", orch_llm_cancel_build(&cn));
}

/* ---- towards the endpoint process ---- */

static void sock_events(struct llm_endpoint *ep)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP;

	if (orch_frame_queued(ep->frame) > 0)
		ev |= EPOLLOUT;
	(void)orch_io_set_events(ep->sock_io, ev);
}

/* Queues one message (stolen). < 0: it cannot take it (it does not read: stop it). */
int llm_ep_proc_send(struct llm_endpoint *ep, json_t *msg_new)
{
	_cleanup_json_ json_t *msg = msg_new;
	_cleanup_free_ char *s = NULL;
	bool was_empty;
	int r;

	if (!ep->frame)
		return -ENOTCONN;
	if (!msg || !(s = json_dumps(msg, JSON_COMPACT)))
		return -ENOMEM;
	was_empty = orch_frame_queued(ep->frame) == 0;
	if ((r = orch_frame_queue(ep->frame, s, strlen(s))) < 0)
		return r;
	if (was_empty && orch_frame_flush(ep->frame, ep->sock) < 0)
		return -EPIPE;
	sock_events(ep);
	return 0;
}

json_t *llm_ep_notification(const char *method, json_t *params_new)
{
	json_t *m = params_new ? json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", method,
					   "params", params_new)
			       : NULL;
	return m;
}

static int proc_reply(struct llm_endpoint *ep, json_int_t id, json_t *result_new)
{
	return llm_ep_proc_send(ep, result_new ? json_pack("{s:s, s:I, s:o}", "jsonrpc", "2.0",
							   "id", id, "result", result_new)
					       : NULL);
}

static int proc_reply_error(struct llm_endpoint *ep, json_int_t id, int code, const char *msg)
{
	_cleanup_json_ json_t *jid = json_integer(id);
	return llm_ep_proc_send(ep, jid ? orch_rpc_make_error(jid, code, msg, NULL) : NULL);
}

/* ---- from the endpoint process ---- */

static int misbehaved(struct llm_endpoint *ep, const char *why, const char *detail)
{
	if (!ep->bad) {
		snprintf(ep->bad_buf, sizeof(ep->bad_buf), "%s%s%s", why, detail ? ": " : "",
			 detail ? detail : "");
		ep->bad = ep->bad_buf;
	}
	return -EPROTO;
}

static void on_host_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
			  json_t *err_data, void *data)
{
	struct call *c = data;
	struct llm_endpoint *ep = c->ep;
	struct orch_llm_response resp;
	struct orch_error perr = {0};
	int r;

	c->awaiting = false;
	if (!ep) { /* its endpoint process left meanwhile */
		free(c);
		return;
	}
	if (err) {
		r = proc_reply_error(ep, c->id,
				     orch_rpc_is_rpc_code(err->code) ? err->code
								     : ORCH_RPC_INTERNAL_ERROR,
				     err->msg);
		llm_ep_call_end(c);
	} else if (orch_llm_response_parse(result, &resp, &perr) < 0) {
		r = proc_reply_error(ep, c->id, ORCH_RPC_INTERNAL_ERROR, perr.msg);
		host_cancel(ep->b, c);
		llm_ep_call_end(c);
	} else {
		r = proc_reply(ep, c->id, orch_llm_response_build(&resp));
		c->streaming = true;
	}
	if (r < 0)
		llm_ep_proc_stop(ep, "does not read its connection", true);
}

/* llm.request: validated, then rebuilt for the host with this slot, its task and an id
 * of ours. */
static int on_request(struct llm_endpoint *ep, json_int_t id, json_t *params)
{
	struct llm_bridge *b = ep->b;
	struct orch_llm_request q;
	struct orch_error perr = {0};
	size_t max_body = ep->o.max_body ? ep->o.max_body : LLM_ENDPOINT_MAX_BODY;
	json_t *hp, *body;
	struct call *c;
	int r;

	if (orch_llm_request_parse(params, &q, &perr) < 0)
		return misbehaved(ep, "sent an invalid llm.request", perr.msg);
	orch_llm_request_done(&q); /* the decoded body: only its size matters here */
	if (q.body_len > max_body)
		return misbehaved(ep, "sent a body over the limit", NULL);
	if (call_by_req(ep, q.req, id))
		return misbehaved(ep, "reused a request id", NULL);
	if (ep->n_calls >= LLM_ENDPOINT_MAX_CONNS)
		return misbehaved(ep, "has too many requests in flight", NULL);
	if (!b->rpc)
		return proc_reply_error(ep, id, ORCH_RPC_CLOSED, "no LLM channel to the host") < 0
			       ? misbehaved(ep, "does not read its connection", NULL)
			       : 0;
	if (!(c = calloc(1, sizeof(*c))))
		return proc_reply_error(ep, id, ORCH_RPC_BUSY, "out of memory") < 0
			       ? misbehaved(ep, "does not read its connection", NULL)
			       : 0;
	c->id = id;
	snprintf(c->req, sizeof(c->req), "%s", q.req);
	snprintf(c->host_req, sizeof(c->host_req), "s%" PRId64 "-%" PRIu64, ep->o.slot,
		 ++b->counter);
	body = json_object_get(params, "body");
	hp = json_pack("{s:s, s:I, s:s, s:s, s:o, s:o}", "req", c->host_req, "slot",
		       (json_int_t)ep->o.slot, "method", q.method, "path", q.path, "headers",
		       q.headers ? json_incref(q.headers) : json_object(), "body",
		       body ? json_incref(body) : json_string(""));
	if (hp && ep->task && json_object_set_new(hp, "task", json_string(ep->task)) < 0) {
		json_decref(hp);
		hp = NULL;
	}
	r = hp ? orch_rpc_call(b->rpc, "llm.request", hp, HOST_TIMEOUT_MS, on_host_reply, c)
	       : -ENOMEM;
	if (r < 0) {
		free(c);
		r = proc_reply_error(ep, id,
				     r == -ENOTCONN   ? ORCH_RPC_CLOSED
				     : r == -EMSGSIZE ? ORCH_RPC_INTERNAL_ERROR
						      : ORCH_RPC_BUSY,
				     r == -EMSGSIZE
					     ? "request too large for orch's channel to the host"
					     : "the LLM channel to the host cannot take it");
		return r < 0 ? misbehaved(ep, "does not read its connection", NULL) : 0;
	}
	c->awaiting = true;
	call_link(ep, c);
	return 0;
}

static int on_cancel(struct llm_endpoint *ep, json_t *params)
{
	struct orch_llm_cancel cn;
	struct orch_error perr = {0};
	struct call *c;

	if (orch_llm_cancel_parse(params, &cn, &perr) < 0)
		return misbehaved(ep, "sent an invalid llm.cancel", perr.msg);
	c = call_by_req(ep, cn.req, -1);
	if (!c)
		return 0; /* ended already */
	host_cancel(ep->b, c);
	llm_ep_call_end(c);
	return 0;
}

/* One line from the endpoint process: llm.request (a request with an integer id) or
 * llm.cancel (a llm_ep_notification), nothing else. */
static int on_line(void *data, const char *line, size_t len)
{
	struct llm_endpoint *ep = data;
	json_error_t jerr;
	_cleanup_json_ json_t *m = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *v, *method;
	json_t *id = NULL, *params;

	if (!m ||
	    json_unpack_ex(m, &jerr, JSON_STRICT, "{s:s, s:s, s?o, s:o}", "jsonrpc", &v, "method",
			   &method, "id", &id, "params", &params) < 0 ||
	    strcmp(v, "2.0") != 0)
		return misbehaved(ep, "sent a malformed message", NULL);
	if (!strcmp(method, "llm.request") && id && json_is_integer(id) &&
	    json_integer_value(id) >= 0)
		return on_request(ep, json_integer_value(id), params);
	if (!strcmp(method, "llm.cancel") && !id)
		return on_cancel(ep, params);
	return misbehaved(ep, "sent an unexpected message", NULL);
}

static void on_frame_error(void *data, int code, const char *msg)
{
	if (code == -EMSGSIZE)
		(void)misbehaved(data, "sent an over-long line", NULL);
}

/* Why the process is gone, when it is: its exit status; else fallback. */
static const char *exit_reason(struct llm_endpoint *ep, const char *fallback, char *buf,
			       size_t size)
{
	int code, status;

	if (!sv_helper_exited(&ep->h.proc, &code, &status))
		return fallback;
	if (code == CLD_EXITED)
		snprintf(buf, size, "exited with status %d", status);
	else
		snprintf(buf, size, "was killed by signal %d", status);
	return buf;
}

static void on_sock(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct llm_endpoint *ep = data;
	char why[64];
	int r = 0;

	if ((events & EPOLLOUT) && orch_frame_flush(ep->frame, fd) < 0)
		r = -EPIPE;
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
		r = orch_frame_read(ep->frame, fd);
	if (ep->bad || r < 0) {
		/* The connection also ends when the process dies: say which. */
		llm_ep_proc_stop(
			ep,
			ep->bad ? ep->bad
				: exit_reason(ep, "closed its connection", why, sizeof(why)),
			true);
		return;
	}
	sock_events(ep);
}

static void on_exited(void *data)
{
	struct llm_endpoint *ep = data;
	char why[64];

	llm_ep_proc_stop(ep, exit_reason(ep, "exited", why, sizeof(why)), true);
}

/* ---- the endpoint process's life ---- */

/* Ends the process and its requests (cancelled on the host: their agents' connections
 * end with the process). why: logged (NULL: a deliberate stop, not logged). restart:
 * serve the next connection with a new one. */
void llm_ep_proc_stop(struct llm_endpoint *ep, const char *why, bool restart)
{
	if (!ep->h.proc.pid)
		return;
	while (ep->calls) {
		host_cancel(ep->b, ep->calls);
		llm_ep_call_end(ep->calls);
	}
	orch_io_free(ep->sock_io);
	ep->sock_io = NULL;
	orch_frame_free(ep->frame);
	ep->frame = NULL;
	closep(&ep->sock);
	ep->sock = -1;
	ep->bad = NULL;
	sv_listener_stop(&ep->h, why, restart);
}

static int proc_start(void *data, struct orch_error *err)
{
	struct llm_endpoint *ep = data;
	struct llm_bridge *b = ep->b;
	char slot[24], uid[24], gid[24], max_body[24];
	const char *argv[16];
	size_t n = 0;
	int sp[2], r;
	bool root = geteuid() == 0;

	snprintf(slot, sizeof(slot), "%" PRId64, ep->o.slot);
	snprintf(uid, sizeof(uid), "%u", root ? (unsigned)ep->o.uid : (unsigned)getuid());
	snprintf(gid, sizeof(gid), "%u", root ? (unsigned)ep->o.gid : (unsigned)getgid());
	snprintf(max_body, sizeof(max_body), "%zu", ep->o.max_body);
	argv[n++] = "orch-llm-endpoint";
	argv[n++] = LLM_HELPER_ARG;
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--uid";
	argv[n++] = uid;
	argv[n++] = "--gid";
	argv[n++] = gid;
	argv[n++] = "--max-body";
	argv[n++] = max_body;
	if (mhd_path_set) {
		argv[n++] = "--library";
		argv[n++] = mhd_path;
	}
	if (ep->o.no_seccomp)
		argv[n++] = "--no-seccomp";
	argv[n] = NULL;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return orch_errno(err, -errno, "socketpair");
	int fds[2] = {ep->h.listen_fd, sp[1]};
	struct sv_helper_spawn s = {.exe = b->helper,
				    .argv = (char *const *)argv,
				    .fds = fds,
				    .n_fds = 2,
				    .netns_fd = ep->o.netns_fd};
	r = sv_helper_spawn(&s, &ep->h.proc, err);
	close(sp[1]);
	if (r < 0) {
		close(sp[0]);
		return r;
	}
	ep->sock = sp[0];
	if (fcntl(ep->sock, F_SETFL, O_NONBLOCK) < 0 ||
	    orch_frame_new(ORCH_PROTOCOL_MAX_LINE, PROC_MAX_QUEUED, on_line, on_frame_error, ep,
			   &ep->frame) < 0 ||
	    orch_io_add(b->loop, ep->sock, EPOLLIN | EPOLLRDHUP, on_sock, ep, &ep->sock_io) < 0 ||
	    sv_listener_started(&ep->h) < 0) {
		llm_ep_proc_stop(ep, NULL, false);
		return orch_err(err, -ENOMEM, "cannot watch the endpoint process");
	}
	return 0;
}

static void refuse_waiting(int fd)
{
	llm_refuse_waiting(fd); /* a fixed 503 each, so that clients fail at once */
}

static const struct sv_listener_ops proc_ops = {
	.start = proc_start,
	.exited = on_exited,
	.refuse = refuse_waiting,
};

/* ---- endpoints ---- */

int llm_endpoint_new(struct llm_bridge *b, int listen_fd, const struct llm_endpoint_opts *o,
		     struct llm_endpoint **ret, struct orch_error *err)
{
	_cleanup_close_ int fd = listen_fd;
	_cleanup_free_ struct llm_endpoint *ep = NULL;
	int r;

	if (o->slot < 0 || o->slot >= ORCH_MAX_SLOTS)
		return orch_err(err, -EINVAL, "llm endpoint: slot %lld out of range",
				(long long)o->slot);
	if (b->eps[o->slot])
		return orch_err(err, -EEXIST, "llm endpoint: slot %lld has one already",
				(long long)o->slot);
	if (geteuid() == 0 && (o->uid == 0 || o->gid == 0))
		return orch_err(err, -EINVAL, "llm endpoint: refusing to run it as root");
	if (!(ep = calloc(1, sizeof(*ep))))
		return orch_err(err, -ENOMEM, "out of memory");
	ep->b = b;
	ep->o = *o;
	ep->sock = -1;
	ep->h = (struct sv_listener){.loop = b->loop,
				     .ops = &proc_ops,
				     .data = ep,
				     .comp = "llm",
				     .name = "LLM endpoint process",
				     .unavailable = "LLM endpoint unavailable",
				     .slot = (unsigned)o->slot};
	if ((r = sv_listener_init(&ep->h, fd, err)) < 0)
		return r;
	fd = -1; /* the endpoint's now */
	b->eps[o->slot] = ep;
	b->n_endpoints++;
	*ret = TAKE_PTR(ep);
	return 0;
}

int llm_endpoint_set_task(struct llm_endpoint *ep, const char *task)
{
	char *t = NULL;

	if (task && !(t = strdup(task)))
		return -ENOMEM;
	free(ep->task);
	ep->task = t;
	return 0;
}

pid_t llm_endpoint_pid(const struct llm_endpoint *ep)
{
	return ep ? ep->h.proc.pid : 0;
}

void llm_endpoint_free(struct llm_endpoint *ep)
{
	if (!ep)
		return;
	llm_ep_proc_stop(ep, NULL, false);
	sv_listener_free(&ep->h);
	ep->b->eps[ep->o.slot] = NULL;
	ep->b->n_endpoints--;
	free(ep->task);
	free(ep);
}
