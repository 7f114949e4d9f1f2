/* SPDX-License-Identifier: Apache-2.0 */
/* The egress lane (docs/PROTOCOL.md, "The egress lane"): the third channel between a
 * supervisor and orchd, carrying the agents' outbound HTTP(S) connections. Unlike the
 * control and LLM channels it is not NDJSON: a download of hundreds of MiB in base64
 * JSON would cost several times the bytes and the CPU, so each message is a binary frame
 *
 *     type u8 | flags u8 (0) | reserved u16 (0) | conn u32 | length u32 | payload
 *
 * (big-endian), many connections multiplexed by conn. Control payloads (open, verdict,
 * hello) are JSON objects checked as strictly as every other message (unknown members,
 * wrong types and out-of-range values refused, the member named); data payloads are the
 * raw bytes. Flow control is per connection and per direction: a sender may have at most
 * the window's bytes of data unacknowledged; the receiver returns credit as it hands the
 * bytes on, so one download can neither starve the others nor grow a buffer without
 * bound. Pure bytes -> structs: no I/O here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

#define ORCH_EGRESS_VERSION 1
#define ORCH_EGRESS_HDR_LEN 12
#define ORCH_EGRESS_MAX_PAYLOAD (256 * 1024) /* any frame */
/* Initial credit per connection: for the guest's data to orchd, which orchd buffers
 * (a hostile guest's hold on orchd's memory: this times its open connections), and for
 * orchd's data to the guest, which the supervisor buffers (larger: downloads move in
 * fewer, bigger frames, with fewer wake-ups on each end). */
#define ORCH_EGRESS_WINDOW_UP (256 * 1024)
#define ORCH_EGRESS_WINDOW_DOWN (1024 * 1024)
#define ORCH_EGRESS_MAX_CONNS 1024	    /* open connections per lane */
#define ORCH_EGRESS_MAX_CONN_ID 0x7fffffffu /* conn ids 1..this, chosen by the guest */
#define ORCH_EGRESS_MAX_HOST 253
#define ORCH_EGRESS_MAX_METHOD 16
#define ORCH_EGRESS_MAX_TARGET 8192 /* origin-form request target of plain HTTP */
#define ORCH_EGRESS_MAX_HEADERS 100
#define ORCH_EGRESS_MAX_HEADER_LEN 8192
#define ORCH_EGRESS_MAX_REASON 256
#define ORCH_EGRESS_MAX_CA (64 * 1024) /* PEM of the interception CA */

enum orch_egress_type {
	ORCH_EGRESS_OPEN = 1, /* guest -> host: a new connection (JSON, struct orch_egress_open) */
	ORCH_EGRESS_VERDICT = 2, /* host -> guest: allowed or refused (JSON) */
	ORCH_EGRESS_DATA = 3,	 /* both: bytes of the connection, 1..MAX_PAYLOAD */
	ORCH_EGRESS_CREDIT = 4,	 /* both: u32 bytes more the sender may send */
	ORCH_EGRESS_EOF = 5,	 /* both: the sender sends no more data (half close) */
	ORCH_EGRESS_CLOSE = 6,	 /* both: the connection is over; payload: a reason (text) */
	ORCH_EGRESS_HELLO = 7,	 /* host -> guest, conn 0, first frame: JSON */
};

struct orch_egress_hdr {
	uint8_t type;
	uint32_t conn;
	uint32_t len;
};

void orch_egress_hdr_put(uint8_t out[ORCH_EGRESS_HDR_LEN], uint8_t type, uint32_t conn,
			 uint32_t len);
/* Checks a header: known type, flags and reserved 0, length within the type's bounds,
 * conn 0 only for HELLO and 1..MAX_CONN_ID otherwise. -EPROTO with the reason. */
int orch_egress_hdr_get(const uint8_t in[ORCH_EGRESS_HDR_LEN], struct orch_egress_hdr *ret,
			struct orch_error *err);
const char *orch_egress_type_name(uint8_t type);

enum orch_egress_kind {
	ORCH_EGRESS_CONNECT = 1, /* a CONNECT tunnel: bytes both ways after the verdict */
	ORCH_EGRESS_HTTP = 2,	 /* one plain HTTP request (absolute-form), then its answer */
};

/* open: which slot asks (stamped by the supervisor, never the agent's word), for what.
 * Strings are borrowed from the parsed JSON. host is lower case, a DNS name or an IP
 * literal (IPv6 without brackets). For HTTP: method, target (origin-form, starting with
 * '/') and headers (a JSON array of [name, value] pairs, names HTTP tokens, values without
 * CR/LF/NUL, hop-by-hop ones already removed by the guest; checked again here). */
struct orch_egress_open {
	int64_t slot;
	const char *task; /* NULL: the supervisor knows of none */
	enum orch_egress_kind kind;
	const char *host;
	int64_t port; /* 1..65535 */
	const char *method;
	const char *target;
	json_t *headers; /* borrowed array, NULL for CONNECT */
};
int orch_egress_open_parse(const void *buf, size_t len, json_t **ret_root,
			   struct orch_egress_open *ret, struct orch_error *err);
/* Serialises (compact JSON); free() the result. */
char *orch_egress_open_build(const struct orch_egress_open *o, size_t *ret_len);

/* verdict: ok, or refused with an HTTP status (400..599) and a one-line reason. */
struct orch_egress_verdict {
	bool ok;
	int64_t status;	    /* refused: 403 policy, 502 cannot connect, 429 limit... */
	const char *reason; /* refused: printable ASCII, 1..MAX_REASON bytes */
};
int orch_egress_verdict_parse(const void *buf, size_t len, json_t **ret_root,
			      struct orch_egress_verdict *ret, struct orch_error *err);
char *orch_egress_verdict_build(const struct orch_egress_verdict *v, size_t *ret_len);

/* hello: the protocol version and, when orchd intercepts TLS for some hosts, the PEM of
 * its CA certificate (the certificate only: the key never leaves the host). */
struct orch_egress_hello {
	int64_t version;
	const char *ca_pem; /* NULL: none */
};
int orch_egress_hello_parse(const void *buf, size_t len, json_t **ret_root,
			    struct orch_egress_hello *ret, struct orch_error *err);
char *orch_egress_hello_build(const struct orch_egress_hello *h, size_t *ret_len);

/* A reason (CLOSE payload, verdict reason): 1..MAX_REASON printable ASCII bytes. */
bool orch_egress_reason_valid(const char *s, size_t len);
/* A host as the lane carries it: a lower-case DNS name (labels of [a-z0-9_-], 1..63 each,
 * 1..253 in all, not starting or ending with '-' or '.') or an IPv4/IPv6 literal. */
bool orch_egress_host_valid(const char *s);
/* An IP literal (IPv4 dotted quad or IPv6 without brackets). */
bool orch_egress_host_is_ip(const char *s);
/* An HTTP token (header name, method). */
bool orch_egress_token_valid(const char *s, size_t len);
/* A header value: no CR, LF, NUL, other controls than HTAB. */
bool orch_egress_value_valid(const char *s, size_t len);
