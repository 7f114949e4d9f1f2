/* SPDX-License-Identifier: Apache-2.0 */
/* JSON-RPC 2.0 peer: connection, outgoing calls, replies. Parsing and dispatching of
 * incoming messages lives in rpc-dispatch.c; shared internals in rpc-internal.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "frame.h"
#include "rpc-internal.h"

bool orch_rpc_is_rpc_code(int code)
{
	return (code <= -32000 && code >= -32099) || (code <= -32600 && code >= -32603) ||
	       code == ORCH_RPC_PARSE_ERROR;
}

json_t *orch_rpc_make_error(json_t *id, int code, const char *msg, json_t *data_new)
{
	json_t *e = json_pack("{s:i,s:s}", "code", code, "message", msg ? msg : "");
	json_t *r;

	if (!e) {
		json_decref(data_new);
		return NULL;
	}
	if (data_new && json_object_set_new(e, "data", data_new) < 0) {
		json_decref(e);
		return NULL;
	}
	r = json_pack("{s:s,s:o,s:O}", "jsonrpc", "2.0", "error", e, "id", id ? id : json_null());
	return r;
}

/* ---- pending outgoing calls ---- */

static size_t bucket_of(int64_t id)
{
	return (size_t)((uint64_t)id % RPC_BUCKETS);
}

struct rpc_pending *rpc_pending_take(struct orch_rpc *rpc, int64_t id)
{
	struct rpc_pending **pp = &rpc->pending[bucket_of(id)];

	for (; *pp; pp = &(*pp)->next) {
		struct rpc_pending *p = *pp;
		if (p->id == id) {
			*pp = p->next;
			rpc->n_outstanding--;
			orch_timer_free(p->timer);
			p->timer = NULL;
			return p;
		}
	}
	return NULL;
}

static void pending_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct rpc_pending *p = data;
	struct orch_rpc *rpc = p->rpc;
	struct orch_error err;

	p = rpc_pending_take(rpc, p->id);
	if (!p)
		return;
	orch_rpc_ref(rpc);
	orch_err(&err, ORCH_RPC_TIMEOUT, "no reply to %s within the timeout", p->method);
	if (p->cb)
		p->cb(rpc, NULL, &err, NULL, p->data);
	free(p);
	orch_rpc_unref(rpc);
}

static void fail_all_pending(struct orch_rpc *rpc)
{
	for (size_t b = 0; b < RPC_BUCKETS; b++) {
		while (rpc->pending[b]) {
			struct rpc_pending *p = rpc_pending_take(rpc, rpc->pending[b]->id);
			struct orch_error err;
			orch_err(&err, ORCH_RPC_CLOSED, "connection closed before %s was answered",
				 p->method);
			if (p->cb)
				p->cb(rpc, NULL, &err, NULL, p->data);
			free(p);
		}
	}
}

/* ---- I/O ---- */

static void update_events(struct orch_rpc *rpc)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP;

	if (!rpc->io)
		return;
	if (orch_frame_queued(rpc->frame) > 0 || rpc->fail_code)
		ev |= EPOLLOUT;
	(void)orch_io_set_events(rpc->io, ev);
}

static void maybe_drain(struct orch_rpc *rpc)
{
	if (rpc->want_drain && orch_frame_queued(rpc->frame) < rpc->opts.max_queued / 2) {
		rpc->want_drain = false;
		if (rpc->drain_cb)
			rpc->drain_cb(rpc, rpc->data);
	}
}

/* Writes what the fd takes now. Returns 0 or -errno (the connection is then closed). */
static int rpc_flush(struct orch_rpc *rpc)
{
	ssize_t n;

	if (rpc->fd < 0)
		return -ENOTCONN;
	n = orch_frame_flush(rpc->frame, rpc->fd);
	if (n < 0) {
		rpc_close_code(rpc, (int)n);
		return (int)n;
	}
	update_events(rpc);
	return 0;
}

