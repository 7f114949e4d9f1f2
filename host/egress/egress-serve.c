/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's end of the egress lanes: frames, decisions, connections (egress-serve.h). The
 * relay of an open connection's bytes is egress-relay.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "strv.h"
#include "egress-dlp.h"
#include "egress-http.h"
#include "egress-log.h"
#include "egress-policy.h"
#include "egress-intercept.h"
#include "egress-serve-internal.h"
#include "egress-tls.h"
#include "log.h"

#define READ_BUDGET (1024 * 1024)

/* ---- the host ---- */

void egress_host_flush_log(struct egress_host *h)
{
	struct orch_error err = {0};
	size_t n = h->n_rows;

	if (!n)
		return;
	h->n_rows = 0;
	orch_timer_disarm(h->log_timer);
	bool tx = sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	for (size_t i = 0; i < n; i++)
		if (egress_log_insert(h->db, &h->rows[i].row, &err) < 0)
			break;
	if (tx && sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		orch_err(&err, -EIO, "commit: %s", sqlite3_errmsg(h->db));
	}
	if (err.msg[0])
		orch_log(ORCH_LOG_WARN, "egress", "cannot log connections", "error", err.msg, NULL);
	h->inserts += n;
	if (h->inserts >= 1000) {
		h->inserts = 0;
		(void)egress_log_prune(h->db, h->cfg->log_keep, NULL);
	}
}

void egress_host_totals(const struct egress_host *h, struct egress_totals *ret)
{
	*ret = h->totals;
}

static void on_log_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	egress_host_flush_log(data);
}

