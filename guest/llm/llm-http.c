/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP side of an in-jail LLM endpoint, run by the unprivileged endpoint process
 * (llm-helper.c; see llm-http.h). */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <microhttpd.h>

#include "cleanup.h"
#include "llm-endpoint.h"
#include "llm-http.h"
#include "log.h"
#include "schema.h"

/* The supervisor answers first (its own host call times out at 15 minutes). */
#define SUPERVISOR_TIMEOUT_MS (16 * 60 * 1000)

enum conn_state {
	C_NEW = 0,   /* headers and body arriving */
	C_SENT,	     /* llm.request sent, waiting for its reply */
	C_STREAMING, /* response queued, body arriving as llm.chunk */
	C_LOCAL,     /* answered locally (error) */
};

struct conn {
	struct llm_http *h;
	struct MHD_Connection *mc;
	enum conn_state state;
	char req[ORCH_MAX_ID_LEN + 1];
	int reject; /* HTTP status to answer with instead of forwarding */
	enum dialect { D_ANTHROPIC = 0, D_OPENAI, D_GEMINI } dialect; /* of the path: errors */
	char *body;
	size_t body_len;
	bool too_big, awaiting, orphan, suspended, done, failed, routed;
	int64_t next_seq;
	char *buf; /* response bytes not yet taken by MHD */
	size_t buf_len, buf_off;
	struct conn *next, *prev; /* routing list */
};

struct llm_http {
	struct orch_loop *loop;
	struct orch_rpc *rpc; /* to the supervisor */
	struct MHD_Daemon *d; /* NULL: libmicrohttpd unavailable, fixed 503s instead */
	int listen_fd;
	struct orch_io *listen_io; /* without libmicrohttpd */
	struct orch_io *io;
	struct orch_timer *timer;
	struct conn *conns;
	uint64_t counter;
	int64_t slot;
	size_t max_body;
};

/* ---- libmicrohttpd ----
 * Loaded with dlopen by the endpoint process before it drops its privileges (and its
 * view of the filesystem). The supervisor never maps it: Debian's libmicrohttpd pulls in
 * GnuTLS and its dependencies (p11-kit, nettle, gmp...), about 2.3 MiB of resident pages
 * in every process that maps them, although the endpoint never speaks TLS. */

#define MHD_FUNCS(X)                         \
	X(MHD_start_daemon)                  \
	X(MHD_stop_daemon)                   \
	X(MHD_run)                           \
	X(MHD_get_timeout)                   \
	X(MHD_get_daemon_info)               \
	X(MHD_resume_connection)             \
	X(MHD_suspend_connection)            \
	X(MHD_create_response_from_buffer)   \
	X(MHD_create_response_from_callback) \
	X(MHD_add_response_header)           \
	X(MHD_queue_response)                \
	X(MHD_destroy_response)              \
	X(MHD_get_connection_values)         \
	X(MHD_lookup_connection_value)

#define MHD_DECLARE(f) static __typeof__(f) *sym_##f;
MHD_FUNCS(MHD_DECLARE)
#undef MHD_DECLARE

static bool mhd_loaded;

int llm_http_load(const char *path, struct orch_error *err)
{
	void *h;
	const char *missing = NULL;

	if (mhd_loaded)
		return 0;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		return orch_err(err, -ENOENT, "cannot load libmicrohttpd: %s", e ? e : path);
	}
#define MHD_RESOLVE(f)                                              \
	if (!missing && !(sym_##f = (__typeof__(f) *)dlsym(h, #f))) \
		missing = #f;
	MHD_FUNCS(MHD_RESOLVE)
#undef MHD_RESOLVE
	if (missing) {
		dlclose(h);
		return orch_err(err, -ENOSYS, "%s has no %s", path, missing);
	}
	mhd_loaded = true;
	return 0;
}

/* ---- helpers ---- */

static void kick(struct llm_http *h)
{
	orch_timer_rearm(h->timer, 0);
}

static void run(struct llm_http *h)
{
	MHD_UNSIGNED_LONG_LONG to = 0;

	sym_MHD_run(h->d);
	if (sym_MHD_get_timeout(h->d, &to) == MHD_YES)
		orch_timer_rearm(h->timer, (uint64_t)to);
	else
		orch_timer_disarm(h->timer);
}

static void on_io(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	run(data);
}

static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	run(data);
}

