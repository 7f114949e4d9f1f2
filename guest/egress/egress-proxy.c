/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's side of the in-jail egress proxy (egress-proxy.h): the slots'
 * listeners and helpers, the connections and their relay over the egress lane. The
 * lane itself (dialling, hello, the CA files) is egress-lane.c. Nothing here parses an
 * agent's bytes: what a helper says is re-validated, what a connection carries after its
 * head is copied (egress-conn.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "egress-helper.h"
#include "egress-internal.h"
#include "log.h"
#include "privsep.h"

/* ---- a connection from a helper ---- */

/* The socket really is a TCP connection accepted on our own port (the helper could hand
 * over nothing else it holds but its listener, its stderr and this channel). */
static bool conn_fd_ok(int fd, unsigned port)
{
	struct stat st;
	int v = 0;
	socklen_t sl = sizeof(v);
	struct sockaddr_in sin;
	socklen_t al = sizeof(sin);

	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &sl) < 0 || v != AF_INET)
		return false;
	sl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &sl) < 0 || v != SOCK_STREAM)
		return false;
	sl = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &sl) < 0 || v != 0)
		return false;
	if (getsockname(fd, (struct sockaddr *)&sin, &al) < 0 || sin.sin_family != AF_INET ||
	    ntohs(sin.sin_port) != port || ntohl(sin.sin_addr.s_addr) != INADDR_LOOPBACK)
		return false;
	return true;
}

/* One request from the slot's helper: re-validated, stamped, sent to orchd. */
static int ep_on_request(struct egress_ep *ep, const char *msg, size_t len, int fd)
{
	struct egress_bridge *b = ep->b;
	_cleanup_json_ json_t *root = NULL;
	_cleanup_close_ int cfd = fd;
	struct orch_error perr = {0};
	struct orch_egress_open o;
	_cleanup_free_ char *out = NULL;
	size_t out_len = 0;
	struct econn *c;

	if (orch_egress_open_parse(msg, len, &root, &o, &perr) < 0)
		return egress_ep_misbehaved(ep, "sent an invalid request", perr.msg);
	if (o.slot != ep->slot || o.task)
		return egress_ep_misbehaved(ep, "sent another slot's request", NULL);
	if (!conn_fd_ok(cfd, b->o.port))
		return egress_ep_misbehaved(ep, "handed over something else than its connection",
					    NULL);
	if (fcntl(cfd, F_SETFL, O_NONBLOCK) < 0)
		return 0;
	if (!(c = egress_conn_new(b, ep->slot, o.kind, cfd)))
		return 0;
	cfd = -1; /* the connection's now */
	ep->n_conns++;
	if (!b->lane || !b->ready) {
		egress_conn_refuse(c, 503, "no egress lane to orchd (yet)");
		egress_conn_free(c, NULL);
		return 0;
	}
	if (ep->n_conns > EGRESS_MAX_CONNS_SLOT || b->n_conns > ORCH_EGRESS_MAX_CONNS) {
		egress_conn_refuse(c, 429, "too many connections of this agent");
		egress_conn_free(c, NULL);
		return 0;
	}
	o.task = ep->task; /* ours, never the helper's */
	if (!(out = orch_egress_open_build(&o, &out_len)) || out_len > ORCH_EGRESS_MAX_PAYLOAD ||
	    egress_lane_send(b, ORCH_EGRESS_OPEN, c->id, out, out_len) < 0) {
		egress_conn_refuse(c, 431, "request too large for the egress lane");
		egress_conn_free(c, NULL);
		return 0;
	}
	if (egress_conn_watch(c) < 0)
		egress_conn_free(c, "out of memory");
	return 0;
}

static void ep_on_sock(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		       void *data)
{
	struct egress_ep *ep = data;
	struct egress_bridge *b = ep->b;

	for (int i = 0; i < 16 && !ep->bad; i++) {
		union {
			struct cmsghdr c;
			char buf[CMSG_SPACE(sizeof(int) * 4)];
		} u;
		struct iovec iov = {b->msg, sizeof(b->msg)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int cfd = -1, nfds = 0;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k; j++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
				if (nfds++ == 0)
					cfd = f;
				else
					close(f);
			}
		}
		if (n <= 0) {
			if (cfd >= 0)
				close(cfd);
			egress_ep_stop(ep, "closed its connection", true);
			return;
		}
		if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfds != 1) {
			if (cfd >= 0)
				close(cfd);
			(void)egress_ep_misbehaved(ep, "sent a malformed message", NULL);
			break;
		}
		(void)ep_on_request(ep, b->msg, (size_t)n, cfd);
	}
	if (ep->bad)
		egress_ep_stop(ep, ep->bad, true);
}

/* ---- the helper's life ---- */

int egress_ep_misbehaved(struct egress_ep *ep, const char *why, const char *detail)
{
	if (!ep->bad) {
		snprintf(ep->bad_buf, sizeof(ep->bad_buf), "%s%s%s", why, detail ? ": " : "",
			 detail ? detail : "");
		ep->bad = ep->bad_buf;
	}
	return -EPROTO;
}

