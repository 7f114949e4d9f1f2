/* SPDX-License-Identifier: Apache-2.0 */
/* An intercepted connection (egress.inject, docs/EGRESS.md): the agent's TLS ends here
 * in a session presenting a certificate of orchd's CA (memory BIOs fed from the lane's
 * ring); its requests are read (proto/egress-http.h, orch_http_reqs), checked (the
 * Host is the intercepted host; no configured key nor DLP pattern in any header or body
 * byte, gzip and deflate bodies inflated to be checked: egress-dlp.h) and written anew
 * with the configured header added, over verified TLS to the real host. Answers flow back
 * unread. A refused request gets a 403 inside the agent's TLS session, and the connection
 * ends.
 *
 * Body bytes, as the agent sent them, wait in pt until the body checker says they may
 * leave (egress_body_feed: what follows them is checked too); the chunk framing between
 * them leaves with them. segs maps the body's offsets to pt's. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "egress-dlp.h"
#include "egress-http.h"
#include "egress-intercept.h"
#include "egress-serve-internal.h"
#include "egress-tls.h"
#include "log.h"

#define PT_CAP (ORCH_EGRESS_WINDOW_UP + 64 * 1024) /* plaintext towards the real host */
#define PT_HIGH (ORCH_EGRESS_WINDOW_UP / 2)	   /* stop reading the agent above this */
#define REC 16384				   /* one TLS record's plaintext */
/* the agent's ciphertext handed to its session ahead of decryption: the rest waits in
 * the lane's ring, uncredited, so the agent's window bounds what orchd holds */
#define RBIO_MAX (2 * (REC + 2048))
#define NSEG 64	     /* body pieces in pt, mapped */
#define SEG_GAP 1024 /* body bytes between two, at least */

/* body bytes [body_end - len, body_end) are pt's stream bytes [abs_end - len, abs_end) */
struct seg {
	uint64_t abs_end, body_end;
	size_t len;
};

struct icpt {
	int entry;
	SSL *srv; /* the agent's session (memory BIOs) */
	BIO *rbio, *wbio;
	SSL *cli; /* the real host's, on c->fd */
	bool srv_done, cli_done, agent_closed, host_closed, srv_shut, refused;
	struct orch_http_reqs reqs;
	uint8_t *pt;
	size_t pt_off, pt_len, pt_commit;
	uint64_t pt_abs; /* bytes ever put in pt: pt[0] is stream byte pt_abs - pt_len */
	struct egress_body *body;
	uint64_t body_sent;
	struct seg segs[NSEG];
	size_t n_seg;
	bool in_body;
	char why[ORCH_EGRESS_MAX_REASON + 1];
};

static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "TLS failed";
}

void egress_icpt_free(struct hconn *c)
{
	struct icpt *ic = c->icpt;

	if (!ic)
		return;
	SSL_free(ic->srv); /* frees its BIOs */
	SSL_free(ic->cli);
	egress_body_free(ic->body);
	free(ic->pt);
	free(ic);
	c->icpt = NULL;
	ERR_clear_error();
}