int egress_host_new(struct orch_loop *loop, const struct egress_config *cfg, sqlite3 *db,
		    const char *state_dir, struct egress_host **ret, struct orch_error *err)
{
	struct egress_host *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return orch_err(err, -ENOMEM, "out of memory");
	h->loop = loop;
	h->cfg = cfg;
	h->db = db;
	if ((r = egress_resolver_new(loop, &h->resolver, err)) < 0) {
		free(h);
		return r;
	}
	if (!(h->rows = calloc(HCONN_LOG_MAX, sizeof(*h->rows))) ||
	    orch_timer_add(loop, 0, 0, on_log_timer, h, &h->log_timer) < 0) {
		egress_host_free(h);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	orch_timer_disarm(h->log_timer);
	if (cfg->n_injects > 0) {
		if ((r = egress_tls_new(cfg, state_dir, &h->tls, err)) < 0 ||
		    (r = egress_dlp_new(egress_tls_keys(h->tls), cfg->dlp_patterns, cfg->n_dlp,
					&h->dlp, err)) < 0 ||
		    !(h->ca_pem = strdup(egress_tls_ca_pem(h->tls)))) {
			egress_host_free(h);
			return r < 0 ? r : orch_err(err, -ENOMEM, "out of memory");
		}
	}
	*ret = h;
	return 0;
}

void egress_host_free(struct egress_host *h)
{
	if (!h)
		return;
	if (h->rows)
		egress_host_flush_log(h);
	orch_timer_free(h->log_timer);
	free(h->rows);
	egress_resolver_free(h->resolver);
	egress_dlp_free(h->dlp);
	egress_tls_free(h->tls);
	free(h->ca_pem);
	free(h);
}

const char *egress_host_ca_pem(const struct egress_host *h)
{
	return h->ca_pem;
}

/* ---- the lane ---- */

static size_t bucket(uint32_t id)
{
	return id % HCONN_BUCKETS;
}

struct hconn *egress_hconn_find(struct egress_serve *s, uint32_t id)
{
	for (struct hconn *c = s->buckets[bucket(id)]; c; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

static void lane_events(struct egress_serve *s)
{
	uint32_t ev = EPOLLIN | EPOLLRDHUP;

	if (orch_egress_io_queued(s->eio) > 0)
		ev |= EPOLLOUT;
	(void)orch_io_set_events(s->io, ev);
}

static void congestion(struct egress_serve *s)
{
	size_t q = orch_egress_io_queued(s->eio);
	bool was = s->congested, piped = orch_egress_io_piped(s->eio) > 0;

	/* a frame's bytes waiting in the splice pipe: the lane is full, and reading the
	 * upstreams now would only move their bytes from the kernel into this process */
	if (q >= HCONN_LANE_CONGESTED || piped)
		s->congested = true;
	else if (q < HCONN_LANE_CONGESTED / 2)
		s->congested = false;
	if (was != s->congested)
		for (size_t i = 0; i < HCONN_BUCKETS; i++)
			for (struct hconn *c = s->buckets[i]; c; c = c->hnext)
				egress_hconn_events(c);
}

int egress_lane_queue(struct egress_serve *s, uint8_t type, uint32_t conn, const void *p,
		      size_t len)
{
	bool was_empty = orch_egress_io_queued(s->eio) == 0;
	int r;

	if (s->failed)
		return -EPIPE;
	if ((r = orch_egress_io_queue(s->eio, type, conn, p, len)) < 0)
		return r;
	if (was_empty && orch_egress_io_flush(s->eio, s->fd) < 0)
		s->failed = true; /* the lane's own event reports it */
	lane_events(s);
	congestion(s);
	return 0;
}

int egress_lane_commit(struct egress_serve *s, uint8_t type, uint32_t conn, size_t len)
{
	bool was_empty = orch_egress_io_queued(s->eio) == 0;
	int r;

	if (s->failed)
		return -EPIPE;
	if ((r = orch_egress_io_commit(s->eio, type, conn, len)) < 0)
		return r;
	if (was_empty && orch_egress_io_flush(s->eio, s->fd) < 0)
		s->failed = true;
	lane_events(s);
	congestion(s);
	return 0;
}

ssize_t egress_lane_splice(struct egress_serve *s, int fd, size_t max, uint32_t conn)
{
	bool was_empty = orch_egress_io_queued(s->eio) == 0;
	ssize_t n;

	if (s->failed)
		return -EPIPE;
	if ((n = orch_egress_io_splice(s->eio, fd, max, ORCH_EGRESS_DATA, conn)) <= 0)
		return n;
	if (was_empty && orch_egress_io_flush(s->eio, s->fd) < 0)
		s->failed = true;
	lane_events(s);
	congestion(s);
	return n;
}

int egress_lane_verdict(struct egress_serve *s, uint32_t conn, int status, const char *reason)
{
	struct orch_egress_verdict v = {.ok = status == 0, .status = status, .reason = reason};
	_cleanup_free_ char *p = NULL;
	size_t len = 0;

	if (!(p = orch_egress_verdict_build(&v, &len)))
		return -ENOMEM;
	return egress_lane_queue(s, ORCH_EGRESS_VERDICT, conn, p, len);
}

/* ---- connections ---- */

static void conn_link(struct egress_serve *s, struct hconn *c)
{
	c->hnext = s->buckets[bucket(c->id)];
	s->buckets[bucket(c->id)] = c;
	s->n_conns++;
	if (c->slot >= 0 && c->slot < HCONN_MAX_SLOTS)
		s->slot_conns[c->slot]++;
}

/* Logs the connection and frees it. tell: send CLOSE (with reason) to the guest. */
void egress_hconn_end(struct hconn *c, bool tell)
{
	struct egress_serve *s = c->s;
	struct hconn **pp = &s->buckets[bucket(c->id)];
	char n1[24], n2[24], port[8];

	if (tell && !s->failed) {
		const char *why = c->reason[0] ? c->reason : "done";
		(void)egress_lane_queue(s, ORCH_EGRESS_CLOSE, c->id, why, strlen(why));
	}
	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	s->n_conns--;
	if (c->slot >= 0 && c->slot < HCONN_MAX_SLOTS)
		s->slot_conns[c->slot]--;
	struct egress_host *h = s->h;
	if (h->n_rows == HCONN_LOG_MAX)
		egress_host_flush_log(h);
	struct pending_row *pr = &h->rows[h->n_rows++];
	snprintf(pr->vm, sizeof(pr->vm), "%s", s->vm);
	snprintf(pr->host, sizeof(pr->host), "%s", c->host);
	snprintf(pr->reason, sizeof(pr->reason), "%s", c->reason);
	pr->row = (struct egress_log_row){
		.ts_ms = c->wall_start_ms,
		.task = c->task,
		.vm = pr->vm,
		.slot = c->slot,
		.kind = c->kind == ORCH_EGRESS_HTTP ? "http" : "connect",
		.host = pr->host,
		.port = c->port,
		.allowed = c->allowed,
		.reason = pr->reason,
		.bytes_up = c->bytes_up,
		.bytes_down = c->bytes_down,
		.duration_ms = (int64_t)(orch_now_ms() - c->start_ms),
	};
	if (h->n_rows == 1)
		orch_timer_rearm(h->log_timer, HCONN_LOG_FLUSH_MS);
	h->totals.allowed += c->allowed;
	h->totals.denied += !c->allowed;
	h->totals.bytes_up += (uint64_t)c->bytes_up;
	h->totals.bytes_down += (uint64_t)c->bytes_down;
	snprintf(n1, sizeof(n1), "%lld", (long long)c->bytes_up);
	snprintf(n2, sizeof(n2), "%lld", (long long)c->bytes_down);
	snprintf(port, sizeof(port), "%u", c->port);
	orch_log(ORCH_LOG_INFO, "egress", c->allowed ? "connection ended" : "connection refused",
		 "vm", s->vm, "host", c->host, "port", port, "bytes_up", n1, "bytes_down", n2,
		 "reason", c->reason, NULL);
	egress_resolve_cancel(c->job);
	egress_icpt_free(c);
	orch_io_free(c->io);
	orch_timer_free(c->timer);
	if (c->fd >= 0)
		close(c->fd);
	free(c->pre);
	free(c->up);
	free(c);
}

/* Refused: a verdict when none was sent yet, else a CLOSE; logged as denied. */
void egress_hconn_deny(struct hconn *c, int status, const char *reason)
{
	reasonf(c->reason, sizeof(c->reason), "%s", reason);
	c->allowed = false;
	if (!c->verdict_sent) {
		(void)egress_lane_verdict(c->s, c->id, status, c->reason);
		egress_hconn_end(c, false);
		return;
	}
	egress_hconn_end(c, true);
}

static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct hconn *c = data;

	if (c->state == HCONN_OPEN) {
		reasonf(c->reason, sizeof(c->reason), "the connection's duration limit (%lld ms)",
			(long long)c->s->h->cfg->limits.duration_ms);
		egress_hconn_end(c, true);
		return;
	}
	c->allowed = c->state != HCONN_RESOLVING;
	if (c->allowed && c->verdict_sent) {
		reasonf(c->reason, sizeof(c->reason), "cannot connect to %s:%u: timed out", c->host,
			c->port);
		egress_hconn_end(c, true);
		return;
	}
	egress_hconn_deny(c, 504,
			  c->state == HCONN_RESOLVING ? "resolving the name timed out"
						      : "connecting timed out");
}

/* The addresses are known: every one must be public unless the name may be private. */
static void addresses_known(struct hconn *c)
{
	const struct egress_config *cfg = c->s->h->cfg;
	bool ip = orch_egress_host_is_ip(c->host);
	char buf[INET6_ADDRSTRLEN], why[ORCH_EGRESS_MAX_REASON];

	for (size_t i = 0; i < c->n_addrs; i++) {
		const char *cls = egress_addr_class((struct sockaddr *)&c->addrs[i]);
		if (!cls || egress_private_allowed(cfg, c->host))
			continue;
		if (ip) /* allowed explicitly by a rule naming it */
			continue;
		const void *a =
			c->addrs[i].ss_family == AF_INET
				? (const void *)&((struct sockaddr_in *)&c->addrs[i])->sin_addr
				: (const void *)&((struct sockaddr_in6 *)&c->addrs[i])->sin6_addr;
		inet_ntop(c->addrs[i].ss_family, a, buf, sizeof(buf));
		reasonf(why, sizeof(why),
			"%s resolves to %s (%s); not allowed unless egress.allow_private names it",
			c->host, buf, cls);
		egress_hconn_deny(c, 403, why);
		return;
	}
	if (c->kind == ORCH_EGRESS_CONNECT) {
		/* Nothing is dialled before the ClientHello names the same host. */
		c->state = HCONN_HELLO;
		c->verdict_sent = true;
		c->allowed = true;
		if (egress_lane_verdict(c->s, c->id, 0, NULL) < 0) {
			egress_hconn_end(c, false);
			return;
		}
		orch_timer_rearm(c->timer, (uint64_t)cfg->limits.connect_timeout_ms);
		return;
	}
	egress_hconn_connect(c);
}

static void on_resolved(struct addrinfo *res, int gai_err, void *data)
{
	struct hconn *c = data;
	char why[ORCH_EGRESS_MAX_REASON];

	c->job = NULL;
	for (struct addrinfo *a = res; a && c->n_addrs < HCONN_MAX_ADDRS; a = a->ai_next) {
		if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
			continue;
		memcpy(&c->addrs[c->n_addrs++], a->ai_addr, a->ai_addrlen);
	}
	if (c->n_addrs == 0) {
		reasonf(why, sizeof(why), "cannot resolve %s: %s", c->host,
			gai_err ? gai_strerror(gai_err) : "no address");
		egress_hconn_deny(c, 502, why);
		return;
	}
	addresses_known(c);
}

static int parse_ip(const char *s, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		return 0;
	}
	return -EINVAL;
}

/* HTTP: the request head for the upstream, from the open's parts. */
static int build_head(struct hconn *c, const struct orch_egress_open *o)
{
	size_t cap = 256 + strlen(o->target) + strlen(c->host), len;
	size_t i;
	json_t *pair;
	char *b;

	json_array_foreach(o->headers, i, pair) cap += json_string_length(json_array_get(pair, 0)) +
						       json_string_length(json_array_get(pair, 1)) +
						       4;
	if (!(b = malloc(cap)))
		return -ENOMEM;
	bool v6 = strchr(c->host, ':') != NULL;
	len = (size_t)snprintf(b, cap, "%s %s HTTP/1.1\r\nHost: %s%s%s", o->method, o->target,
			       v6 ? "[" : "", c->host, v6 ? "]" : "");
	if (c->port != 80)
		len += (size_t)snprintf(b + len, cap - len, ":%u", c->port);
	len += (size_t)snprintf(b + len, cap - len, "\r\n");
	json_array_foreach(o->headers, i, pair)
	{
		const char *n = json_string_value(json_array_get(pair, 0));
		if (orch_http_header_hop(n))
			continue; /* the guest dropped them; again here */
		len += (size_t)snprintf(b + len, cap - len, "%s: %s\r\n", n,
					json_string_value(json_array_get(pair, 1)));
	}
	len += (size_t)snprintf(b + len, cap - len, "Connection: close\r\n\r\n");
	c->pre = b;
	c->pre_len = len;
	return 0;
}

static int on_open(struct egress_serve *s, const struct orch_egress_hdr *hd, const uint8_t *p)
{
	const struct egress_config *cfg = s->h->cfg;
	_cleanup_json_ json_t *root = NULL;
	struct orch_egress_open o;
	struct orch_error err = {0};
	_cleanup_(orch_strv_freep) char **sets = NULL;
	char why[ORCH_EGRESS_MAX_REASON];
	struct hconn *c;
	int64_t task = 0;

	if (orch_egress_open_parse(p, hd->len, &root, &o, &err) < 0) {
		orch_log(ORCH_LOG_WARN, "egress", "invalid open on the egress lane", "vm", s->vm,
			 "error", err.msg, NULL);
		return -EPROTO;
	}
	if (hd->conn <= s->last_id || egress_hconn_find(s, hd->conn)) {
		orch_log(ORCH_LOG_WARN, "egress", "reused connection id on the egress lane", "vm",
			 s->vm, NULL);
		return -EPROTO;
	}
	s->last_id = hd->conn;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	c->s = s;
	c->id = hd->conn;
	c->slot = o.slot;
	c->kind = o.kind;
	c->fd = -1;
	c->port = (uint16_t)o.port;
	c->send_credit = ORCH_EGRESS_WINDOW_DOWN;
	c->start_ms = orch_now_ms();
	c->wall_start_ms = store_wall_ms();
	snprintf(c->host, sizeof(c->host), "%s", o.host);
	conn_link(s, c);
	if (orch_timer_add(s->h->loop, (uint64_t)cfg->limits.connect_timeout_ms, 0, on_timer, c,
			   &c->timer) < 0) {
		egress_hconn_deny(c, 503, "out of memory");
		return 0;
	}
	if (o.slot >= s->n_slots) {
		egress_hconn_deny(c, 403, "no such agent slot");
		return 0;
	}
	if (s->slot_cb(s->data, o.slot, &task, &sets) < 0 || task <= 0) {
		egress_hconn_deny(c, 403, "no task runs in this agent slot");
		return 0;
	}
	c->task = task;
	if (s->slot_conns[o.slot] > cfg->limits.connections) {
		reasonf(why, sizeof(why), "too many connections of this agent (at most %lld)",
			(long long)cfg->limits.connections);
		egress_hconn_deny(c, 429, why);
		return 0;
	}
	if (cfg->limits.bytes > 0) {
		c->task_bytes_base = egress_task_bytes(s->h, task);
		if (c->task_bytes_base >= cfg->limits.bytes) {
			reasonf(why, sizeof(why), "the task's egress byte limit (%lld) is reached",
				(long long)cfg->limits.bytes);
			egress_hconn_deny(c, 429, why);
			return 0;
		}
	}
	if (egress_policy_allowed(cfg, sets, c->host, c->port, why, sizeof(why)) < 0) {
		egress_hconn_deny(c, 403, why);
		return 0;
	}
	if (o.kind == ORCH_EGRESS_HTTP && build_head(c, &o) < 0) {
		egress_hconn_deny(c, 503, "out of memory");
		return 0;
	}
	c->state = HCONN_RESOLVING;
	const struct egress_resolve *ov = egress_resolve_override(cfg, c->host);
	if (orch_egress_host_is_ip(c->host)) {
		c->n_addrs = parse_ip(c->host, 0, &c->addrs[0]) == 0;
	} else if (ov) {
		for (size_t i = 0; i < ov->n_addrs && c->n_addrs < HCONN_MAX_ADDRS; i++)
			if (parse_ip(ov->addrs[i], 0, &c->addrs[c->n_addrs]) == 0)
				c->n_addrs++;
	} else {
		int r = egress_resolve(s->h->resolver, c->host, on_resolved, c, &c->job);
		if (r < 0)
			egress_hconn_deny(c, 503, "too many name resolutions in flight");
		return 0;
	}
	addresses_known(c);
	return 0;
}

static int on_frame(void *data, const struct orch_egress_hdr *h, const uint8_t *p)
{
	struct egress_serve *s = data;
	struct hconn *c;

	if (s->failed)
		return -EPIPE;
	switch (h->type) {
	case ORCH_EGRESS_OPEN:
		return on_open(s, h, p);
	case ORCH_EGRESS_DATA:
	case ORCH_EGRESS_CREDIT:
	case ORCH_EGRESS_EOF:
	case ORCH_EGRESS_CLOSE:
		c = egress_hconn_find(s, h->conn);
		if (!c)
			return 0; /* ended here already */
		return egress_hconn_on_frame(c, h, p);
	default:
		orch_log(ORCH_LOG_WARN, "egress", "unexpected frame on the egress lane", "vm",
			 s->vm, "type", orch_egress_type_name(h->type), NULL);
		return -EPROTO;
	}
}

static void lane_failed(struct egress_serve *s, const char *why)
{
	if (s->closing)
		return;
	s->closing = true;
	s->failed = true;
	orch_log(ORCH_LOG_INFO, "egress", "egress lane closed", "vm", s->vm, "why", why, NULL);
	orch_io_free(s->io);
	s->io = NULL;
	if (s->close_cb)
		s->close_cb(s->close_data);
}

static void on_lane(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct egress_serve *s = data;
	struct orch_error err = {0};
	int r;

	if (events & EPOLLOUT) {
		if (orch_egress_io_flush(s->eio, fd) < 0)
			s->failed = true;
		else
			congestion(s);
	}
	if (!s->failed && (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))) {
		r = orch_egress_io_read(s->eio, fd, READ_BUDGET, &err);
		if (r < 0) {
			if (r != -EPIPE)
				orch_log(ORCH_LOG_WARN, "egress", "egress lane protocol error",
					 "vm", s->vm, "error", err.msg[0] ? err.msg : strerror(-r),
					 NULL);
			lane_failed(s, r == -EPIPE ? "closed by the guest" : "protocol error");
			return;
		}
	}
	if (s->failed) {
		lane_failed(s, "write failed");
		return;
	}
	lane_events(s);
}