static void no_log(void *cls, const char *fmt, va_list ap)
{
}

static void route_add(struct conn *c)
{
	struct llm_http *b = c->h;

	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	c->routed = true;
}

static void route_del(struct conn *c)
{
	struct llm_http *b = c->h;

	if (!c->routed)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	c->routed = false;
}

static struct conn *route_find(struct llm_http *b, const char *req)
{
	for (struct conn *c = b->conns; c; c = c->next)
		if (strcmp(c->req, req) == 0)
			return c;
	return NULL;
}

static void conn_free(struct conn *c)
{
	route_del(c);
	free(c->body);
	free(c->buf);
	free(c);
}

static void resume(struct conn *c)
{
	if (!c->suspended)
		return;
	c->suspended = false;
	sym_MHD_resume_connection(c->mc);
	kick(c->h);
}

/* Error answers in the provider's shape, so SDKs raise their usual exceptions. */
static char *error_body(enum dialect d, int status, const char *msg)
{
	const char *type = status == 413   ? "request_too_large"
			   : status == 404 ? "not_found_error"
			   : status >= 500 ? "api_error"
					   : "invalid_request_error";
	json_t *j = d == D_GEMINI ? json_pack("{s:{s:i, s:s, s:s}}", "error", "code", status,
					      "message", msg, "status",
					      status == 404   ? "NOT_FOUND"
					      : status == 503 ? "UNAVAILABLE"
					      : status >= 500 ? "INTERNAL"
							      : "INVALID_ARGUMENT")
		    : d == D_OPENAI
			    ? json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type",
					status >= 500 ? "server_error" : "invalid_request_error",
					"param", "code", type)
			    : json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
					type, "message", msg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

static enum MHD_Result queue_error(struct conn *c, int status, const char *msg)
{
	char *s = error_body(c->dialect, status, msg);
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (!s)
		return MHD_NO;
	r = sym_MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(s);
		return MHD_NO;
	}
	sym_MHD_add_response_header(r, "Content-Type", "application/json");
	c->state = C_LOCAL;
	ret = sym_MHD_queue_response(c->mc, (unsigned)status, r);
	sym_MHD_destroy_response(r);
	return ret;
}

/* ---- the response body ---- */

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct conn *c = cls;
	size_t n;

	if (c->buf_off < c->buf_len) {
		n = c->buf_len - c->buf_off < max ? c->buf_len - c->buf_off : max;
		memcpy(buf, c->buf + c->buf_off, n);
		c->buf_off += n;
		if (c->buf_off == c->buf_len)
			c->buf_off = c->buf_len = 0;
		return (ssize_t)n;
	}
	if (c->done)
		return c->failed ? MHD_CONTENT_READER_END_WITH_ERROR
				 : MHD_CONTENT_READER_END_OF_STREAM;
	sym_MHD_suspend_connection(c->mc);
	c->suspended = true;
	return 0;
}

static bool pass_response_header(const char *k)
{
	static const char *const ok[] = {"content-type", "request-id", "x-request-id",
					 "retry-after"};

	for (size_t i = 0; i < ELEMENTSOF(ok); i++)
		if (strcasecmp(k, ok[i]) == 0)
			return true;
	return false;
}

