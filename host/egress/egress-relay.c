/* SPDX-License-Identifier: Apache-2.0 */
/* Connecting to the upstream and relaying an egress connection's bytes within the lane's
 * windows (egress-serve.h): what the guest sends waits in a ring of one window, credited
 * back as the upstream takes it; what the upstream sends is read only while the guest
 * has credit left and the lane is not congested. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "egress-http.h"
#include "egress-intercept.h"
#include "egress-tls.h"
#include "egress-serve-internal.h"
#include "log.h"

int64_t egress_task_bytes(struct egress_host *h, int64_t task)
{
	sqlite3_stmt *st = NULL;
	int64_t n = 0;

	egress_host_flush_log(h);
	if (sqlite3_prepare_v2(h->db,
			       "SELECT COALESCE(SUM(bytes_up + bytes_down), 0) FROM egress_log"
			       " WHERE task = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(st, 1, task);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

void egress_hconn_events(struct hconn *c)
{
	uint32_t ev = 0;

	if (!c->io)
		return;
	if (c->state == HCONN_CONNECTING)
		ev = EPOLLOUT;
	else if (c->state == HCONN_OPEN && c->icpt)
		ev = egress_icpt_events(c);
	else if (c->state == HCONN_OPEN) {
		if (!c->up_eof && c->send_credit > 0 && !c->s->congested)
			ev |= EPOLLIN | EPOLLRDHUP;
		if (c->pre_off < c->pre_len || c->up_len > 0)
			ev |= EPOLLOUT;
	}
	if (ev != orch_io_get_events(c->io))
		(void)orch_io_set_events(c->io, ev);
}

static bool limit_reached(struct hconn *c)
{
	const struct egress_config *cfg = c->s->h->cfg;

	if (cfg->limits.bytes <= 0 ||
	    c->task_bytes_base + c->bytes_up + c->bytes_down < cfg->limits.bytes)
		return false;
	reasonf(c->reason, sizeof(c->reason), "the task's egress byte limit (%lld) is reached",
		(long long)cfg->limits.bytes);
	egress_hconn_end(c, true);
	return true;
}

/* Writes the head (HTTP) and the guest's bytes to the upstream. < 0: it failed. */
static int up_write(struct hconn *c)
{
	size_t written = 0;

	while (c->pre_off < c->pre_len) {
		ssize_t n = send(c->fd, c->pre + c->pre_off, c->pre_len - c->pre_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->pre_off += (size_t)n;
	}
	while (c->up_len > 0) {
		size_t first = c->up_len;
		if (c->up_start + first > ORCH_EGRESS_WINDOW_UP)
			first = ORCH_EGRESS_WINDOW_UP - c->up_start;
		ssize_t n = send(c->fd, c->up + c->up_start, first, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		c->up_start = (c->up_start + (size_t)n) % ORCH_EGRESS_WINDOW_UP;
		c->up_len -= (size_t)n;
		written += (size_t)n;
	}
	if (c->up_len == 0)
		c->up_start = 0;
	c->owed += written;
	if (c->owed >= HCONN_CREDIT_BATCH || (c->owed && c->up_len == 0)) {
		uint8_t p[4] = {(uint8_t)(c->owed >> 24), (uint8_t)(c->owed >> 16),
				(uint8_t)(c->owed >> 8), (uint8_t)c->owed};
		(void)egress_lane_queue(c->s, ORCH_EGRESS_CREDIT, c->id, p, sizeof(p));
		c->owed = 0;
	}
	if (c->guest_eof && c->up_len == 0 && c->pre_off == c->pre_len && !c->shut_wr) {
		(void)shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	return 0;
}

static void upstream_read(struct hconn *c)
{
	struct egress_serve *s = c->s;
	size_t want = c->send_credit < sizeof(s->rbuf) ? c->send_credit : sizeof(s->rbuf);
	bool copied = false;
	/* socket to lane inside the kernel; copied through a frame only while an earlier
	 * frame's bytes still wait in the pipe */
	ssize_t n = egress_lane_splice(s, c->fd, want, c->id);

	if (n == -EBUSY || n == -EOPNOTSUPP) {
		uint8_t *buf =
			orch_egress_io_reserve(s->eio, want); /* read straight into a frame */
		n = buf ? recv(c->fd, buf, want, MSG_DONTWAIT) : -ENOMEM;
		if (n < 0 && buf)
			n = -errno;
		copied = true;
	}
	if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR)
		return;
	if (n == -EPIPE && s->failed) {
		egress_hconn_end(c, false);
		return;
	}
	if (n < 0) {
		reasonf(c->reason, sizeof(c->reason), "the upstream connection failed: %s",
			strerror((int)-n));
		egress_hconn_end(c, true);
		return;
	}
	if (n == 0) {
		c->up_eof = true;
		(void)egress_lane_queue(s, ORCH_EGRESS_EOF, c->id, NULL, 0);
		if (c->guest_eof) {
			egress_hconn_end(c, true);
			return;
		}
		egress_hconn_events(c);
		return;
	}
	c->send_credit -= (size_t)n;
	c->bytes_down += n;
	if (copied && egress_lane_commit(s, ORCH_EGRESS_DATA, c->id, (size_t)n) < 0) {
		egress_hconn_end(c, false);
		return;
	}
	if (limit_reached(c))
		return;
	egress_hconn_events(c);
}

static void on_upstream(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			void *data)
{
	struct hconn *c = data;

	if (c->state == HCONN_CONNECTING) {
		int e = 0;
		socklen_t l = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
			e = errno;
		if (e) {
			orch_io_free(c->io);
			c->io = NULL;
			close(c->fd);
			c->fd = -1;
			c->addr_i++;
			if (c->addr_i < c->n_addrs) {
				egress_hconn_connect(c);
				return;
			}
			char why[ORCH_EGRESS_MAX_REASON];
			reasonf(why, sizeof(why), "cannot connect to %s:%u: %s", c->host, c->port,
				strerror(e));
			c->allowed = true;
			if (c->verdict_sent) {
				reasonf(c->reason, sizeof(c->reason), "%s", why);
				egress_hconn_end(c, true);
			} else {
				(void)egress_lane_verdict(c->s, c->id, 502, why);
				reasonf(c->reason, sizeof(c->reason), "%s", why);
				egress_hconn_end(c, false);
			}
			return;
		}
		c->state = HCONN_OPEN;
		c->allowed = true;
		if (c->s->h->cfg->limits.duration_ms > 0)
			orch_timer_rearm(c->timer, (uint64_t)c->s->h->cfg->limits.duration_ms);
		else
			orch_timer_disarm(c->timer);
		if (!c->verdict_sent) {
			c->verdict_sent = true;
			if (egress_lane_verdict(c->s, c->id, 0, NULL) < 0) {
				egress_hconn_end(c, false);
				return;
			}
		}
		events = EPOLLOUT;
	}
	if (c->icpt) {
		egress_icpt_pump(c);
		return;
	}
	if (events & EPOLLOUT) {
		if (up_write(c) < 0) {
			reasonf(c->reason, sizeof(c->reason), "writing to the upstream failed");
			egress_hconn_end(c, true);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
		if (c->send_credit > 0 && !c->up_eof && !c->s->congested) {
			upstream_read(c);
			return;
		}
		if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
			reasonf(c->reason, sizeof(c->reason), "the upstream closed");
			egress_hconn_end(c, true);
			return;
		}
	}
	egress_hconn_events(c);
}

void egress_hconn_connect(struct hconn *c)
{
	struct sockaddr_storage *a = &c->addrs[c->addr_i];
	socklen_t len =
		a->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int one = 1;

	c->state = HCONN_CONNECTING;
	if (a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_port = htons(c->port);
	else
		((struct sockaddr_in6 *)a)->sin6_port = htons(c->port);
	c->fd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		egress_hconn_deny(c, 503, "cannot make a socket");
		return;
	}
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)a, len) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		if (++c->addr_i < c->n_addrs) {
			egress_hconn_connect(c);
			return;
		}
		char why[ORCH_EGRESS_MAX_REASON];
		reasonf(why, sizeof(why), "cannot connect to %s:%u: %s", c->host, c->port,
			strerror(e));
		c->allowed = true;
		if (c->verdict_sent) {
			reasonf(c->reason, sizeof(c->reason), "%s", why);
			egress_hconn_end(c, true);
		} else
			egress_hconn_deny(c, 502, why);
		return;
	}
	if (orch_io_add(c->s->h->loop, c->fd, EPOLLOUT, on_upstream, c, &c->io) < 0)
		egress_hconn_deny(c, 503, "out of memory");
}

