/* SPDX-License-Identifier: Apache-2.0 */
/* The egress helper process of one slot (egress-helper.h): reads request heads, hands
 * parsed requests and their connections to the supervisor. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "cleanup.h"
#include "egress-helper.h"
#include "egress-http.h"
#include "log.h"
#include "loop.h"
#include "privsep.h"

#define FD_LISTEN 3
#define FD_SUPERVISOR 4
#define HELPER_NOFILE (EGRESS_HELPER_MAX_PENDING + 32)
#define HELPER_MEMORY (512ull * 1024 * 1024)

struct pending {
	struct helper *h;
	int fd;
	struct orch_io *io;
	struct orch_timer *timer;
	struct pending *next, *prev;
};

struct helper {
	struct orch_loop *loop;
	struct orch_timer *refill; /* re-enables accepting once a token is back */
	double tokens;
	uint64_t tokens_ms;
	long long slot;
	struct orch_io *listen_io, *sup_io;
	struct pending *pending;
	unsigned n_pending;
	char peek[ORCH_HTTP_MAX_HEAD];
	struct orch_http_head head;
};

static void pending_free(struct pending *p)
{
	struct helper *h = p->h;

	if (p->prev)
		p->prev->next = p->next;
	else
		h->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	h->n_pending--;
	orch_io_free(p->io);
	orch_timer_free(p->timer);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
	if (h->n_pending < EGRESS_HELPER_MAX_PENDING)
		(void)orch_io_set_events(h->listen_io, EPOLLIN);
}

/* A fixed answer to the client (best effort: the socket is fresh, its buffer empty). */
static void answer(int fd, int status, const char *text, const char *reason)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n%s\n",
			 status, text, strlen(reason) + 1, reason);
	if (n > 0)
		(void)send(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
			   MSG_NOSIGNAL | MSG_DONTWAIT);
}