int egress_serve_new(struct egress_host *h, int fd, const char *vm, int64_t n_slots,
		     egress_slot_cb slot_cb, void *data, struct egress_serve **ret,
		     struct orch_error *err)
{
	struct egress_serve *s = calloc(1, sizeof(*s));
	struct orch_egress_hello hello = {.version = ORCH_EGRESS_VERSION, .ca_pem = h->ca_pem};
	_cleanup_free_ char *hp = NULL;
	size_t hlen = 0;

	if (!s) {
		close(fd);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	s->h = h;
	s->fd = fd;
	s->n_slots = n_slots;
	s->slot_cb = slot_cb;
	s->data = data;
	snprintf(s->vm, sizeof(s->vm), "%s", vm);
	if (orch_egress_io_new(on_frame, s, &s->eio) < 0 ||
	    orch_io_add(h->loop, fd, EPOLLIN | EPOLLRDHUP, on_lane, s, &s->io) < 0 ||
	    !(hp = orch_egress_hello_build(&hello, &hlen)) ||
	    egress_lane_queue(s, ORCH_EGRESS_HELLO, 0, hp, hlen) < 0) {
		egress_serve_free(s);
		return orch_err(err, -ENOMEM, "egress lane: cannot set up");
	}
	*ret = s;
	return 0;
}

void egress_serve_free(struct egress_serve *s)
{
	if (!s)
		return;
	s->closing = true;
	s->failed = true; /* no more frames: the lane goes */
	for (size_t i = 0; i < HCONN_BUCKETS; i++)
		while (s->buckets[i]) {
			struct hconn *c = s->buckets[i];
			if (!c->reason[0])
				reasonf(c->reason, sizeof(c->reason), "the egress lane closed");
			egress_hconn_end(c, false);
		}
	orch_io_free(s->io);
	orch_egress_io_free(s->eio);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

void egress_serve_set_close_cb(struct egress_serve *s, void (*cb)(void *data), void *data)
{
	s->close_cb = cb;
	s->close_data = data;
}

unsigned egress_serve_conns(const struct egress_serve *s)
{
	return s->n_conns;
}