int egress_icpt_new(struct hconn *c, int entry)
{
	struct egress_host *h = c->s->h;
	struct icpt *ic = calloc(1, sizeof(*ic));

	if (!ic)
		return -ENOMEM;
	c->icpt = ic;
	ic->entry = entry;
	if (!(ic->pt = malloc(PT_CAP)) || egress_body_new(&ic->body) < 0)
		return -ENOMEM;
	ic->srv = SSL_new(egress_tls_server_ctx(h->tls, entry));
	ic->rbio = BIO_new(BIO_s_mem());
	ic->wbio = BIO_new(BIO_s_mem());
	if (!ic->srv || !ic->rbio || !ic->wbio) {
		BIO_free(ic->rbio);
		BIO_free(ic->wbio);
		return -ENOMEM;
	}
	BIO_set_mem_eof_return(ic->rbio, -1);
	SSL_set_bio(ic->srv, ic->rbio, ic->wbio);
	SSL_set_accept_state(ic->srv);
	ic->cli = SSL_new(egress_tls_client_ctx(h->tls));
	if (!ic->cli || SSL_set_tlsext_host_name(ic->cli, c->host) != 1 ||
	    SSL_set1_host(ic->cli, c->host) != 1)
		return -ENOMEM;
	SSL_set_mode(ic->cli, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_set_connect_state(ic->cli);
	return 0;
}

/* ---- requests ---- */

static int pt_put(struct icpt *ic, const void *p, size_t n)
{
	if (ic->pt_off && ic->pt_off == ic->pt_len)
		ic->pt_off = ic->pt_len = ic->pt_commit = 0;
	if (n > PT_CAP - ic->pt_len && ic->pt_off) {
		memmove(ic->pt, ic->pt + ic->pt_off, ic->pt_len - ic->pt_off);
		ic->pt_len -= ic->pt_off;
		ic->pt_commit -= ic->pt_off;
		ic->pt_off = 0;
	}
	if (n > PT_CAP - ic->pt_len)
		return -ENOBUFS;
	memcpy(ic->pt + ic->pt_len, p, n);
	ic->pt_len += n;
	ic->pt_abs += n;
	return 0;
}

static int pt_putf(struct icpt *ic, const char *a, const char *b, const char *c2)
{
	int r = pt_put(ic, a, strlen(a));
	if (r >= 0 && b)
		r = pt_put(ic, b, strlen(b));
	if (r >= 0 && c2)
		r = pt_put(ic, c2, strlen(c2));
	return r;
}

static const char *dlp_match(struct hconn *c, const uint8_t *p, size_t n)
{
	return egress_dlp_match(c->s->h->dlp, p, n);
}

/* The n body bytes just put in pt. Pieces are kept about SEG_GAP body bytes apart (many
 * small chunks); dropping one is never wrong: fewer bytes leave early. */
static void seg_add(struct icpt *ic, size_t n)
{
	struct seg *l = ic->n_seg ? &ic->segs[ic->n_seg - 1] : NULL;
	struct seg g = {ic->pt_abs, ic->body_sent, n};

	if (l && l->abs_end + n == ic->pt_abs) { /* no framing between */
		l->abs_end += n;
		l->body_end += n;
		l->len += n;
		return;
	}
	if (ic->n_seg >= 2 && ic->body_sent - ic->segs[ic->n_seg - 2].body_end < SEG_GAP) {
		*l = g;
		return;
	}
	if (ic->n_seg == NSEG) { /* coarser: keep every other one */
		for (size_t i = 0; i < NSEG / 2; i++)
			ic->segs[i] = ic->segs[2 * i];
		ic->n_seg = NSEG / 2;
	}
	ic->segs[ic->n_seg++] = g;
}

/* The body's first `safe` bytes (and the framing among them) may leave. */
static void commit_body(struct icpt *ic, uint64_t safe)
{
	uint64_t base = ic->pt_abs - ic->pt_len, to = 0;
	size_t i = 0;

	for (; i < ic->n_seg; i++) {
		const struct seg *g = &ic->segs[i];
		if (safe >= g->body_end) {
			to = g->abs_end;
			continue;
		}
		if (safe > g->body_end - g->len)
			to = g->abs_end - (g->body_end - safe);
		break;
	}
	memmove(ic->segs, ic->segs + i, (ic->n_seg - i) * sizeof(*ic->segs));
	ic->n_seg -= i;
	if (to > base && to - base > ic->pt_commit)
		ic->pt_commit = (size_t)(to - base);
}

__attribute__((format(printf, 2, 3))) static int refuse(struct hconn *c, const char *fmt, ...)
{
	struct icpt *ic = c->icpt;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ic->why, sizeof(ic->why), fmt, ap);
	va_end(ap);
	for (char *q = ic->why; *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
			*q = '?';
	ic->refused = true;
	return -EACCES;
}

static int on_req(void *data, enum orch_http_ev ev, const struct orch_http_head *hd,
		  const uint8_t *p, size_t n)
{
	struct hconn *c = data;
	struct icpt *ic = c->icpt;
	const struct egress_inject *in = &c->s->h->cfg->injects[ic->entry];
	enum egress_coding coding = EGRESS_CODING_IDENTITY;
	struct orch_error e = {0};
	const char *hit;
	char line[ORCH_EGRESS_MAX_HEADER_LEN + 300];
	int r;

	switch (ev) {
	case ORCH_HTTP_EV_HEAD: {
		const char *host = orch_http_header_get(hd, "host");
		char want[300];
		snprintf(want, sizeof(want), "%s:%u", c->host, c->port);
		if (host && strcasecmp(host, c->host) != 0 && strcasecmp(host, want) != 0)
			return refuse(c, "the request's Host (%.200s) is not the intercepted host",
				      host);
		for (size_t i = 0; i < hd->n_headers; i++) {
			const char *nm = hd->headers[i].name, *v = hd->headers[i].value;
			if ((hit = dlp_match(c, (const uint8_t *)nm, strlen(nm))) ||
			    (hit = dlp_match(c, (const uint8_t *)v, strlen(v))))
				return refuse(c, "DLP: a request header holds %.200s", hit);
		}
		if ((hit = dlp_match(c, (const uint8_t *)hd->target, strlen(hd->target))))
			return refuse(c, "DLP: the request target holds %.200s", hit);
		/* a body follows (the parser's state says so while it reports the head) */
		if (ic->reqs.state != ORCH_HTTP_RS_HEAD && egress_dlp_coding(hd, &coding, &e) < 0)
			return refuse(c, "%s", e.msg);
		egress_body_start(ic->body, c->s->h->dlp, coding, &egress_body_limits_default);
		ic->body_sent = 0;
		ic->n_seg = 0;
		snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\n", hd->method, hd->target);
		if ((r = pt_putf(ic, line, NULL, NULL)) < 0)
			return r;
		if (!host && (r = pt_putf(ic, "Host: ", c->host, "\r\n")) < 0)
			return r;
		for (size_t i = 0; i < hd->n_headers; i++) {
			const char *nm = hd->headers[i].name;
			if (!strcasecmp(nm, in->header) || !strncasecmp(nm, "proxy-", 6))
				continue;
			if ((r = pt_putf(ic, nm, ": ", hd->headers[i].value)) < 0 ||
			    (r = pt_putf(ic, "\r\n", NULL, NULL)) < 0)
				return r;
		}
		if ((r = pt_putf(ic, in->header, ": ",
				 egress_tls_header_value(c->s->h->tls, ic->entry))) < 0 ||
		    (r = pt_putf(ic, "\r\n\r\n", NULL, NULL)) < 0)
			return r;
		ic->pt_commit = ic->pt_len; /* checked whole */
		ic->in_body = true;
		return 0;
	}
	case ORCH_HTTP_EV_BODY: {
		uint64_t safe;
		if ((r = egress_body_feed(ic->body, p, n, &safe, &e)) < 0)
			return r == -EACCES ? refuse(c, "%s", e.msg) : r;
		if ((r = pt_put(ic, p, n)) < 0)
			return r;
		ic->body_sent += n;
		seg_add(ic, n);
		commit_body(ic, safe);
		return 0;
	}
	case ORCH_HTTP_EV_RAW:
		return pt_put(ic, p, n);
	case ORCH_HTTP_EV_END:
		if (ic->in_body && (r = egress_body_end(ic->body, &e)) < 0)
			return r == -EACCES ? refuse(c, "%s", e.msg) : r;
		ic->pt_commit = ic->pt_len;
		ic->n_seg = 0;
		ic->in_body = false;
		return 0;
	}
	return 0;
}

/* ---- the pump ---- */

/* What the agent's session has for the agent, within its credit. */
static int flush_to_agent(struct hconn *c)
{
	struct icpt *ic = c->icpt;
	uint8_t *buf = c->s->rbuf;

	while (BIO_ctrl_pending(ic->wbio) > 0 && c->send_credit > 0) {
		size_t want =
			c->send_credit < sizeof(c->s->rbuf) ? c->send_credit : sizeof(c->s->rbuf);
		int n = BIO_read(ic->wbio, buf, (int)want);
		if (n <= 0)
			break;
		c->send_credit -= (size_t)n;
		c->bytes_down += n;
		if (egress_lane_queue(c->s, ORCH_EGRESS_DATA, c->id, buf, (size_t)n) < 0)
			return -EPIPE;
	}
	return 0;
}

/* A refusal inside the agent's session, then the end. */
static void deny_inside(struct hconn *c)
{
	struct icpt *ic = c->icpt;
	char resp[800];
	int n = snprintf(
		resp, sizeof(resp),
		"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
		"X-Orch-Egress: refused\r\nContent-Length: %zu\r\n\r\norch egress: %s\n",
		strlen(ic->why) + 14, ic->why);
	if (ic->srv_done && n > 0) {
		(void)SSL_write(ic->srv, resp, n);
		(void)SSL_shutdown(ic->srv);
		(void)flush_to_agent(c);
	}
	c->allowed = false;
	reasonf(c->reason, sizeof(c->reason), "%s", ic->why);
	orch_log(ORCH_LOG_WARN, "egress", "intercepted request refused", "vm", c->s->vm, "host",
		 c->host, "reason", ic->why, NULL);
	egress_hconn_end(c, true);
}

static void fail(struct hconn *c, const char *what)
{
	reasonf(c->reason, sizeof(c->reason), "%s: %s", what, ssl_reason());
	egress_hconn_end(c, true);
}

/* Moves everything that can move; ends the connection when it is over. */
void egress_icpt_pump(struct hconn *c)
{
	struct icpt *ic = c->icpt;
	struct orch_error err = {0};
	uint8_t buf[REC];
	int n, e, rounds = 0;
	size_t pending;

again:;
	uint64_t abs0 = ic->pt_abs;
	size_t up0 = c->up_len;
	/* the agent's bytes (from the ring) into its session */
	while (c->up_len > 0 && ic->pt_len - ic->pt_off < PT_HIGH &&
	       (pending = BIO_ctrl_pending(ic->rbio)) < RBIO_MAX) {
		size_t first = c->up_len;
		if (c->up_start + first > ORCH_EGRESS_WINDOW_UP)
			first = ORCH_EGRESS_WINDOW_UP - c->up_start;
		if (first > RBIO_MAX - pending)
			first = RBIO_MAX - pending;
		n = BIO_write(ic->rbio, c->up + c->up_start, (int)first);
		if (n <= 0)
			break;
		c->up_start = (c->up_start + (size_t)n) % ORCH_EGRESS_WINDOW_UP;
		c->up_len -= (size_t)n;
		c->owed += (size_t)n;
	}
	if (c->up_len == 0)
		c->up_start = 0;
	if (c->owed >= HCONN_CREDIT_BATCH || (c->owed && c->up_len == 0)) {
		uint8_t p[4] = {(uint8_t)(c->owed >> 24), (uint8_t)(c->owed >> 16),
				(uint8_t)(c->owed >> 8), (uint8_t)c->owed};
		(void)egress_lane_queue(c->s, ORCH_EGRESS_CREDIT, c->id, p, sizeof(p));
		c->owed = 0;
	}
	if (c->guest_eof && c->up_len == 0)
		BIO_set_mem_eof_return(ic->rbio, 0);

	if (!ic->srv_done) {
		n = SSL_do_handshake(ic->srv);
		if (n == 1)
			ic->srv_done = true;
		else if ((e = SSL_get_error(ic->srv, n)) != SSL_ERROR_WANT_READ &&
			 e != SSL_ERROR_WANT_WRITE) {
			(void)flush_to_agent(c);
			fail(c, "the agent's TLS handshake failed");
			return;
		}
	}
	/* the agent's requests, checked and rewritten */
	while (ic->srv_done && !ic->agent_closed && ic->pt_len - ic->pt_off < PT_HIGH) {
		n = SSL_read(ic->srv, buf, sizeof(buf));
		if (n <= 0) {
			e = SSL_get_error(ic->srv, n);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				break;
			ic->agent_closed = true;
			break;
		}
		if (orch_http_reqs_feed(&ic->reqs, buf, (size_t)n, on_req, c, &err) < 0) {
			if (!ic->refused)
				refuse(c, "%s",
				       err.msg[0] ? err.msg : "the request cannot be relayed");
			deny_inside(c);
			return;
		}
	}
	/* the real host */
	if (c->state == HCONN_OPEN && !ic->cli_done) {
		if (!SSL_get_fd(ic->cli) || SSL_get_fd(ic->cli) != c->fd)
			SSL_set_fd(ic->cli, c->fd);
		n = SSL_do_handshake(ic->cli);
		if (n == 1)
			ic->cli_done = true;
		else if ((e = SSL_get_error(ic->cli, n)) != SSL_ERROR_WANT_READ &&
			 e != SSL_ERROR_WANT_WRITE) {
			long v = SSL_get_verify_result(ic->cli);
			if (v != X509_V_OK) {
				reasonf(c->reason, sizeof(c->reason),
					"%s:%u's certificate did not verify: %s", c->host, c->port,
					X509_verify_cert_error_string(v));
				egress_hconn_end(c, true);
			} else
				fail(c, "TLS to the real host failed");
			return;
		}
	}
	if (ic->cli_done) {
		while (ic->pt_off < ic->pt_commit) {
			n = SSL_write(ic->cli, ic->pt + ic->pt_off,
				      (int)(ic->pt_commit - ic->pt_off));
			if (n <= 0) {
				e = SSL_get_error(ic->cli, n);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				fail(c, "writing to the real host failed");
				return;
			}
			ic->pt_off += (size_t)n;
		}
		/* all that was decrypted went out and more waits: decrypt on, as long as
		 * that makes progress (a partial record waits for the agent's next bytes) */
		if (ic->pt_off == ic->pt_commit && !ic->agent_closed && !ic->refused &&
		    (c->up_len > 0 || BIO_ctrl_pending(ic->rbio) > 0) &&
		    (ic->pt_abs != abs0 || c->up_len != up0) && ++rounds < 64)
			goto again;
		if (ic->agent_closed && ic->pt_off == ic->pt_len && !c->shut_wr) {
			(void)SSL_shutdown(ic->cli);
			(void)shutdown(c->fd, SHUT_WR);
			c->shut_wr = true;
		}
		/* answers: read only what the agent's credit can take once encrypted */
		while (!ic->host_closed &&
		       c->send_credit > REC + 1024 + BIO_ctrl_pending(ic->wbio)) {
			n = SSL_read(ic->cli, buf, sizeof(buf));
			if (n <= 0) {
				e = SSL_get_error(ic->cli, n);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					break;
				ic->host_closed = true;
				(void)SSL_shutdown(ic->srv);
				break;
			}
			if (SSL_write(ic->srv, buf, n) != n) {
				fail(c, "the agent's TLS session failed");
				return;
			}
			if (flush_to_agent(c) < 0) {
				egress_hconn_end(c, false);
				return;
			}
		}
	}
	if (flush_to_agent(c) < 0) {
		egress_hconn_end(c, false);
		return;
	}
	if (ic->host_closed && BIO_ctrl_pending(ic->wbio) == 0) {
		if (!c->up_eof) {
			c->up_eof = true;
			(void)egress_lane_queue(c->s, ORCH_EGRESS_EOF, c->id, NULL, 0);
		}
		if (ic->agent_closed || c->guest_eof) {
			egress_hconn_end(c, true);
			return;
		}
	}
	egress_hconn_events(c);
}

uint32_t egress_icpt_events(const struct hconn *c)
{
	const struct icpt *ic = c->icpt;
	uint32_t ev = 0;

	if (!ic->cli_done || SSL_want_read(ic->cli) ||
	    (!ic->host_closed && c->send_credit > REC + 1024 + BIO_ctrl_pending(ic->wbio)))
		ev |= EPOLLIN | EPOLLRDHUP;
	if (SSL_want_write(ic->cli) || (ic->cli_done && ic->pt_off < ic->pt_commit))
		ev |= EPOLLOUT;
	return ev;
}
