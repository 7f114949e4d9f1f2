/* SPDX-License-Identifier: Apache-2.0 */
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
#include "log.h"
#include "schema.h"
#include "llm-endpoint.h"

#define HOST_TIMEOUT_MS (15 * 60 * 1000) /* until the host has the upstream's head */

enum conn_state {
	C_NEW = 0,   /* headers and body arriving */
	C_SENT,	     /* llm.request sent, waiting for its reply */
	C_STREAMING, /* response queued, body arriving as llm.chunk */
	C_LOCAL,     /* answered locally (error) */
};

struct conn {
	struct llm_endpoint *ep;
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
	struct conn *next, *prev; /* bridge routing list */
};

struct llm_bridge {
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	struct conn *conns;
	uint64_t counter;
	unsigned n_endpoints;
};

struct llm_endpoint {
	struct llm_bridge *b;
	struct MHD_Daemon *d; /* NULL until the first connection */
	int listen_fd;	      /* until then: watched by the loop itself */
	struct orch_io *listen_io;
	struct orch_io *io;
	struct orch_timer *timer;
	int64_t slot;
	size_t max_body;
	char *task;
	bool stopping;
	bool warned; /* "unavailable" logged */
};

/* ---- libmicrohttpd, loaded on first use ----
 * Debian's libmicrohttpd pulls in GnuTLS and its dependencies (p11-kit, nettle, gmp...),
 * about 2.3 MiB of resident pages in every process that maps them, although the endpoint
 * never speaks TLS. The supervisor maps the library only when an agent first connects to
 * its endpoint: until then each endpoint's listening socket waits on the supervisor's own
 * loop (connections queue in its backlog), so an idle supervisor, or one whose agents
 * never call an LLM, does not pay for it. Once loaded it stays loaded. */

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

static const char *mhd_path = ORCH_MHD_LIBRARY;
static int mhd_state; /* 0: not tried, 1: loaded, -errno: failed (not retried) */
static char mhd_error[256];

const char *llm_endpoint_library(void)
{
	return mhd_path;
}

int llm_endpoint_set_library(const char *path)
{
	if (mhd_state)
		return -EBUSY;
	mhd_path = path;
	return 0;
}

bool llm_endpoint_library_loaded(void)
{
	return mhd_state == 1;
}