static void on_exited(void *data)
{
	egress_ep_stop(data, "exited", true);
}

/* The helper goes; connections it handed over stay (they are the supervisor's now). */
void egress_ep_stop(struct egress_ep *ep, const char *why, bool restart)
{
	if (!ep->h.proc.pid)
		return;
	orch_io_free(ep->sock_io);
	ep->sock_io = NULL;
	if (ep->sock >= 0)
		close(ep->sock);
	ep->sock = -1;
	ep->bad = NULL;
	sv_listener_stop(&ep->h, why, restart);
}

static int ep_start(void *data, struct orch_error *err)
{
	struct egress_ep *ep = data;
	struct egress_bridge *b = ep->b;
	char slot[16], uid[16], gid[16];
	const char *argv[12];
	size_t n = 0;
	int sp[2], r;
	bool root = geteuid() == 0;
	uid_t u = sv_privsep_uid(b->o.uid_base, SV_PRIVSEP_EGRESS, ep->slot);

	snprintf(slot, sizeof(slot), "%u", ep->slot);
	snprintf(uid, sizeof(uid), "%u", root ? (unsigned)u : (unsigned)getuid());
	snprintf(gid, sizeof(gid), "%u", root ? (unsigned)u : (unsigned)getgid());
	argv[n++] = "orch-egress-helper";
	argv[n++] = EGRESS_HELPER_ARG;
	argv[n++] = "--slot";
	argv[n++] = slot;
	argv[n++] = "--uid";
	argv[n++] = uid;
	argv[n++] = "--gid";
	argv[n++] = gid;
	if (b->o.no_seccomp)
		argv[n++] = "--no-seccomp";
	argv[n] = NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return orch_errno(err, -errno, "socketpair");
	int fds[2] = {ep->h.listen_fd, sp[1]};
	struct sv_helper_spawn s = {.exe = b->helper,
				    .argv = (char *const *)argv,
				    .fds = fds,
				    .n_fds = 2,
				    .netns_fd = b->o.netns_fds ? b->o.netns_fds[ep->slot] : -1};
	r = sv_helper_spawn(&s, &ep->h.proc, err);
	close(sp[1]);
	if (r < 0) {
		close(sp[0]);
		return r;
	}
	ep->sock = sp[0];
	if (fcntl(ep->sock, F_SETFL, O_NONBLOCK) < 0 ||
	    orch_io_add(b->loop, ep->sock, EPOLLIN | EPOLLRDHUP, ep_on_sock, ep, &ep->sock_io) <
		    0 ||
	    sv_listener_started(&ep->h) < 0) {
		egress_ep_stop(ep, NULL, false);
		return orch_err(err, -ENOMEM, "cannot watch the egress helper");
	}
	return 0;
}

/* No helper can be started: each waiting connection gets a fixed 503 (nothing read). */
static void refuse_waiting(int fd)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
				  "Connection: close\r\nContent-Length: 40\r\n\r\norch egress: the "
				  "proxy is unavailable\r\n\n";
	for (int i = 0; i < 64; i++) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			return;
		(void)send(c, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(c);
	}
}

static const struct sv_listener_ops ep_ops = {
	.start = ep_start,
	.exited = on_exited,
	.refuse = refuse_waiting,
};

int egress_ep_new(struct egress_bridge *b, unsigned slot, int listen_fd, struct orch_error *err)
{
	_cleanup_close_ int fd = listen_fd;
	struct egress_ep *ep;
	int r;

	if (slot >= EGRESS_MAX_SLOTS || b->eps[slot])
		return orch_err(err, -EINVAL, "egress: slot %u taken or out of range", slot);
	if (!(ep = calloc(1, sizeof(*ep))))
		return orch_err(err, -ENOMEM, "out of memory");
	ep->b = b;
	ep->slot = slot;
	ep->sock = -1;
	ep->h = (struct sv_listener){.loop = b->loop,
				     .ops = &ep_ops,
				     .data = ep,
				     .comp = "egress",
				     .name = "egress helper",
				     .unavailable = "egress proxy unavailable",
				     .slot = slot};
	if ((r = sv_listener_init(&ep->h, fd, err)) < 0) {
		free(ep);
		return r;
	}
	fd = -1;
	b->eps[slot] = ep;
	return 0;
}

void egress_ep_free(struct egress_ep *ep)
{
	if (!ep)
		return;
	egress_ep_stop(ep, NULL, false);
	sv_listener_free(&ep->h);
	ep->b->eps[ep->slot] = NULL;
	free(ep->task);
	free(ep);
}

pid_t egress_bridge_helper_pid(const struct egress_bridge *b, unsigned slot)
{
	return slot < EGRESS_MAX_SLOTS && b->eps[slot] ? b->eps[slot]->h.proc.pid : 0;
}

void egress_bridge_set_task(struct egress_bridge *b, unsigned slot, const char *task)
{
	struct egress_ep *ep = slot < EGRESS_MAX_SLOTS ? b->eps[slot] : NULL;
	char *t = NULL;

	if (!ep || (task && !(t = strdup(task))))
		return;
	free(ep->task);
	ep->task = t;
}