static void on_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
		     json_t *err_data, void *data)
{
	struct conn *c = data;
	struct orch_llm_response resp;
	struct orch_error perr = {0};
	struct MHD_Response *r;
	char msg[ORCH_ERROR_MSG_MAX + 64];
	const char *k;
	json_t *v;

	c->awaiting = false;
	if (c->orphan) {
		conn_free(c);
		return;
	}
	if (err || orch_llm_response_parse(result, &resp, &perr) < 0) {
		int status = 502;
		/* The supervisor's own refusals (llm-endpoint.c): no channel to the host, or
		 * it is full. Everything else is the host's answer. */
		if (err && err->code == ORCH_RPC_CLOSED) {
			status = 503;
			snprintf(msg, sizeof(msg),
				 "orch: the LLM channel to the host is down; retry (%s)", err->msg);
		} else if (err && err->code == ORCH_RPC_BUSY) {
			status = 503;
			snprintf(msg, sizeof(msg),
				 "orch: the LLM channel to the host is busy; retry");
		} else {
			snprintf(msg, sizeof(msg), "orch could not get an answer from the host: %s",
				 err ? err->msg : perr.msg);
		}
		route_del(c);
		queue_error(c, status, msg);
		resume(c);
		return;
	}
	r = sym_MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, reader, c, NULL);
	if (!r) {
		route_del(c);
		queue_error(c, 502, "orch: out of memory");
		resume(c);
		return;
	}
	json_object_foreach(resp.headers, k, v) if (pass_response_header(k))
		sym_MHD_add_response_header(r, k, json_string_value(v));
	c->state = C_STREAMING;
	sym_MHD_queue_response(c->mc, (unsigned)resp.status, r);
	sym_MHD_destroy_response(r);
	resume(c);
}

/* ---- the request ---- */

static bool forward_header(const char *k)
{
	static const char *const drop[] = {
		"host",		 "content-length",    "connection",
		"keep-alive",	 "transfer-encoding", "te",
		"upgrade",	 "trailer",	      "expect",
		"authorization", "x-api-key",	      "proxy-authorization",
		"cookie",
	};

	for (size_t i = 0; i < ELEMENTSOF(drop); i++)
		if (strcasecmp(k, drop[i]) == 0)
			return false;
	return true;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	json_t *h = cls;
	size_t vl = value ? strlen(value) : 0;

	if (!key || !forward_header(key) || json_object_size(h) >= ORCH_MAX_LLM_HEADERS ||
	    vl > ORCH_MAX_LLM_HEADER_LEN || strlen(key) > 256 ||
	    strpbrk(value ? value : "", "\r\n"))
		return MHD_YES; /* dropped; the host only uses a few headers anyway */
	json_object_set_new(h, key, json_string(value ? value : ""));
	return MHD_YES;
}

static enum MHD_Result forward(struct conn *c, const char *url, const char *method)
{
	struct llm_http *h = c->h;
	_cleanup_json_ json_t *headers = json_object();
	struct orch_llm_request r;
	json_t *params;
	int ret;