static int mhd_load(struct orch_error *err)
{
	void *h;
	const char *missing = NULL;

	if (mhd_state == 1)
		return 0;
	if (mhd_state < 0)
		return orch_err(err, mhd_state, "%s", mhd_error);
	h = dlopen(mhd_path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(mhd_error, sizeof(mhd_error), "cannot load libmicrohttpd: %s",
			 e ? e : mhd_path);
		mhd_state = -ENOENT;
		return orch_err(err, mhd_state, "%s", mhd_error);
	}
#define MHD_RESOLVE(f)                                              \
	if (!missing && !(sym_##f = (__typeof__(f) *)dlsym(h, #f))) \
		missing = #f;
	MHD_FUNCS(MHD_RESOLVE)
#undef MHD_RESOLVE
	if (missing) {
		snprintf(mhd_error, sizeof(mhd_error), "%s has no %s", mhd_path, missing);
		dlclose(h);
		mhd_state = -ENOSYS;
		return orch_err(err, mhd_state, "%s", mhd_error);
	}
	mhd_state = 1;
	orch_log(ORCH_LOG_INFO, "llm", "libmicrohttpd loaded", "path", mhd_path, NULL);
	return 0;
}

/* ---- helpers ---- */

static void kick(struct llm_endpoint *ep)
{
	orch_timer_rearm(ep->timer, 0);
}

static void run(struct llm_endpoint *ep)
{
	MHD_UNSIGNED_LONG_LONG to = 0;

	sym_MHD_run(ep->d);
	if (sym_MHD_get_timeout(ep->d, &to) == MHD_YES)
		orch_timer_rearm(ep->timer, (uint64_t)to);
	else
		orch_timer_disarm(ep->timer);
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
	struct llm_bridge *b = c->ep->b;

	c->next = b->conns;
	if (b->conns)
		b->conns->prev = c;
	b->conns = c;
	c->routed = true;
}

static void route_del(struct conn *c)
{
	struct llm_bridge *b = c->ep->b;

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

static struct conn *route_find(struct llm_bridge *b, const char *req)
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
	kick(c->ep);
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
		snprintf(msg, sizeof(msg), "orch could not get an answer from the host: %s",
			 err ? err->msg : perr.msg);
		route_del(c);
		queue_error(c, 502, msg);
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
	struct llm_endpoint *ep = c->ep;
	struct llm_bridge *b = ep->b;
	_cleanup_json_ json_t *headers = json_object();
	struct orch_llm_request r;
	json_t *params;
	int ret;

	if (!b->rpc)
		return queue_error(c, 503, "orch: the LLM channel to the host is down; retry");
	if (!headers)
		return MHD_NO;
	sym_MHD_get_connection_values(c->mc, MHD_HEADER_KIND, collect_header, headers);
	snprintf(c->req, sizeof(c->req), "s%" PRId64 "-%" PRIu64, ep->slot, ++b->counter);
	r = (struct orch_llm_request){
		.req = c->req,
		.slot = ep->slot,
		.task = ep->task,
		.method = method,
		.path = url,
		.headers = headers,
		.body_len = c->body_len,
		.body = (unsigned char *)c->body,
	};
	params = orch_llm_request_build(&r);
	if (!params)
		return queue_error(c, 500, "orch: cannot encode the request");
	ret = orch_rpc_call(b->rpc, "llm.request", params, HOST_TIMEOUT_MS, on_reply, c);
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
	struct llm_endpoint *ep = cls;
	struct conn *c = *con_cls;

	if (!c) {
		const char *cl =
			sym_MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Content-Length");
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		c->ep = ep;
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
		else if (cl && strtoull(cl, NULL, 10) > ep->max_body)
			c->reject = 413;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;
		*upload_size = 0;
		if (c->too_big || c->reject)
			return MHD_YES;
		if (c->body_len + n > ep->max_body) {
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
	struct llm_bridge *b;

	*con_cls = NULL;
	if (!c)
		return;
	b = c->ep->b;
	if ((c->state == C_SENT || c->state == C_STREAMING) && !c->done && b->rpc) {
		struct orch_llm_cancel cn = {.req = c->req};
		orch_rpc_notify(b->rpc, "llm.cancel", orch_llm_cancel_build(&cn));
	}
	route_del(c);
	if (c->awaiting) {
		c->orphan = true; /* freed when the reply arrives (or the channel fails it) */
		return;
	}
	conn_free(c);
}

/* ---- the bridge ---- */

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
	free(b);
}

static void end_all(struct llm_bridge *b, struct llm_endpoint *only)
{
	struct conn *c = b->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (only && c->ep != only)
			continue;
		if (c->state == C_STREAMING) {
			c->done = true;
			c->failed = true;
			route_del(c);
			resume(c);
		}
	}
}

void llm_bridge_set_rpc(struct llm_bridge *b, struct orch_rpc *rpc)
{
	if (b->rpc && b->rpc != rpc)
		end_all(b, NULL); /* their host side is gone */
	b->rpc = rpc;
}

int llm_bridge_on_chunk(struct llm_bridge *b, json_t *params, struct orch_error *err)
{
	struct orch_llm_chunk ch;
	struct conn *c;
	int r;

	r = orch_llm_chunk_parse(params, &ch, err);
	if (r < 0)
		return r;
	c = route_find(b, ch.req);
	if (!c || c->state != C_STREAMING || c->done) {
		orch_llm_chunk_done(&ch);
		return 0; /* the agent left already */
	}
	if (ch.seq != c->next_seq || c->buf_len + ch.len > LLM_ENDPOINT_MAX_BUFFERED) {
		/* Out of order or the agent does not read: end this response, tell the host. */
		struct orch_llm_cancel cn = {.req = c->req};
		if (b->rpc)
			orch_rpc_notify(b->rpc, "llm.cancel", orch_llm_cancel_build(&cn));
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

int llm_bridge_on_done(struct llm_bridge *b, json_t *params, struct orch_error *err)
{
	struct orch_llm_done d;
	struct conn *c;
	int r;

	r = orch_llm_done_parse(params, &d, err);
	if (r < 0)
		return r;
	c = route_find(b, d.req);
	if (!c)
		return 0;
	c->done = true;
	c->failed = d.error_code != 0;
	route_del(c);
	resume(c);
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

/* ---- endpoints ---- */

static int start_daemon(struct llm_endpoint *ep, struct orch_error *err)
{
	const union MHD_DaemonInfo *info;
	int r;

	if ((r = mhd_load(err)) < 0)
		return r;
	ep->d = sym_MHD_start_daemon(
		MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_access, ep,
		MHD_OPTION_LISTEN_SOCKET, ep->listen_fd, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		ep, MHD_OPTION_CONNECTION_LIMIT, (unsigned)LLM_ENDPOINT_MAX_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)128 * 1024, MHD_OPTION_EXTERNAL_LOGGER, no_log, NULL, MHD_OPTION_END);
	if (!ep->d)
		return orch_err(err, -EIO,
				"libmicrohttpd refused the listening socket of slot %lld",
				(long long)ep->slot);
	info = sym_MHD_get_daemon_info(ep->d, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? orch_io_add(ep->b->loop, info->epoll_fd, EPOLLIN, on_io, ep, &ep->io) : -EIO;
	if (r < 0) {
		/* Stopping the daemon would close the listening socket: keep serving the
		 * waiting connections with errors instead. */
		sym_MHD_stop_daemon(ep->d);
		ep->d = NULL;
		return orch_errno(err, r, "cannot watch the HTTP server of slot %lld",
				  (long long)ep->slot);
	}
	orch_io_free(ep->listen_io); /* the daemon owns the socket now */
	ep->listen_io = NULL;
	ep->listen_fd = -1;
	run(ep); /* accepts what waits in the backlog */
	return 0;
}

/* Without a usable HTTP server: every waiting connection gets a fixed 503 and is closed,
 * so clients fail at once instead of hanging. The request is not parsed; what already
 * arrived of it is discarded, so that closing does not reset the connection before the
 * client read the answer. */
static void refuse_waiting(struct llm_endpoint *ep)
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
		int c = accept4(ep->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
	struct llm_endpoint *ep = data;
	struct orch_error err = {0};
	char slot[24];

	if (start_daemon(ep, &err) == 0)
		return;
	if (!ep->warned) {
		snprintf(slot, sizeof(slot), "%lld", (long long)ep->slot);
		orch_log(ORCH_LOG_WARN, "llm", "LLM endpoint unavailable", "slot", slot, "error",
			 err.msg, NULL);
		ep->warned = true;
	}
	refuse_waiting(ep);
}

int llm_endpoint_new(struct llm_bridge *b, int listen_fd, int64_t slot, size_t max_body,
		     struct llm_endpoint **ret, struct orch_error *err)
{
	_cleanup_close_ int fd = listen_fd;
	struct llm_endpoint *ep;
	int r;

	if (slot < 0 || slot >= ORCH_MAX_SLOTS)
		return orch_err(err, -EINVAL, "llm endpoint: slot %lld out of range",
				(long long)slot);
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return orch_err(err, -ENOMEM, "out of memory");
	ep->b = b;
	ep->slot = slot;
	ep->max_body = max_body ? max_body : LLM_ENDPOINT_MAX_BODY;
	ep->listen_fd = fd;
	r = orch_timer_add(b->loop, 0, 0, on_timer, ep, &ep->timer);
	if (r < 0) {
		free(ep);
		return orch_errno(err, r, "llm endpoint: cannot add a timer");
	}
	orch_timer_disarm(ep->timer);
	r = orch_io_add(b->loop, fd, EPOLLIN, on_listen, ep, &ep->listen_io);
	if (r < 0) {
		orch_timer_free(ep->timer);
		free(ep);
		return orch_errno(err, r, "llm endpoint: cannot watch the listening socket");
	}
	fd = -1; /* the endpoint's now */
	b->n_endpoints++;
	*ret = ep;
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

void llm_endpoint_free(struct llm_endpoint *ep)
{
	struct conn *c, *next;

	if (!ep)
		return;
	if (!ep->d) {
		/* Never started: no connection was ever accepted. */
		orch_io_free(ep->listen_io);
		close(ep->listen_fd);
		goto done;
	}
	/* Cancel this slot's calls, let MHD finish their responses with an error. */
	for (c = ep->b->conns; c; c = next) {
		next = c->next;
		if (c->ep != ep)
			continue;
		if (ep->b->rpc && !c->done) {
			struct orch_llm_cancel cn = {.req = c->req};
			orch_rpc_notify(ep->b->rpc, "llm.cancel", orch_llm_cancel_build(&cn));
		}
		c->done = c->failed = true;
		route_del(c);
		if (c->state == C_SENT && c->suspended) {
			/* No response yet: give one so MHD can close it. */
			queue_error(c, 503, "orch: the agent slot is going away");
		}
		if (c->suspended) {
			c->suspended = false;
			sym_MHD_resume_connection(c->mc);
		}
	}
	sym_MHD_run(ep->d);
	orch_io_free(ep->io);
	sym_MHD_stop_daemon(ep->d);
done:
	orch_timer_free(ep->timer);
	ep->b->n_endpoints--;
	free(ep->task);
	free(ep);
}