static json_t *headers_json(const struct orch_http_head *hd)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < hd->n_headers; i++) {
		if (orch_http_header_hop(hd->headers[i].name))
			continue;
		if (json_array_append_new(
			    a, json_pack("[ss]", hd->headers[i].name, hd->headers[i].value)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The request, parsed: to the supervisor with its connection. */
static int hand_over(struct helper *h, struct pending *p, const struct orch_http_head *hd)
{
	_cleanup_json_ json_t *headers = NULL;
	struct orch_egress_open o = {
		.slot = h->slot, .kind = hd->kind, .host = hd->host, .port = hd->port};
	_cleanup_free_ char *msg = NULL;
	size_t len = 0;

	if (hd->kind == ORCH_EGRESS_HTTP) {
		if (!(headers = headers_json(hd)))
			return -ENOMEM;
		o.method = hd->method;
		o.target = hd->target;
		o.headers = headers;
	}
	if (!(msg = orch_egress_open_build(&o, &len)))
		return -ENOMEM;
	if (len > EGRESS_HELPER_MAX_MSG)
		return -E2BIG;
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = {msg, len};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &p->fd, sizeof(int));
	/* Blocking on purpose: the supervisor reads its helpers at once; if it does not,
	 * nothing else here can progress either. */
	for (;;) {
		ssize_t n = sendmsg(FD_SUPERVISOR, &mh, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
}

static void on_conn(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct pending *p = data;
	struct helper *h = p->h;
	struct orch_error err = {0};
	ssize_t n;
	int end, r;

	n = recv(fd, h->peek, sizeof(h->peek), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* gone, or closed before a complete head */
		pending_free(p);
		return;
	}
	end = orch_http_head_end(h->peek, (size_t)n);
	if (end == 0) {
		if (events & (EPOLLRDHUP | EPOLLHUP)) { /* half-closed: no more will come */
			answer(fd, 400, "Bad Request", "incomplete request head");
			pending_free(p);
		}
		return; /* edge-triggered: woken again when more arrives */
	}
	if (end < 0) {
		answer(fd, end == -E2BIG ? 431 : 400,
		       end == -E2BIG ? "Request Header Fields Too Large" : "Bad Request",
		       end == -E2BIG ? "request head too large (16 KiB at most)"
				     : "malformed request head");
		pending_free(p);
		return;
	}
	/* Exactly the head: what follows (a body, a TLS ClientHello) stays in the socket for
	 * the supervisor to relay untouched. */
	n = recv(fd, h->peek, (size_t)end, MSG_DONTWAIT);
	if (n != end) {
		pending_free(p);
		return;
	}
	if (orch_http_head_parse(h->peek, (size_t)end, &h->head, &err) < 0) {
		answer(fd, 400, "Bad Request", err.msg);
		pending_free(p);
		return;
	}
	r = hand_over(h, p, &h->head);
	if (r == -E2BIG)
		answer(fd, 431, "Request Header Fields Too Large", "request headers too large");
	else if (r < 0) {
		orch_logf(ORCH_LOG_ERROR, "egress", "cannot reach the supervisor: %s",
			  strerror(-r));
		_exit(1);
	}
	pending_free(p);
}

static void on_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct pending *p = data;

	answer(p->fd, 408, "Request Timeout", "no complete request head in time");
	pending_free(p);
}

/* The rate limit's bucket: refilled by elapsed time, at most EGRESS_HELPER_RATE. */
static bool take_token(struct helper *h)
{
	uint64_t now = orch_now_ms();

	h->tokens += (double)(now - h->tokens_ms) * EGRESS_HELPER_RATE / 1000.0;
	if (h->tokens > EGRESS_HELPER_RATE)
		h->tokens = EGRESS_HELPER_RATE;
	h->tokens_ms = now;
	if (h->tokens < 1)
		return false;
	h->tokens -= 1;
	return true;
}

static void on_refill(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct helper *h = data;

	if (h->n_pending < EGRESS_HELPER_MAX_PENDING)
		(void)orch_io_set_events(h->listen_io, EPOLLIN);
}

static void on_listen(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct helper *h = data;

	for (int i = 0; i < 16; i++) {
		if (!take_token(h)) {
			/* the rest wait in the backlog until a token is back */
			(void)orch_io_set_events(h->listen_io, 0);
			orch_timer_rearm(h->refill, 1000 / EGRESS_HELPER_RATE + 1);
			return;
		}
		if (h->n_pending >= EGRESS_HELPER_MAX_PENDING) {
			/* the backlog holds the rest until a head is done */
			(void)orch_io_set_events(h->listen_io, 0);
			return;
		}
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0) {
			h->tokens += 1; /* not used */
			return;
		}
		struct pending *p = calloc(1, sizeof(*p));
		if (!p) {
			close(c);
			return;
		}
		p->h = h;
		p->fd = c;
		if (orch_io_add(loop, c, EPOLLIN | EPOLLRDHUP | EPOLLET, on_conn, p, &p->io) < 0 ||
		    orch_timer_add(loop, EGRESS_HEAD_TIMEOUT_MS, 0, on_timeout, p, &p->timer) < 0) {
			orch_io_free(p->io);
			close(c);
			free(p);
			return;
		}
		p->next = h->pending;
		if (h->pending)
			h->pending->prev = p;
		h->pending = p;
		h->n_pending++;
		/* Data may have arrived before the watch: the edge would be missed. */
		on_conn(loop, p->io, c, EPOLLIN, p);
	}
}

static void on_supervisor(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			  void *data)
{
	/* The supervisor never writes to us: any event is its close. */
	_exit(0);
}

static int num(const char *s, long long lo, long long hi, long long *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

_Noreturn void egress_helper_main(int argc, char **argv)
{
	struct orch_error err = {0};
	long long uid = -1, gid = -1;
	bool seccomp = true;
	struct helper *h = calloc(1, sizeof(*h));
	int r;

	const char *lvl = getenv("ORCH_LOG_LEVEL");
	if (lvl)
		(void)orch_log_level_parse(lvl, &orch_log_level);
	if (!h)
		_exit(1);
	h->slot = -1;
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(k, "--no-seccomp")) {
			seccomp = false;
			continue;
		}
		r = !v			   ? -EINVAL
		    : !strcmp(k, "--slot") ? num(v, 0, 63, &h->slot)
		    : !strcmp(k, "--uid")  ? num(v, 1, 4294967294LL, &uid)
		    : !strcmp(k, "--gid")  ? num(v, 1, 4294967294LL, &gid)
					   : -EINVAL;
		if (r < 0 || !v) {
			orch_log(ORCH_LOG_ERROR, "egress", "helper: bad arguments", NULL);
			_exit(2);
		}
		i++;
	}
	if (h->slot < 0 || uid < 0 || gid < 0) {
		orch_log(ORCH_LOG_ERROR, "egress", "helper: bad arguments", NULL);
		_exit(2);
	}
	char name[16];
	snprintf(name, sizeof(name), "orch-egress-%d", (int)h->slot);
	(void)prctl(PR_SET_NAME, name, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(FD_LISTEN, F_SETFL, O_NONBLOCK) < 0) {
		orch_log(ORCH_LOG_ERROR, "egress", "helper: descriptors missing", NULL);
		_exit(2);
	}
	json_object_seed(0);
	struct sv_privsep p = {.uid = (uid_t)uid,
			       .gid = (gid_t)gid,
			       .nofile = HELPER_NOFILE,
			       .memory = HELPER_MEMORY,
			       .seccomp = seccomp};
	if ((r = sv_privsep_enter(&p, &err)) < 0) {
		orch_log(ORCH_LOG_ERROR, "egress", "helper: cannot drop privileges", "error",
			 err.msg, NULL);
		_exit(1);
	}
	h->tokens = EGRESS_HELPER_RATE;
	if (orch_loop_new(&h->loop) < 0 ||
	    orch_timer_add(h->loop, 0, 0, on_refill, h, &h->refill) < 0 ||
	    orch_io_add(h->loop, FD_LISTEN, EPOLLIN, on_listen, h, &h->listen_io) < 0 ||
	    orch_io_add(h->loop, FD_SUPERVISOR, EPOLLIN | EPOLLRDHUP, on_supervisor, h,
			&h->sup_io) < 0) {
		orch_log(ORCH_LOG_ERROR, "egress", "helper: cannot set up", NULL);
		_exit(1);
	}
	orch_timer_disarm(h->refill);
	h->tokens_ms = orch_now_ms();
	r = orch_loop_run(h->loop);
	_exit(r < 0 ? 1 : 0);
}