	if (!headers)
		return MHD_NO;
	sym_MHD_get_connection_values(c->mc, MHD_HEADER_KIND, collect_header, headers);
	/* The supervisor puts the slot and the task in itself, whatever these say. */
	snprintf(c->req, sizeof(c->req), "r-%" PRIu64, ++h->counter);
	r = (struct orch_llm_request){
		.req = c->req,
		.slot = h->slot,
		.method = method,
		.path = url,
		.headers = headers,
		.body_len = c->body_len,
		.body = (unsigned char *)c->body,
	};
	params = orch_llm_request_build(&r);
	if (!params)
		return queue_error(c, 500, "orch: cannot encode the request");
	ret = orch_rpc_call(h->rpc, "llm.request", params, SUPERVISOR_TIMEOUT_MS, on_reply, c);
	if (ret == -EMSGSIZE)
		return queue_error(c, 413, "request too large for orch's channel to the host");
	if (ret < 0)
		return queue_error(c, 503, "orch: the LLM channel to the host is busy; retry");
	free(c->body);
	c->body = NULL;
	c->state = C_SENT;
	c->awaiting = true;
	route_add(c);
	sym_MHD_suspend_connection(c->mc);
	c->suspended = true;
	return MHD_YES;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *mc, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **con_cls)
{
	struct llm_http *h = cls;
	struct conn *c = *con_cls;

	if (!c) {
		const char *cl =
			sym_MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		c->h = h;
		c->mc = mc;
		c->dialect = !url ? D_ANTHROPIC
			     : strncmp(url, "/v1/chat/", 9) == 0 ||
					     strncmp(url, "/v1/responses", 13) == 0
				     ? D_OPENAI
			     : strncmp(url, "/v1beta/", 8) == 0 ? D_GEMINI
								: D_ANTHROPIC;
		*con_cls = c;
		if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
			c->reject = 405;
		else if (!url || url[0] != '/' || strlen(url) > ORCH_MAX_LLM_PATH_LEN)
			c->reject = 404;
		else if (cl && strtoull(cl, NULL, 10) > h->max_body)
			c->reject = 413;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (c->too_big || c->reject)
			return MHD_YES;
		if (c->body_len + n > h->max_body) {
			c->too_big = true;
			free(c->body);
			c->body = NULL;
			c->body_len = 0;
			return MHD_YES;
		}
		char *nb = realloc(c->body, c->body_len + n + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + c->body_len, upload, n);
		c->body = nb;
		c->body_len += n;
		return MHD_YES;
	}
	if (c->state != C_NEW)
		return MHD_YES;
	if (c->too_big)
		c->reject = 413;
	switch (c->reject) {
	case 0:
		break;
	case 413:
		return queue_error(c, 413, "request body too large for orch's LLM endpoint");
	case 405:
		return queue_error(c, 405, "method not allowed");
	default:
		return queue_error(c, 404, "not found");
	}
	return forward(c, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;

	*con_cls = NULL;
	if (!c)
		return;
	if ((c->state == C_SENT || c->state == C_STREAMING) && !c->done) {
		struct orch_llm_cancel cn = {.req = c->req};
		orch_rpc_notify(c->h->rpc, "llm.cancel", orch_llm_cancel_build(&cn));
	}
	route_del(c);
	if (c->awaiting) {
		c->orphan = true; /* freed when the reply arrives (or the channel fails it) */
		return;
	}
	conn_free(c);
}

/* ---- llm.chunk / llm.done from the supervisor ---- */

int llm_http_on_chunk(struct llm_http *h, json_t *params, struct orch_error *err)
{
	struct orch_llm_chunk ch;
	struct conn *c;
	int r;

	r = orch_llm_chunk_parse(params, &ch, err);
	if (r < 0)
		return r;
	c = route_find(h, ch.req);
	if (!c || c->state != C_STREAMING || c->done) {
		orch_llm_chunk_done(&ch);
		return 0; /* the agent left already */
	}
	if (ch.seq != c->next_seq || c->buf_len + ch.len > LLM_ENDPOINT_MAX_BUFFERED) {
		/* Out of order or the agent does not read: end this response, tell the host. */
		struct orch_llm_cancel cn = {.req = c->req};
		orch_rpc_notify(h->rpc, "llm.cancel", orch_llm_cancel_build(&cn));
		c->done = c->failed = true;
		route_del(c);
		resume(c);
		orch_llm_chunk_done(&ch);
		return 0;
	}
	c->next_seq++;
	if (ch.len) {
		char *nb = c->buf_off ? NULL : realloc(c->buf, c->buf_len + ch.len);
		if (c->buf_off) {
			/* Compact first: the unread part moves to the front. */
			memmove(c->buf, c->buf + c->buf_off, c->buf_len - c->buf_off);
			c->buf_len -= c->buf_off;
			c->buf_off = 0;
			nb = realloc(c->buf, c->buf_len + ch.len);
		}
		if (!nb) {
			orch_llm_chunk_done(&ch);
			return orch_err(err, -ENOMEM, "out of memory");
		}
		memcpy(nb + c->buf_len, ch.data, ch.len);
		c->buf = nb;
		c->buf_len += ch.len;
	}
	orch_llm_chunk_done(&ch);
	resume(c);
	return 0;
}

int llm_http_on_done(struct llm_http *h, json_t *params, struct orch_error *err)
{
	struct orch_llm_done d;
	struct conn *c;
	int r;

	r = orch_llm_done_parse(params, &d, err);
	if (r < 0)
		return r;
	c = route_find(h, d.req);
	if (!c)
		return 0;
	c->done = true;
	c->failed = d.error_code != 0;
	route_del(c);
	resume(c);
	return 0;
}

/* ---- the server ---- */

static int start_daemon(struct llm_http *h, struct orch_error *err)
{
	const union MHD_DaemonInfo *info;
	int r;

	h->d = sym_MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_access, h,
		MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		h, MHD_OPTION_CONNECTION_LIMIT, (unsigned)LLM_ENDPOINT_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)128 * 1024, MHD_OPTION_EXTERNAL_LOGGER, no_log, NULL, MHD_OPTION_END);
	if (!h->d)
		return orch_err(err, -EIO, "libmicrohttpd refused the listening socket");
	info = sym_MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? orch_io_add(h->loop, info->epoll_fd, EPOLLIN, on_io, h, &h->io) : -EIO;
	if (r < 0) {
		/* Stopping the daemon would close the listening socket: serve the waiting
		 * connections with errors instead. */
		sym_MHD_stop_daemon(h->d);
		h->d = NULL;
		return orch_errno(err, r, "cannot watch the HTTP server");
	}
	run(h); /* accepts what waits in the backlog */
	return 0;
}