/* The ClientHello of a tunnel, gathered in the ring: its server name must be the host
 * the agent asked for (no fronting), before anything is dialled. */
static void check_hello(struct hconn *c)
{
	char sni[ORCH_EGRESS_MAX_HOST + 1], why[ORCH_EGRESS_MAX_REASON];
	struct orch_error err = {0};
	int r = orch_tls_sni(c->up, c->up_len, sni, &err);

	if (r == -EAGAIN) {
		if (c->up_len >= ORCH_EGRESS_WINDOW_UP)
			egress_hconn_deny(c, 403, "ClientHello too large");
		return;
	}
	if (r < 0) {
		reasonf(why, sizeof(why), "not a TLS ClientHello (%s): tunnels carry TLS only",
			err.msg);
		egress_hconn_deny(c, 403, why);
		return;
	}
	if (r == 0 && !orch_egress_host_is_ip(c->host)) {
		egress_hconn_deny(c, 403, "the ClientHello names no server (SNI is required)");
		return;
	}
	if (r == 1 && strcmp(sni, c->host) != 0) {
		reasonf(why, sizeof(why), "TLS server name %s does not match the CONNECT host %s",
			sni, c->host);
		egress_hconn_deny(c, 403, why);
		return;
	}
	int entry = egress_tls_find(c->s->h->tls, c->host, c->port);
	if (entry >= 0 && egress_icpt_new(c, entry) < 0) {
		egress_hconn_deny(c, 503, "cannot set up the interception");
		return;
	}
	egress_hconn_connect(c);
	if (c->icpt && egress_hconn_find(c->s, c->id) == c)
		egress_icpt_pump(c); /* the agent's handshake needs no upstream */
}

