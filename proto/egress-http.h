/* SPDX-License-Identifier: Apache-2.0 */
/* The two parsers of the egress path that read an agent's bytes: the head of a proxy
 * request (run in the slot's unprivileged egress helper in the guest) and the server
 * name of a TLS ClientHello (run in orchd, on the first bytes of a tunnel). Both take
 * a bounded buffer and never read past it; both have libFuzzer targets
 * (tests/fuzz/fuzz-egress-head.c, fuzz-egress-sni.c).
 *
 * The request parser accepts a strict subset of HTTP/1.1 (RFC 9112), what curl, git,
 * npm and pip send to a proxy: a request line "METHOD SP target SP HTTP/1.x" with a
 * CONNECT authority (host:port) or an absolute http:// URI, header lines
 * "name: value", CRLF line ends (a bare LF is accepted, as the RFC allows), no
 * obsolete line folding, no NUL, no bytes above 0x7e in the line or names. Anything
 * else is refused with a reason. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "egress.h"
#include "error.h"

#define ORCH_HTTP_MAX_LINE 8192	       /* request line */
#define ORCH_HTTP_MAX_HEAD (16 * 1024) /* request line and headers */

struct orch_http_header {
	const char *name; /* into the head's own copy, NUL-terminated */
	const char *value;
};

struct orch_http_head {
	enum orch_egress_kind kind;
	char method[ORCH_EGRESS_MAX_METHOD + 1];
	char host[ORCH_EGRESS_MAX_HOST + 1]; /* lower case; IPv6 without brackets */
	uint16_t port;
	char *target; /* HTTP: origin-form ("/path?q"), into target_buf */
	size_t n_headers;
	struct orch_http_header headers[ORCH_EGRESS_MAX_HEADERS];
	size_t head_len; /* bytes of the head in the input, the empty line included */
	char buf[ORCH_HTTP_MAX_HEAD + 1];
	char target_buf[ORCH_EGRESS_MAX_TARGET + 2];
};

/* The length of the head at the start of buf (the final empty line included), 0 while
 * it is incomplete, -E2BIG when ORCH_HTTP_MAX_HEAD bytes hold no end of head, -EPROTO
 * for a NUL or a request line longer than ORCH_HTTP_MAX_LINE. */
int orch_http_head_end(const char *buf, size_t len);
/* Parses a complete head (len as given by orch_http_head_end). Returns 0, or -EPROTO with
 * the reason (a one-line text fit for a 400 answer). */
int orch_http_head_parse(const char *buf, size_t len, struct orch_http_head *ret,
			 struct orch_error *err);
/* The same for an origin-form request ("GET /path HTTP/1.1"), as a client sends it
 * inside an intercepted TLS connection: kind HTTP, target set, host and port not. */
int orch_http_origin_parse(const char *buf, size_t len, struct orch_http_head *ret,
			   struct orch_error *err);
/* The first header of that name (case-insensitive), NULL when none. */
const char *orch_http_header_get(const struct orch_http_head *h, const char *name);
/* Hop-by-hop headers (RFC 9110 7.6.1) and the proxy's own, which are not forwarded:
 * Connection, Proxy-Connection, Keep-Alive, Proxy-Authorization, Proxy-Authenticate,
 * TE, Trailer, Upgrade, and Host (set from the target). Case-insensitive. */
bool orch_http_header_hop(const char *name);

/* The server name of a TLS ClientHello at the start of a tunnel's first bytes (one or
 * more handshake records, at most 64 KiB in all). Returns 1 with the name (lower case,
 * checked as a host name) in ret, 0 when the ClientHello has no server_name extension,
 * -EAGAIN while more bytes are needed, -EPROTO when the bytes are not a TLS ClientHello
 * or the name is malformed (err says why). */
int orch_tls_sni(const uint8_t *buf, size_t len, char ret[ORCH_EGRESS_MAX_HOST + 1],
		 struct orch_error *err);

/* A stream of origin-form requests on one connection (what orchd reads from an agent's
 * intercepted TLS): heads parsed as above, bodies framed by Content-Length or chunked
 * (anything else, both at once, conflicting lengths, or trailers are refused), reported
 * as events in order:
 *   HEAD (head set: the request's head, to be written anew by the caller; while it is
 *         reported, state is ORCH_HTTP_RS_HEAD when no body follows),
 *   BODY (p, n: body bytes as sent: the body's content coding, if any, is the
 *         caller's to undo),
 *   RAW  (p, n: chunk framing bytes, to be forwarded unchanged),
 *   END  (the request is complete; the next may follow).
 * A negative return of the callback stops feeding and is returned. */
enum orch_http_ev { ORCH_HTTP_EV_HEAD, ORCH_HTTP_EV_BODY, ORCH_HTTP_EV_RAW, ORCH_HTTP_EV_END };
enum orch_http_rs {
	ORCH_HTTP_RS_HEAD = 0,
	ORCH_HTTP_RS_BODY,
	ORCH_HTTP_RS_CHUNK_SIZE,
	ORCH_HTTP_RS_CHUNK_DATA,
	ORCH_HTTP_RS_CHUNK_END,
	ORCH_HTTP_RS_TRAILER,
};
struct orch_http_reqs {
	enum orch_http_rs state;
	uint64_t remaining;
	char hbuf[ORCH_HTTP_MAX_HEAD];
	size_t head_len;
	char line[256];
	size_t line_len;
	struct orch_http_head head;
};
typedef int (*orch_http_reqs_cb)(void *data, enum orch_http_ev ev,
				 const struct orch_http_head *head, const uint8_t *p, size_t n);
int orch_http_reqs_feed(struct orch_http_reqs *s, const uint8_t *p, size_t n, orch_http_reqs_cb cb,
			void *data, struct orch_error *err);
