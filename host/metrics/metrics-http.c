/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "loop.h"
#include "metrics-http.h"

#define MX_MAX_CONNS 16
#define MX_CONN_MEMORY (16 * 1024)
#define MX_IDLE_S 10
#define MX_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct mx_http {
	struct orch_loop *loop;
	struct MHD_Daemon *d;
	struct orch_io *io;
	struct orch_timer *timer;
	int listen_fd;
	mx_render_fn render;
	mx_allow_fn allow;
	void *data;
};

static void run(struct mx_http *h)
{
	MHD_UNSIGNED_LONG_LONG to = 0;

	MHD_run(h->d);
	if (MHD_get_timeout(h->d, &to) == MHD_YES)
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

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
			      size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				status == MHD_HTTP_OK ? MX_CONTENT_TYPE : "text/plain");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

#define ANSWER_STATIC(c, status, text) \
	answer(c, status, text, sizeof(text) - 1, MHD_RESPMEM_PERSISTENT)

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *upload,
				 size_t *upload_size, void **con_cls)
{
	struct mx_http *h = cls;
	const union MHD_ConnectionInfo *ci;
	size_t len = 0;
	char *text;

	if (!*con_cls) { /* the head only: the body (if any) follows in later calls */
		*con_cls = h;
		return MHD_YES;
	}
	if (*upload_size) { /* a scrape has no body: ignore it */
		*upload_size = 0;
		return MHD_YES;
	}
	if (h->allow) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !h->allow(h->data, ci->connect_fd))
			return ANSWER_STATIC(c, MHD_HTTP_FORBIDDEN, "forbidden\n");
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return ANSWER_STATIC(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
	if (strcmp(url, "/metrics") != 0 && strcmp(url, "/") != 0)
		return ANSWER_STATIC(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
	text = h->render(h->data, &len);
	if (!text)
		return ANSWER_STATIC(c, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot render metrics\n");
	return answer(c, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE);
}

int mx_http_new(struct orch_loop *loop, int listen_fd, mx_render_fn render, mx_allow_fn allow,
		void *data, struct mx_http **ret, struct orch_error *err)
{
	const union MHD_DaemonInfo *info;
	struct mx_http *h;
	int r;

	h = calloc(1, sizeof(*h));
	if (!h) {
		close(listen_fd);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	h->loop = loop;
	h->listen_fd = listen_fd;
	h->render = render;
	h->allow = allow;
	h->data = data;
	r = orch_timer_add(loop, 0, 0, on_timer, h, &h->timer);
	if (r < 0) {
		mx_http_free(h);
		return orch_errno(err, r, "metrics: timer");
	}
	orch_timer_disarm(h->timer);
	h->d = MHD_start_daemon(
		MHD_USE_EPOLL, 0, NULL, NULL, on_access, h, MHD_OPTION_LISTEN_SOCKET, listen_fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)MX_MAX_CONNS, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned)MX_IDLE_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MX_CONN_MEMORY,
		MHD_OPTION_EXTERNAL_LOGGER, no_log, NULL, MHD_OPTION_END);
	if (!h->d) {
		mx_http_free(h);
		return orch_err(err, -EIO, "metrics: libmicrohttpd refused the listening socket");
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	r = info ? orch_io_add(loop, info->epoll_fd, EPOLLIN, on_io, h, &h->io) : -EIO;
	if (r < 0) {
		mx_http_free(h);
		return orch_errno(err, r, "metrics: cannot watch the HTTP server");
	}
	*ret = h;
	return 0;
}

void mx_http_free(struct mx_http *h)
{
	if (!h)
		return;
	orch_io_free(h->io);
	orch_timer_free(h->timer);
	if (h->d)
		MHD_stop_daemon(h->d); /* closes listen_fd: libmicrohttpd owns it once started */
	else if (h->listen_fd >= 0)
		close(h->listen_fd);
	free(h);
}