static int violation(struct hconn *c, const char *what)
{
	orch_log(ORCH_LOG_WARN, "egress", "egress lane protocol error", "vm", c->s->vm, "error",
		 what, NULL);
	return -EPROTO;
}

int egress_hconn_on_frame(struct hconn *c, const struct orch_egress_hdr *h, const uint8_t *p)
{
	switch (h->type) {
	case ORCH_EGRESS_DATA: {
		if (c->guest_eof || c->state == HCONN_RESOLVING || c->state == HCONN_NEW)
			return violation(c, "data out of turn");
		if (h->len > ORCH_EGRESS_WINDOW_UP - c->up_len)
			return violation(c, "data past the window");
		if (!c->up && !(c->up = malloc(ORCH_EGRESS_WINDOW_UP))) {
			egress_hconn_deny(c, 503, "out of memory");
			return 0;
		}
		size_t pos = (c->up_start + c->up_len) % ORCH_EGRESS_WINDOW_UP;
		size_t first =
			h->len < ORCH_EGRESS_WINDOW_UP - pos ? h->len : ORCH_EGRESS_WINDOW_UP - pos;
		memcpy(c->up + pos, p, first);
		memcpy(c->up, p + first, h->len - first);
		c->up_len += h->len;
		c->bytes_up += h->len;
		if (c->state == HCONN_HELLO) {
			check_hello(c);
			return 0;
		}
		if (limit_reached(c))
			return 0;
		if (c->icpt) {
			egress_icpt_pump(c);
			return 0;
		}
		if (c->state == HCONN_OPEN && up_write(c) < 0) {
			reasonf(c->reason, sizeof(c->reason), "writing to the upstream failed");
			egress_hconn_end(c, true);
			return 0;
		}
		egress_hconn_events(c);
		return 0;
	}
	case ORCH_EGRESS_CREDIT: {
		uint32_t n =
			(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (n == 0 || c->send_credit + n > ORCH_EGRESS_WINDOW_DOWN)
			return violation(c, "credit past the window");
		c->send_credit += n;
		if (c->icpt)
			egress_icpt_pump(c);
		else
			egress_hconn_events(c);
		return 0;
	}
	case ORCH_EGRESS_EOF:
		if (c->guest_eof)
			return violation(c, "a second eof");
		c->guest_eof = true;
		if (c->state == HCONN_HELLO || c->state == HCONN_RESOLVING) {
			egress_hconn_deny(c, 403, "the agent closed before its ClientHello");
			return 0;
		}
		if (c->icpt) {
			egress_icpt_pump(c);
			return 0;
		}
		if (c->state == HCONN_OPEN) {
			if (up_write(c) < 0) {
				egress_hconn_end(c, true);
				return 0;
			}
			if (c->up_eof && c->up_len == 0) {
				egress_hconn_end(c, true);
				return 0;
			}
		}
		egress_hconn_events(c);
		return 0;
	case ORCH_EGRESS_CLOSE:
		if (!c->reason[0])
			reasonf(c->reason, sizeof(c->reason), "%s",
				c->state == HCONN_OPEN ? "" : "the agent left");
		if (c->state != HCONN_OPEN && !c->verdict_sent)
			c->allowed = false;
		egress_hconn_end(c, false);
		return 0;
	default:
		return violation(c, "unexpected frame");
	}
}