void llm_refuse_waiting(int listen_fd)
{
	static const char body[] = "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
				   "\"message\":\"orch: the LLM endpoint is unavailable; see the "
				   "supervisor's log\"}}";
	char head[192];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
			  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			  sizeof(body) - 1);

	for (int i = 0; i < LLM_ENDPOINT_MAX_CONNS; i++) {
		int c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		struct iovec iov[2] = {{head, (size_t)hl}, {(void *)body, sizeof(body) - 1}};
		char junk[4096];
		ssize_t n = writev(c, iov, 2);
		shutdown(c, SHUT_WR);
		for (int k = 0; k < 16 && n > 0; k++)
			n = recv(c, junk, sizeof(junk), MSG_DONTWAIT);
		close(c);
	}
}

static void on_listen(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	llm_refuse_waiting(fd);
}

int llm_http_new(struct orch_loop *loop, struct orch_rpc *rpc, int listen_fd, int64_t slot,
		 size_t max_body, struct llm_http **ret, struct orch_error *err)
{
	_cleanup_free_ struct llm_http *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return orch_err(err, -ENOMEM, "out of memory");
	h->loop = loop;
	h->rpc = rpc;
	h->listen_fd = listen_fd;
	h->slot = slot;
	h->max_body = max_body ? max_body : LLM_ENDPOINT_MAX_BODY;
	if (!mhd_loaded) {
		/* Without the library: every connection gets the fixed 503. */
		r = orch_io_add(loop, listen_fd, EPOLLIN, on_listen, h, &h->listen_io);
		if (r < 0)
			return orch_errno(err, r, "cannot watch the listening socket");
		llm_refuse_waiting(listen_fd);
		*ret = TAKE_PTR(h);
		return 0;
	}
	if ((r = orch_timer_add(loop, 0, 0, on_timer, h, &h->timer)) < 0)
		return orch_errno(err, r, "cannot add a timer");
	orch_timer_disarm(h->timer);
	if ((r = start_daemon(h, err)) < 0) {
		orch_timer_free(h->timer);
		return r;
	}
	*ret = TAKE_PTR(h);
	return 0;
}