int rpc_send_json(struct orch_rpc *rpc, json_t *msg, bool is_reply)
{
	_cleanup_free_ char *s = NULL;
	size_t len;
	int r;

	if (rpc->closed)
		return -ENOTCONN;
	s = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return -ENOMEM;
	len = strlen(s);
	/* Requests and notifications stop at max_queued (backpressure for producers);
	 * replies may use up to twice that, so answering never deadlocks on our own output.
	 * A peer that does not read even then is dropped by the caller. */
	if (!is_reply && orch_frame_queued(rpc->frame) + len + 1 > rpc->opts.max_queued) {
		rpc->want_drain = true;
		return -ENOBUFS;
	}
	r = orch_frame_queue(rpc->frame, s, len);
	if (r < 0)
		return r;
	if (orch_frame_queued(rpc->frame) == len + 1) {
		/* The queue was empty: try to write at once. A write error does not close
		 * here (the caller may hold no reference, and close callbacks must not run
		 * inside orch_rpc_call/notify/reply): EPOLLOUT stays on and the loop's next
		 * flush fails again and closes. */
		if (orch_frame_flush(rpc->frame, rpc->fd) < 0) {
			if (rpc->io)
				(void)orch_io_set_events(rpc->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
			return 0;
		}
	}
	update_events(rpc);
	return 0;
}

void rpc_fail_later(struct orch_rpc *rpc, int code)
{
	if (rpc->closed || rpc->fail_code)
		return;
	rpc->fail_code = code;
	if (rpc->io) /* wakes the loop at once: the socket is writable or has failed */
		(void)orch_io_set_events(rpc->io, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
}

static void rpc_read(struct orch_rpc *rpc);

static void on_resume(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orch_rpc *rpc = data;

	orch_rpc_ref(rpc);
	if (!rpc->closed && !rpc->fail_code)
		rpc_read(rpc);
	orch_rpc_unref(rpc);
}

/* Reads and dispatches what the frame's budget allows; lines it left buffered are taken
 * on the loop's next turn (a zero-delay timer), after the other connections had theirs. */
static void rpc_read(struct orch_rpc *rpc)
{
	int r;

	rpc->reading = true;
	r = orch_frame_read(rpc->frame, rpc->fd);
	rpc->reading = false;
	if (rpc->deferred_close_fd >= 0) {
		close(rpc->deferred_close_fd);
		rpc->deferred_close_fd = -1;
	}
	if (r == -EPIPE)
		rpc_close_code(rpc, 0);
	else if (r < 0 && r != -ECANCELED)
		rpc_close_code(rpc, r);
	if (rpc->closed || !orch_frame_backlog(rpc->frame))
		return;
	if (rpc->resume)
		orch_timer_rearm(rpc->resume, 0);
	else if (orch_timer_add(rpc->loop, 0, 0, on_resume, rpc, &rpc->resume) < 0)
		rpc_fail_later(rpc, -ENOMEM); /* cannot go on reading: better closed than stuck */
}

static void rpc_io_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct orch_rpc *rpc = data;

	orch_rpc_ref(rpc);
	if (rpc->fail_code) {
		rpc_close_code(rpc, rpc->fail_code);
		orch_rpc_unref(rpc);
		return;
	}
	if (events & EPOLLOUT) {
		if (rpc_flush(rpc) == 0)
			maybe_drain(rpc);
	}
	if (!rpc->closed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
		rpc_read(rpc);
	orch_rpc_unref(rpc);
}

/* ---- lifecycle ---- */

int orch_rpc_new(struct orch_loop *loop, int fd, const struct orch_rpc_method *methods,
		 size_t n_methods, const struct orch_rpc_opts *opts, void *data,
		 struct orch_rpc **ret)
{
	struct orch_rpc *rpc;
	int r;

	if (fd < 0)
		return -EBADF;
	rpc = calloc(1, sizeof(*rpc));
	if (!rpc)
		return -ENOMEM;
	rpc->ref = 1;
	rpc->loop = loop;
	rpc->fd = -1;
	rpc->deferred_close_fd = -1;
	rpc->methods = methods;
	rpc->n_methods = n_methods;
	if (opts)
		rpc->opts = *opts;
	if (!rpc->opts.max_line)
		rpc->opts.max_line = ORCH_FRAME_DEFAULT_MAX_LINE;
	if (!rpc->opts.max_queued)
		rpc->opts.max_queued = ORCH_FRAME_DEFAULT_MAX_QUEUED;
	if (!rpc->opts.max_inflight)
		rpc->opts.max_inflight = 64;
	if (!rpc->opts.max_outstanding)
		rpc->opts.max_outstanding = 1024;
	if (!rpc->opts.default_timeout_ms)
		rpc->opts.default_timeout_ms = 30000;
	if (rpc->opts.name)
		snprintf(rpc->name, sizeof(rpc->name), "%s", rpc->opts.name);
	rpc->opts.name = rpc->name;
	rpc->data = data;
	rpc->state = 1u; /* ORCH_STATE_NEW in schema.h */
	rpc->next_id = 1;
	r = orch_frame_new(rpc->opts.max_line, rpc->opts.max_queued * 2, rpc_on_line,
			   rpc_on_frame_error, rpc, &rpc->frame);
	if (r < 0)
		goto fail;
	r = orch_io_add(loop, fd, EPOLLIN | EPOLLRDHUP, rpc_io_cb, rpc, &rpc->io);
	if (r < 0)
		goto fail;
	rpc->fd = fd;
	*ret = rpc;
	return 0;
fail:
	orch_frame_free(rpc->frame);
	free(rpc);
	return r;
}

struct orch_rpc *orch_rpc_ref(struct orch_rpc *rpc)
{
	if (rpc)
		rpc->ref++;
	return rpc;
}

static void rpc_shutdown(struct orch_rpc *rpc)
{
	orch_timer_free(rpc->resume);
	rpc->resume = NULL;
	if (rpc->fd >= 0) {
		(void)orch_frame_flush(rpc->frame, rpc->fd);
		orch_io_free(rpc->io);
		rpc->io = NULL;
		if (rpc->reading) {
			/* orch_frame_read is still using this fd number: close it when it
			 * returns, so a new fd opened meanwhile (a reconnect in the close
			 * callback) can never be read in its place. */
			(void)shutdown(rpc->fd, SHUT_RDWR);
			rpc->deferred_close_fd = rpc->fd;
		} else {
			close(rpc->fd);
		}
		rpc->fd = -1;
	}
}

void rpc_close_code(struct orch_rpc *rpc, int code)
{
	if (rpc->closed)
		return;
	rpc->closed = true;
	orch_rpc_ref(rpc);
	rpc_shutdown(rpc);
	fail_all_pending(rpc);
	if (rpc->close_cb && !rpc->freeing)
		rpc->close_cb(rpc, code, rpc->data);
	orch_rpc_unref(rpc);
}

void orch_rpc_close(struct orch_rpc *rpc)
{
	if (rpc)
		rpc_close_code(rpc, 0);
}

void orch_rpc_unref(struct orch_rpc *rpc)
{
	if (!rpc || --rpc->ref > 0)
		return;
	if (rpc->freeing)
		return;
	/* Last reference: fail what is pending (callbacks may briefly ref/unref). */
	rpc->freeing = true;
	rpc->ref = 1;
	rpc_close_code(rpc, 0);
	orch_frame_free(rpc->frame);
	free(rpc);
}

void orch_rpc_set_close_cb(struct orch_rpc *rpc, orch_rpc_close_cb cb)
{
	rpc->close_cb = cb;
}

void orch_rpc_set_drain_cb(struct orch_rpc *rpc, orch_rpc_drain_cb cb)
{
	rpc->drain_cb = cb;
}

void orch_rpc_set_state(struct orch_rpc *rpc, uint32_t state)
{
	rpc->state = state;
}

uint32_t orch_rpc_get_state(const struct orch_rpc *rpc)
{
	return rpc->state;
}

void *orch_rpc_get_data(const struct orch_rpc *rpc)
{
	return rpc->data;
}

void orch_rpc_set_data(struct orch_rpc *rpc, void *data)
{
	rpc->data = data;
}

int orch_rpc_fd(const struct orch_rpc *rpc)
{
	return rpc->fd;
}

bool orch_rpc_is_closed(const struct orch_rpc *rpc)
{
	return rpc->closed;
}

size_t orch_rpc_queued(const struct orch_rpc *rpc)
{
	return orch_frame_queued(rpc->frame);
}

bool orch_rpc_inflight_full(const struct orch_rpc *rpc)
{
	return rpc->n_inflight >= rpc->opts.max_inflight;
}

void orch_rpc_get_stats(const struct orch_rpc *rpc, struct orch_rpc_stats *ret)
{
	*ret = rpc->stats;
}

/* ---- outgoing ---- */

int orch_rpc_call(struct orch_rpc *rpc, const char *method, json_t *params_new, uint64_t timeout_ms,
		  orch_rpc_reply_cb cb, void *data)
{
	_cleanup_json_ json_t *msg = NULL;
	_cleanup_free_ struct rpc_pending *p = NULL;
	size_t mlen = strlen(method);
	int64_t id;
	int r;

	if (rpc->closed) {
		json_decref(params_new);
		return -ENOTCONN;
	}
	if (rpc->n_outstanding >= rpc->opts.max_outstanding) {
		json_decref(params_new);
		return -EBUSY;
	}
	p = calloc(1, sizeof(*p) + mlen + 1);
	if (!p) {
		json_decref(params_new);
		return -ENOMEM;
	}
	id = rpc->next_id++;
	if (rpc->next_id > INT64_C(9007199254740991)) /* stay exact in doubles */
		rpc->next_id = 1;
	msg = json_pack("{s:s,s:s,s:I}", "jsonrpc", "2.0", "method", method, "id", (json_int_t)id);
	if (!msg || (params_new && json_object_set_new(msg, "params", params_new) < 0)) {
		if (!msg)
			json_decref(params_new);
		return -ENOMEM;
	}
	r = orch_timer_add(rpc->loop, timeout_ms ? timeout_ms : rpc->opts.default_timeout_ms, 0,
			   pending_timeout, p, &p->timer);
	if (r < 0)
		return r;
	r = rpc_send_json(rpc, msg, false);
	if (r < 0 || rpc->closed) {
		orch_timer_free(p->timer);
		return r < 0 ? r : -ENOTCONN;
	}
	p->rpc = rpc;
	p->id = id;
	p->cb = cb;
	p->data = data;
	memcpy(p->method, method, mlen + 1);
	p->next = rpc->pending[bucket_of(id)];
	rpc->pending[bucket_of(id)] = p;
	rpc->n_outstanding++;
	TAKE_PTR(p);
	return 0;
}

int orch_rpc_notify(struct orch_rpc *rpc, const char *method, json_t *params_new)
{
	_cleanup_json_ json_t *msg = NULL;
	int r;

	if (rpc->closed) {
		json_decref(params_new);
		return -ENOTCONN;
	}
	msg = json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", method);
	if (!msg || (params_new && json_object_set_new(msg, "params", params_new) < 0)) {
		if (!msg)
			json_decref(params_new);
		return -ENOMEM;
	}
	r = rpc_send_json(rpc, msg, false);
	return r;
}

/* ---- replies to incoming requests ---- */

struct orch_rpc_req *orch_rpc_req_ref(struct orch_rpc_req *req)
{
	if (req)
		req->ref++;
	return req;
}

void orch_rpc_req_unref(struct orch_rpc_req *req)
{
	if (!req || --req->ref > 0)
		return;
	if (!req->answered) {
		/* Dropped without an answer: the peer must not wait forever. */
		req->ref = 1;
		(void)orch_rpc_reply_error(req, ORCH_RPC_INTERNAL_ERROR,
					   "request dropped without a reply", NULL);
		req->ref = 0;
	}
	rpc_batch_unref(req->batch);
	json_decref(req->id);
	orch_rpc_unref(req->rpc);
	free(req);
}

struct orch_rpc *orch_rpc_req_rpc(const struct orch_rpc_req *req)
{
	return req->rpc;
}

const char *orch_rpc_req_method(const struct orch_rpc_req *req)
{
	return req->method;
}

/* Sends (or adds to the batch) one response object; steals resp. */
static int req_answer(struct orch_rpc_req *req, json_t *resp)
{
	struct orch_rpc *rpc = req->rpc;
	int r;

	if (req->answered) {
		json_decref(resp);
		return -EALREADY;
	}
	req->answered = true;
	rpc->n_inflight--;
	if (!resp)
		return -ENOMEM;
	if (rpc->closed) {
		json_decref(resp);
		return -ENOTCONN;
	}
	if (req->batch) {
		r = json_array_append_new(req->batch->responses, resp);
		rpc_batch_answered(req->batch);
		return r < 0 ? -ENOMEM : 0;
	}
	r = rpc_send_json(rpc, resp, true);
	json_decref(resp);
	if (r == -ENOBUFS || r == -EMSGSIZE) {
		if (r == -ENOBUFS) {
			rpc_fail_later(rpc, -ENOBUFS); /* the peer does not read its replies */
			return r;
		}
		/* The result does not fit in one line: tell the peer instead. */
		return rpc_send_json_stolen(
			rpc,
			orch_rpc_make_error(req->id, ORCH_RPC_INTERNAL_ERROR,
					    "result exceeds the maximum message size", NULL),
			true);
	}
	return r;
}

int orch_rpc_reply(struct orch_rpc_req *req, json_t *result_new)
{
	json_t *resp;

	if (req->answered) {
		json_decref(result_new);
		return -EALREADY;
	}
	resp = json_pack("{s:s,s:o,s:O}", "jsonrpc", "2.0", "result",
			 result_new ? result_new : json_null(), "id", req->id);
	return req_answer(req, resp);
}

int orch_rpc_reply_error(struct orch_rpc_req *req, int code, const char *msg, json_t *data_new)
{
	if (req->answered) {
		json_decref(data_new);
		return -EALREADY;
	}
	return req_answer(req, orch_rpc_make_error(req->id, code, msg, data_new));
}

int rpc_send_json_stolen(struct orch_rpc *rpc, json_t *msg, bool is_reply)
{
	int r;

	if (!msg)
		return -ENOMEM;
	r = rpc_send_json(rpc, msg, is_reply);
	json_decref(msg);
	if (r == -ENOBUFS && is_reply)
		rpc_fail_later(rpc, -ENOBUFS);
	return r;
}
