/* SPDX-License-Identifier: Apache-2.0 */
/* Proxy request heads and TLS server names (egress-http.h). */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "egress-http.h"

int orch_http_head_end(const char *buf, size_t len)
{
	size_t line_start = 0;
	bool first = true;

	for (size_t i = 0; i < len && i < ORCH_HTTP_MAX_HEAD; i++) {
		if (buf[i] == '\0')
			return -EPROTO;
		if (buf[i] != '\n')
			continue;
		size_t l = i - line_start; /* without the LF */
		if (l > 0 && buf[i - 1] == '\r')
			l--;
		if (first && l > ORCH_HTTP_MAX_LINE)
			return -EPROTO;
		if (l == 0 && !first)
			return (int)(i + 1);
		if (l == 0 && first) /* empty lines before the request line: refused */
			return -EPROTO;
		first = false;
		line_start = i + 1;
	}
	if (first && len - line_start > ORCH_HTTP_MAX_LINE)
		return -EPROTO;
	return len >= ORCH_HTTP_MAX_HEAD ? -E2BIG : 0;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* "host:port", "[v6]:port", or (default_port > 0) "host" alone. */
static int parse_authority(const char *a, size_t len, int default_port, struct orch_http_head *h,
			   struct orch_error *err)
{
	const char *host = a, *colon = NULL;
	size_t hlen;

	if (len == 0)
		return orch_err(err, -EPROTO, "no host in the request");
	if (memchr(a, '@', len))
		return orch_err(err, -EPROTO, "user information in the target is not accepted");
	if (a[0] == '[') {
		const char *close = memchr(a, ']', len);
		if (!close)
			return orch_err(err, -EPROTO, "unterminated IPv6 literal");
		host = a + 1;
		hlen = (size_t)(close - host);
		if ((size_t)(close - a) + 1 < len) {
			if (close[1] != ':')
				return orch_err(err, -EPROTO, "bad authority in the request");
			colon = close + 1;
		}
	} else {
		colon = memrchr(a, ':', len);
		hlen = colon ? (size_t)(colon - a) : len;
	}
	if (hlen == 0 || hlen > ORCH_EGRESS_MAX_HOST)
		return orch_err(err, -EPROTO, "bad host in the request");
	memcpy(h->host, host, hlen);
	h->host[hlen] = 0;
	lower(h->host);
	if (!orch_egress_host_valid(h->host) || (a[0] == '[') != (strchr(h->host, ':') != NULL))
		return orch_err(err, -EPROTO, "bad host in the request");
	if (!colon) {
		if (default_port <= 0)
			return orch_err(err, -EPROTO, "CONNECT needs host:port");
		h->port = (uint16_t)default_port;
		return 0;
	}
	const char *p = colon + 1, *end = a + len;
	long port = 0;
	if (p == end || end - p > 5)
		return orch_err(err, -EPROTO, "bad port in the request");
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return orch_err(err, -EPROTO, "bad port in the request");
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return orch_err(err, -EPROTO, "bad port in the request");
	h->port = (uint16_t)port;
	return 0;
}

static int parse_target(char *t, struct orch_http_head *h, struct orch_error *err)
{
	size_t len = strlen(t);
	int r;

	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return orch_err(err, -EPROTO, "control byte in the request target");
	if (!strcmp(h->method, "CONNECT")) {
		h->kind = ORCH_EGRESS_CONNECT;
		return parse_authority(t, len, 0, h, err);
	}
	h->kind = ORCH_EGRESS_HTTP;
	if (!strncasecmp(t, "https://", 8))
		return orch_err(err, -EPROTO, "https:// targets go through CONNECT");
	if (strncasecmp(t, "http://", 7) != 0)
		return orch_err(err, -EPROTO,
				"not a proxy request: the target must be http://host/... or "
				"CONNECT host:port");
	char *auth = t + 7, *path = auth + strcspn(auth, "/?#");
	if ((r = parse_authority(auth, (size_t)(path - auth), 80, h, err)) < 0)
		return r;
	if (strchr(path, '#'))
		return orch_err(err, -EPROTO, "a fragment in the request target");
	/* "http://host" and "http://host?q": origin-form needs the leading '/' */
	size_t plen = strlen(path);
	bool slash = *path != '/';
	if (plen + slash > ORCH_EGRESS_MAX_TARGET)
		return orch_err(err, -EPROTO, "request target too long");
	h->target_buf[0] = '/';
	memcpy(h->target_buf + slash, path, plen + 1);
	h->target = h->target_buf;
	return 0;
}

static int head_parse(const char *buf, size_t len, bool origin, struct orch_http_head *ret,
		      struct orch_error *err)
{
	struct orch_http_head *h = ret;
	char *line, *next, *sp1, *sp2;
	int r;

	if (len == 0 || len > ORCH_HTTP_MAX_HEAD)
		return orch_err(err, -EPROTO, "request head too large");
	memset(h, 0, offsetof(struct orch_http_head, buf));
	memcpy(h->buf, buf, len);
	h->buf[len] = 0;
	h->head_len = len;
	if (memchr(buf, '\0', len))
		return orch_err(err, -EPROTO, "NUL byte in the request head");

	line = h->buf;
	next = strchr(line, '\n');
	if (!next)
		return orch_err(err, -EPROTO, "incomplete request head");
	*next++ = 0;
	if (next - line >= 2 && next[-2] == '\r')
		next[-2] = 0;
	if (strlen(line) > ORCH_HTTP_MAX_LINE)
		return orch_err(err, -EPROTO, "request line too long");
	sp1 = strchr(line, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2 || strchr(sp2 + 1, ' '))
		return orch_err(err, -EPROTO, "malformed request line");
	*sp1 = *sp2 = 0;
	if ((size_t)(sp1 - line) > ORCH_EGRESS_MAX_METHOD ||
	    !orch_egress_token_valid(line, (size_t)(sp1 - line)))
		return orch_err(err, -EPROTO, "bad method");
	memcpy(h->method, line, (size_t)(sp1 - line) + 1);
	if (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)
		return orch_err(err, -EPROTO, "only HTTP/1.0 and HTTP/1.1 are spoken here");
	if (!origin && (r = parse_target(sp1 + 1, h, err)) < 0)
		return r;
	if (origin) {
		const char *t = sp1 + 1;
		size_t tl = strlen(t);
		if ((t[0] != '/' && strcmp(t, "*") != 0) || tl > ORCH_EGRESS_MAX_TARGET)
			return orch_err(err, -EPROTO, "expected an origin-form request target");
		for (size_t i = 0; i < tl; i++)
			if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
				return orch_err(err, -EPROTO, "control byte in the request target");
		memcpy(h->target_buf, t, tl + 1);
		h->target = h->target_buf;
		h->kind = ORCH_EGRESS_HTTP;
	}

	for (line = next; *line; line = next) {
		char *colon, *v, *end;
		next = strchr(line, '\n');
		if (!next)
			return orch_err(err, -EPROTO, "incomplete request head");
		*next++ = 0;
		end = next - 1;
		if (end > line && end[-1] == '\r')
			*--end = 0;
		if (line == end) /* the empty line: the end */
			break;
		if (*line == ' ' || *line == '\t')
			return orch_err(err, -EPROTO, "folded header lines are not accepted");
		if (h->n_headers >= ORCH_EGRESS_MAX_HEADERS)
			return orch_err(err, -EPROTO, "too many headers (at most %d)",
					ORCH_EGRESS_MAX_HEADERS);
		colon = strchr(line, ':');
		if (!colon || colon == line || colon - line > 256 ||
		    !orch_egress_token_valid(line, (size_t)(colon - line)))
			return orch_err(err, -EPROTO, "malformed header line");
		*colon = 0;
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;
		if ((size_t)(end - v) > ORCH_EGRESS_MAX_HEADER_LEN ||
		    !orch_egress_value_valid(v, (size_t)(end - v)))
			return orch_err(err, -EPROTO, "bad header value");
		for (const char *p = v; p < end; p++)
			if ((unsigned char)*p >= 0x7f)
				return orch_err(err, -EPROTO, "non-ASCII header value");
		h->headers[h->n_headers++] = (struct orch_http_header){line, v};
	}
	return 0;
}

int orch_http_head_parse(const char *buf, size_t len, struct orch_http_head *ret,
			 struct orch_error *err)
{
	return head_parse(buf, len, false, ret, err);
}

int orch_http_origin_parse(const char *buf, size_t len, struct orch_http_head *ret,
			   struct orch_error *err)
{
	return head_parse(buf, len, true, ret, err);
}

const char *orch_http_header_get(const struct orch_http_head *h, const char *name)
{
	for (size_t i = 0; i < h->n_headers; i++)
		if (!strcasecmp(h->headers[i].name, name))
			return h->headers[i].value;
	return NULL;
}

/* ---- a stream of origin-form requests (an intercepted connection) ---- */

static int reqs_framing(struct orch_http_reqs *s, struct orch_error *err)
{
	const struct orch_http_head *h = &s->head;
	const char *te = NULL;
	bool have_cl = false;
	uint64_t cl = 0;

	for (size_t i = 0; i < h->n_headers; i++) {
		const char *n = h->headers[i].name, *v = h->headers[i].value;
		if (!strcasecmp(n, "transfer-encoding")) {
			if (te)
				return orch_err(err, -EPROTO, "two Transfer-Encoding headers");
			te = v;
		} else if (!strcasecmp(n, "content-length")) {
			uint64_t x = 0;
			if (!*v || strlen(v) > 18)
				return orch_err(err, -EPROTO, "bad Content-Length");
			for (const char *p = v; *p; p++) {
				if (*p < '0' || *p > '9')
					return orch_err(err, -EPROTO, "bad Content-Length");
				x = x * 10 + (uint64_t)(*p - '0');
			}
			if (have_cl && x != cl)
				return orch_err(err, -EPROTO, "conflicting Content-Length headers");
			have_cl = true;
			cl = x;
		}
	}
	if (te && have_cl)
		return orch_err(err, -EPROTO, "both Transfer-Encoding and Content-Length");
	if (te && strcasecmp(te, "chunked") != 0)
		return orch_err(err, -EPROTO, "only the chunked transfer coding is accepted");
	s->state = te ? ORCH_HTTP_RS_CHUNK_SIZE : cl ? ORCH_HTTP_RS_BODY : ORCH_HTTP_RS_HEAD;
	s->remaining = cl;
	return 0;
}

int orch_http_reqs_feed(struct orch_http_reqs *s, const uint8_t *p, size_t n, orch_http_reqs_cb cb,
			void *data, struct orch_error *err)
{
	int r;

	while (n > 0) {
		switch (s->state) {
		case ORCH_HTTP_RS_HEAD: {
			size_t take = ORCH_HTTP_MAX_HEAD - s->head_len < n
					      ? ORCH_HTTP_MAX_HEAD - s->head_len
					      : n;
			memcpy(s->hbuf + s->head_len, p, take);
			int end = orch_http_head_end(s->hbuf, s->head_len + take);
			if (end < 0)
				return orch_err(err, -EPROTO,
						"malformed or too large request head");
			if (end == 0) {
				s->head_len += take;
				p += take;
				n -= take;
				continue;
			}
			size_t used = (size_t)end - s->head_len;
			p += used;
			n -= used;
			s->head_len = 0;
			if ((r = orch_http_origin_parse(s->hbuf, (size_t)end, &s->head, err)) < 0 ||
			    (r = reqs_framing(s, err)) < 0)
				return r;
			if ((r = cb(data, ORCH_HTTP_EV_HEAD, &s->head, NULL, 0)) < 0)
				return r;
			if (s->state == ORCH_HTTP_RS_HEAD &&
			    (r = cb(data, ORCH_HTTP_EV_END, NULL, NULL, 0)) < 0)
				return r;
			continue;
		}
		case ORCH_HTTP_RS_BODY:
		case ORCH_HTTP_RS_CHUNK_DATA: {
			size_t take = s->remaining < n ? (size_t)s->remaining : n;
			if ((r = cb(data, ORCH_HTTP_EV_BODY, NULL, p, take)) < 0)
				return r;
			p += take;
			n -= take;
			s->remaining -= take;
			if (s->remaining == 0) {
				if (s->state == ORCH_HTTP_RS_BODY) {
					s->state = ORCH_HTTP_RS_HEAD;
					if ((r = cb(data, ORCH_HTTP_EV_END, NULL, NULL, 0)) < 0)
						return r;
				} else {
					s->state = ORCH_HTTP_RS_CHUNK_END;
					s->line_len = 0;
				}
			}
			continue;
		}
		case ORCH_HTTP_RS_CHUNK_SIZE:
		case ORCH_HTTP_RS_CHUNK_END:
		case ORCH_HTTP_RS_TRAILER: {
			/* a line: chunk size (with extensions), the CRLF after data, trailers */
			const uint8_t *lf = memchr(p, '\n', n);
			size_t take = lf ? (size_t)(lf - p) + 1 : n;
			if (s->line_len + take > sizeof(s->line) - 1)
				return orch_err(err, -EPROTO, "chunk line too long");
			memcpy(s->line + s->line_len, p, take);
			s->line_len += take;
			if ((r = cb(data, ORCH_HTTP_EV_RAW, NULL, p, take)) < 0)
				return r;
			p += take;
			n -= take;
			if (!lf)
				continue;
			s->line[s->line_len] = 0;
			size_t ll = s->line_len - 1;
			if (ll > 0 && s->line[ll - 1] == '\r')
				ll--;
			s->line[ll] = 0;
			s->line_len = 0;
			if (s->state == ORCH_HTTP_RS_CHUNK_END) {
				if (ll != 0)
					return orch_err(err, -EPROTO, "missing CRLF after a chunk");
				s->state = ORCH_HTTP_RS_CHUNK_SIZE;
			} else if (s->state == ORCH_HTTP_RS_TRAILER) {
				if (ll != 0)
					return orch_err(err, -EPROTO,
							"trailers are not accepted for intercepted "
							"hosts");
				s->state = ORCH_HTTP_RS_HEAD;
				if ((r = cb(data, ORCH_HTTP_EV_END, NULL, NULL, 0)) < 0)
					return r;
			} else {
				uint64_t size = 0;
				size_t i = 0;
				for (; i < ll && i < 15; i++) {
					char c = s->line[i];
					int d = c >= '0' && c <= '9'   ? c - '0'
						: c >= 'a' && c <= 'f' ? c - 'a' + 10
						: c >= 'A' && c <= 'F' ? c - 'A' + 10
								       : -1;
					if (d < 0)
						break;
					size = size * 16 + (uint64_t)d;
				}
				if (i == 0 || (i < ll && s->line[i] != ';' && s->line[i] != ' ' &&
					       s->line[i] != '\t'))
					return orch_err(err, -EPROTO, "bad chunk size");
				s->remaining = size;
				s->state = size ? ORCH_HTTP_RS_CHUNK_DATA : ORCH_HTTP_RS_TRAILER;
			}
			continue;
		}
		}
	}
	return 0;
}

bool orch_http_header_hop(const char *name)
{
	static const char *const hop[] = {"connection",
					  "proxy-connection",
					  "keep-alive",
					  "proxy-authorization",
					  "proxy-authenticate",
					  "te",
					  "trailer",
					  "upgrade",
					  "host",
					  NULL};
	for (size_t i = 0; hop[i]; i++)
		if (!strcasecmp(name, hop[i]))
			return true;
	return false;
}

/* ---- TLS ClientHello ---- */

#define SNI_MAX_INPUT (64 * 1024)

static uint32_t be(const uint8_t *p, size_t n)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Gathers the handshake bytes of the records at the start of buf into hs (at most cap):
 * returns the number gathered once the handshake message is complete, -EAGAIN for more,
 * -EPROTO. */
static int gather(const uint8_t *buf, size_t len, uint8_t *hs, size_t cap, struct orch_error *err)
{
	size_t off = 0, got = 0, need = 0;

	for (;;) {
		if (len - off < 5)
			return len >= SNI_MAX_INPUT
				       ? orch_err(err, -EPROTO, "ClientHello too large")
				       : -EAGAIN;
		if (buf[off] != 22)
			return orch_err(err, -EPROTO, "not a TLS handshake");
		if (buf[off + 1] != 3 || buf[off + 2] > 4)
			return orch_err(err, -EPROTO, "not a TLS record");
		size_t rl = be(buf + off + 3, 2);
		if (rl == 0 || rl > 16384)
			return orch_err(err, -EPROTO, "bad TLS record length");
		if (len - off - 5 < rl)
			return off + 5 + rl > SNI_MAX_INPUT
				       ? orch_err(err, -EPROTO, "ClientHello too large")
				       : -EAGAIN;
		if (got + rl > cap)
			return orch_err(err, -EPROTO, "ClientHello too large");
		memcpy(hs + got, buf + off + 5, rl);
		got += rl;
		off += 5 + rl;
		if (got >= 4) {
			if (hs[0] != 1)
				return orch_err(err, -EPROTO, "not a ClientHello");
			need = 4 + be(hs + 1, 3);
			if (need > cap)
				return orch_err(err, -EPROTO, "ClientHello too large");
			if (got >= need)
				return (int)need;
		}
	}
}

int orch_tls_sni(const uint8_t *buf, size_t len, char ret[ORCH_EGRESS_MAX_HOST + 1],
		 struct orch_error *err)
{
	static const size_t cap = SNI_MAX_INPUT;
	uint8_t *hs = malloc(cap);
	size_t n, p;
	int r;

	if (!hs)
		return orch_err(err, -ENOMEM, "out of memory");
	r = gather(buf, len, hs, cap, err);
	if (r < 0) {
		free(hs);
		return r;
	}
	n = (size_t)r;
	/* client_version(2) random(32) */
	p = 4 + 2 + 32;
#define NEED(k)                                                              \
	do {                                                                 \
		if (p + (k) > n) {                                           \
			r = orch_err(err, -EPROTO, "truncated ClientHello"); \
			goto out;                                            \
		}                                                            \
	} while (0)
	NEED(1);
	p += 1 + hs[p]; /* session_id */
	NEED(2);
	p += 2 + be(hs + p, 2); /* cipher_suites */
	NEED(1);
	p += 1 + hs[p]; /* compression_methods */
	if (p == n) {
		r = 0; /* no extensions */
		goto out;
	}
	NEED(2);
	size_t ext_end = p + 2 + be(hs + p, 2);
	p += 2;
	if (ext_end != n) {
		r = orch_err(err, -EPROTO, "bad ClientHello extensions length");
		goto out;
	}
	r = 0;
	while (p < ext_end) {
		NEED(4);
		uint32_t type = be(hs + p, 2), elen = be(hs + p + 2, 2);
		p += 4;
		NEED(elen);
		if (type != 0) {
			p += elen;
			continue;
		}
		if (r) {
			r = orch_err(err, -EPROTO, "two server_name extensions");
			goto out;
		}
		/* server_name_list: u16 length, then entries {u8 type, u16 len, name} */
		size_t q = p, end = p + elen;
		if (elen < 2 || be(hs + q, 2) != elen - 2) {
			r = orch_err(err, -EPROTO, "bad server_name extension");
			goto out;
		}
		q += 2;
		bool found = false;
		while (q < end) {
			if (end - q < 3) {
				r = orch_err(err, -EPROTO, "bad server_name extension");
				goto out;
			}
			uint8_t nt = hs[q];
			size_t nl = be(hs + q + 1, 2);
			q += 3;
			if (nl > end - q) {
				r = orch_err(err, -EPROTO, "bad server_name extension");
				goto out;
			}
			if (nt == 0) {
				if (found || nl == 0 || nl > ORCH_EGRESS_MAX_HOST) {
					r = orch_err(err, -EPROTO, "bad server name");
					goto out;
				}
				memcpy(ret, hs + q, nl);
				ret[nl] = 0;
				if (strlen(ret) != nl) {
					r = orch_err(err, -EPROTO, "NUL in the server name");
					goto out;
				}
				lower(ret);
				if (!orch_egress_host_valid(ret) || orch_egress_host_is_ip(ret)) {
					r = orch_err(err, -EPROTO, "bad server name");
					goto out;
				}
				found = true;
			}
			q += nl;
		}
		if (!found) {
			r = orch_err(err, -EPROTO, "server_name extension without a host name");
			goto out;
		}
		r = 1;
		p += elen;
	}
#undef NEED
out:
	free(hs);
	return r;
}
