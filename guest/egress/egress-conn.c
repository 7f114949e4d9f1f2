/* SPDX-License-Identifier: Apache-2.0 */
/* The connections of the in-jail egress proxy, on the supervisor's side (egress-proxy.h):
 * each an agent's TCP connection whose head a helper read, relayed over the egress lane
 * as DATA frames within the windows both sides credit; the frames orchd sends for them;
 * and the lingering close after orchd ends one. Nothing here parses an agent's bytes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "egress-internal.h"

#define CREDIT_BATCH \
	(ORCH_EGRESS_WINDOW_DOWN / 4) /* credit returned to orchd in steps of at least this */
/* After orchd closes a connection the agent is still sending on (a request refused
 * within its body), its bytes are read and dropped for this long, or this many, before
 * the socket is closed: closing with unread bytes would reset the connection, and the
 * agent, failing to send, would never read the refusal already sent to it. */
#define LINGER_MS 2000
#define LINGER_BYTES (16u * 1024 * 1024)

/* ---- connections ---- */

static size_t bucket(uint32_t id)
{
	return id % EGRESS_BUCKETS;
}

struct econn *egress_conn_find(struct egress_bridge *b, uint32_t id)
{
	for (struct econn *c = b->buckets[bucket(id)]; c; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

static void conn_events(struct econn *c)
{
	uint32_t ev = 0;
	struct egress_bridge *b = c->b;

	/* EPOLLRDHUP only with EPOLLIN: it stays raised once the agent half-closed, and
	 * nothing is read from it before the verdict (a full close still reports EPOLLHUP) */
	if (c->state == ECONN_OPEN && !c->client_eof && c->send_credit > 0 && !b->congested)
		ev |= EPOLLIN | EPOLLRDHUP;
	if (c->state == ECONN_LINGER)
		ev |= EPOLLIN;
	if (c->out_len > 0)
		ev |= EPOLLOUT;
	if (c->io && ev != orch_io_get_events(c->io))
		(void)orch_io_set_events(c->io, ev);
}

void egress_conns_update(struct egress_bridge *b)
{
	for (size_t i = 0; i < EGRESS_BUCKETS; i++)
		for (struct econn *c = b->buckets[i]; c; c = c->hnext)
			conn_events(c);
}

/* Frees the connection; tell: send CLOSE with why to orchd first. */
void egress_conn_free(struct econn *c, const char *why)
{
	struct egress_bridge *b = c->b;
	struct econn **pp = &b->buckets[bucket(c->id)];

	if (why && b->lane)
		(void)egress_lane_send(b, ORCH_EGRESS_CLOSE, c->id, why, strlen(why));
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	b->n_conns--;
	if (c->slot < EGRESS_MAX_SLOTS && b->eps[c->slot])
		b->eps[c->slot]->n_conns--;
	orch_io_free(c->io);
	orch_timer_free(c->linger);
	if (c->fd >= 0)
		close(c->fd);
	free(c->out);
	free(c);
}

/* Sends what is buffered for the client. < 0: the client is gone. */
static int conn_write(struct econn *c)
{
	size_t written = 0;

	while (c->out_len > 0) {
		size_t first = c->out_len;
		if (c->out_start + first > EGRESS_OUT_CAP)
			first = EGRESS_OUT_CAP - c->out_start;
		ssize_t n = send(c->fd, c->out + c->out_start, first, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0)
			return -EPIPE;
		c->out_start = (c->out_start + (size_t)n) % EGRESS_OUT_CAP;
		c->out_len -= (size_t)n;
		written += (size_t)n;
	}
	if (c->out_len == 0)
		c->out_start = 0;
	c->owed += written - (c->head_bytes < written ? c->head_bytes : written);
	c->head_bytes = c->head_bytes < written ? 0 : c->head_bytes - written;
	if (c->state != ECONN_LINGER && /* orchd has forgotten it */
	    (c->owed >= CREDIT_BATCH || (c->owed && c->out_len == 0))) {
		(void)egress_lane_credit(c->b, c->id, (uint32_t)c->owed);
		c->owed = 0;
	}
	if (c->out_len == 0 && c->host_eof && !c->shut_wr) {
		(void)shutdown(c->fd, SHUT_WR);
		c->shut_wr = true;
	}
	return 0;
}

/* Bytes for the client (from orchd, or the proxy's own 200). */
static int conn_put(struct econn *c, const void *data, size_t len)
{
	if (len > EGRESS_OUT_CAP - c->out_len)
		return -ENOBUFS;
	if (!c->out && !(c->out = malloc(EGRESS_OUT_CAP)))
		return -ENOMEM;
	size_t pos = (c->out_start + c->out_len) % EGRESS_OUT_CAP;
	size_t first = len < EGRESS_OUT_CAP - pos ? len : EGRESS_OUT_CAP - pos;
	memcpy(c->out + pos, data, first);
	memcpy(c->out, (const uint8_t *)data + first, len - first);
	c->out_len += len;
	return 0;
}

static void on_linger_end(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	(void)loop;
	(void)t;
	egress_conn_free(data, NULL);
}

/* orchd closed the connection (c is OPEN) or refused it (c was WAITing, the refusal is
 * sent): what is buffered for the agent still goes out, then a FIN; what the agent sends
 * is dropped until it closes, LINGER_MS pass or LINGER_BYTES came. Closing at once with
 * the agent's bytes unread would reset the connection, and an agent still sending (a
 * request body) would fail on that and never read the answer already sent. */
static void conn_linger(struct egress_bridge *b, struct econn *c)
{
	c->state = ECONN_LINGER;
	c->host_eof = true;
	c->linger_left = LINGER_BYTES;
	if (conn_write(c) < 0 ||
	    orch_timer_add(b->loop, LINGER_MS, 0, on_linger_end, c, &c->linger) < 0) {
		egress_conn_free(c, NULL);
		return;
	}
	conn_events(c);
}

static void conn_linger_io(struct econn *c, uint32_t events)
{
	struct egress_bridge *b = c->b;

	if ((events & EPOLLOUT) && conn_write(c) < 0) {
		egress_conn_free(c, NULL);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(c->fd, b->rbuf, sizeof(b->rbuf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) ||
		    (n > 0 && (size_t)n >= c->linger_left)) {
			egress_conn_free(c, NULL);
			return;
		}
		if (n > 0)
			c->linger_left -= (size_t)n;
	}
	conn_events(c);
}

static void on_client(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct econn *c = data;
	struct egress_bridge *b = c->b;

	if (c->state == ECONN_LINGER) {
		conn_linger_io(c, events);
		return;
	}
	if ((events & EPOLLOUT) && conn_write(c) < 0) {
		egress_conn_free(c, "the agent closed the connection");
		return;
	}
	if ((events & EPOLLIN) && c->state == ECONN_OPEN && c->send_credit > 0 && !c->client_eof) {
		size_t want = c->send_credit < sizeof(b->rbuf) ? c->send_credit : sizeof(b->rbuf);
		ssize_t n = recv(fd, b->rbuf, want, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			egress_conn_free(c, "the agent's connection failed");
			return;
		}
		if (n == 0) {
			c->client_eof = true;
			(void)egress_lane_send(b, ORCH_EGRESS_EOF, c->id, NULL, 0);
		} else if (n > 0) {
			c->send_credit -= (size_t)n;
			if (egress_lane_send(b, ORCH_EGRESS_DATA, c->id, b->rbuf, (size_t)n) < 0) {
				egress_conn_free(c, NULL);
				return;
			}
		}
	} else if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
		egress_conn_free(c, "the agent closed the connection");
		return;
	}
	if (c->client_eof && c->host_eof && c->out_len == 0) {
		egress_conn_free(c, "done");
		return;
	}
	conn_events(c);
}

/* A fixed answer from the proxy itself, then the connection is over. */
void egress_conn_refuse(struct econn *c, int status, const char *reason)
{
	char buf[640];
	const char *text = status == 403   ? "Forbidden"
			   : status == 429 ? "Too Many Requests"
			   : status == 502 ? "Bad Gateway"
			   : status == 503 ? "Service Unavailable"
			   : status == 504 ? "Gateway Timeout"
					   : "Error";
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
			 "X-Orch-Egress: refused\r\nContent-Length: %zu\r\n\r\norch egress: %s\n",
			 status, text, strlen(reason) + 14, reason);
	if (n > 0)
		(void)send(c->fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
			   MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ---- from orchd (called by egress-lane.c) ---- */

int egress_conn_on_frame(struct egress_bridge *b, const struct orch_egress_hdr *h, const uint8_t *p,
			 struct orch_error *err)
{
	struct econn *c = egress_conn_find(b, h->conn);

	if (!c || c->state == ECONN_LINGER)
		return 0; /* closed here already: frames in flight are normal */
	switch (h->type) {
	case ORCH_EGRESS_VERDICT: {
		_cleanup_json_ json_t *root = NULL;
		struct orch_egress_verdict v;
		if (c->state != ECONN_WAIT)
			return orch_err(err, -EPROTO, "a second verdict for connection %u", c->id);
		if (orch_egress_verdict_parse(p, h->len, &root, &v, err) < 0)
			return -EPROTO;
		if (!v.ok) {
			egress_conn_refuse(c, (int)v.status, v.reason);
			conn_linger(b, c);
			return 0;
		}
		c->state = ECONN_OPEN;
		if (c->kind == ORCH_EGRESS_CONNECT) {
			static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
			(void)conn_put(c, ok, sizeof(ok) - 1);
			c->head_bytes = sizeof(ok) - 1; /* ours: no credit for them */
			if (conn_write(c) < 0) {
				egress_conn_free(c, "the agent closed the connection");
				return 0;
			}
		}
		conn_events(c);
		return 0;
	}
	case ORCH_EGRESS_DATA:
		if (c->state != ECONN_OPEN || c->host_eof)
			return orch_err(err, -EPROTO, "data for connection %u out of turn", c->id);
		if (c->out_len == 0) { /* straight to the agent; only the rest is kept */
			ssize_t n = send(c->fd, p, h->len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				egress_conn_free(c, "the agent closed the connection");
				return 0;
			}
			if (n > 0) {
				c->owed += (size_t)n;
				p += n;
				if ((size_t)n == h->len) {
					if (c->owed >= CREDIT_BATCH) {
						(void)egress_lane_credit(c->b, c->id,
									 (uint32_t)c->owed);
						c->owed = 0;
					}
					conn_events(c);
					return 0;
				}
				struct orch_egress_hdr rest = *h;
				rest.len -= (uint32_t)n;
				h = &rest;
				if (conn_put(c, p, h->len) < 0)
					return orch_err(err, -EPROTO,
							"connection %u: orchd sent past the window",
							c->id);
				if (conn_write(c) < 0) {
					egress_conn_free(c, "the agent closed the connection");
					return 0;
				}
				conn_events(c);
				return 0;
			}
		}
		if (conn_put(c, p, h->len) < 0)
			return orch_err(err, -EPROTO, "connection %u: orchd sent past the window",
					c->id);
		if (conn_write(c) < 0) {
			egress_conn_free(c, "the agent closed the connection");
			return 0;
		}
		conn_events(c);
		return 0;
	case ORCH_EGRESS_CREDIT: {
		uint32_t n =
			(uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (n == 0 || c->send_credit + n > ORCH_EGRESS_WINDOW_UP)
			return orch_err(err, -EPROTO, "connection %u: credit past the window",
					c->id);
		c->send_credit += n;
		conn_events(c);
		return 0;
	}
	case ORCH_EGRESS_EOF:
		if (c->state != ECONN_OPEN)
			return orch_err(err, -EPROTO, "eof for connection %u out of turn", c->id);
		c->host_eof = true;
		if (conn_write(c) < 0) {
			egress_conn_free(c, "the agent closed the connection");
			return 0;
		}
		if (c->client_eof && c->out_len == 0) {
			egress_conn_free(c, "done");
			return 0;
		}
		conn_events(c);
		return 0;
	case ORCH_EGRESS_CLOSE:
		if (c->state == ECONN_OPEN) {
			conn_linger(b, c);
			return 0;
		}
		if (c->state == ECONN_WAIT) {
			egress_conn_refuse(c, 502, "orchd closed the connection");
			conn_linger(b, c);
			return 0;
		}
		egress_conn_free(c, NULL);
		return 0;
	default:
		return orch_err(err, -EPROTO, "unexpected %s frame from orchd",
				orch_egress_type_name(h->type));
	}
}

int egress_conn_sink(struct egress_bridge *b, const struct orch_egress_hdr *h)
{
	struct econn *c = egress_conn_find(b, h->conn);

	if (!b->ready || !c || c->state != ECONN_OPEN || c->host_eof || c->out_len > 0)
		return -1; /* the frame callback decides, as for any frame */
	return c->fd;
}

void egress_conn_sunk(struct egress_bridge *b, const struct orch_egress_hdr *h)
{
	struct econn *c = egress_conn_find(b, h->conn);

	if (!c)
		return;
	c->owed += h->len;
	if (c->owed >= CREDIT_BATCH) {
		(void)egress_lane_credit(b, c->id, (uint32_t)c->owed);
		c->owed = 0;
	}
}

struct econn *egress_conn_new(struct egress_bridge *b, unsigned slot, enum orch_egress_kind kind,
			      int fd)
{
	struct econn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->b = b;
	c->fd = fd;
	c->slot = slot;
	c->kind = kind;
	c->state = ECONN_WAIT;
	c->send_credit = ORCH_EGRESS_WINDOW_UP;
	if (b->next_id == 0 || b->next_id >= ORCH_EGRESS_MAX_CONN_ID)
		b->next_id = 1;
	c->id = b->next_id++;
	c->hnext = b->buckets[bucket(c->id)];
	b->buckets[bucket(c->id)] = c;
	b->n_conns++;
	return c;
}

int egress_conn_watch(struct econn *c)
{
	return orch_io_add(c->b->loop, c->fd, 0, on_client, c, &c->io);
}
