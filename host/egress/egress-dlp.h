/* SPDX-License-Identifier: Apache-2.0 */
/* DLP for the requests of intercepted hosts (docs/EGRESS.md, "Credential injection and
 * DLP"): the matcher (the configured keys, the dlp_patterns), the request's content
 * coding, and the checker of one request body as it streams, which inflates gzip and
 * deflate bodies (zlib) to check what they hold while the caller forwards the bytes as
 * they came.
 *
 * The checker says, after each piece, how many of the body's bytes so far may leave:
 * those whose content, and what follows it up to EGRESS_DLP_KEEP bytes further, has been
 * checked, so that a key or a match of EGRESS_DLP_KEEP bytes or less is found before any
 * byte of it leaves, wherever the pieces, the compressed blocks or the inflated output
 * are cut. For a compressed body that holds for the inflated bytes (a compressed prefix
 * leaves only when the output it determines, and the DEFLATE symbols it may have begun,
 * lie at least EGRESS_DLP_KEEP bytes before the end of the checked output) and for the
 * bytes as sent (a gzip header's name or comment, bytes after the stream), which are
 * checked too. A DEFLATE block header that leaves early tells which byte values its block
 * holds, not in which order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "egress-http.h"
#include "error.h"

#define EGRESS_DLP_KEEP 1024 /* the longest key or pattern match sure to be found */
/* Inflated bodies: at most this many bytes, and, past the first MiB, at most RATIO
 * inflated bytes for each byte sent (compression bombs). */
#define EGRESS_DLP_INFLATE_MAX (64LL * 1024 * 1024)
#define EGRESS_DLP_INFLATE_RATIO 100
#define EGRESS_DLP_RATIO_FLOOR (1024 * 1024)

struct egress_dlp;

/* keys: NULL-terminated (may be NULL); patterns: POSIX extended regular expressions. */
int egress_dlp_new(const char *const *keys, char *const *patterns, size_t n_patterns,
		   struct egress_dlp **ret, struct orch_error *err);
void egress_dlp_free(struct egress_dlp *d);
/* What p[0..n) holds: "a configured key", the pattern, or NULL. p[n] must be 0: the
 * patterns are matched with regexec and REG_STARTEND, which glibc honours, but callers
 * of regexec that ignore REG_STARTEND (the sanitizers' interceptors among them) read the
 * string up to its NUL. */
const char *egress_dlp_match(const struct egress_dlp *d, const uint8_t *p, size_t n);

enum egress_coding { EGRESS_CODING_IDENTITY = 0, EGRESS_CODING_GZIP, EGRESS_CODING_DEFLATE };

/* The content coding of a request head's body (every Content-Encoding header): identity,
 * gzip (also x-gzip) or deflate (zlib, or raw DEFLATE as some clients send it).
 * -EPROTO naming the coding for any other, or for codings applied on top of each other,
 * which could not be checked. */
int egress_dlp_coding(const struct orch_http_head *h, enum egress_coding *ret,
		      struct orch_error *err);
const char *egress_coding_name(enum egress_coding c);

struct egress_body_limits {
	int64_t inflate_max; /* inflated bytes */
	int64_t ratio;	     /* inflated per sent byte, past ratio_floor inflated bytes */
	int64_t ratio_floor;
};
extern const struct egress_body_limits egress_body_limits_default;

struct egress_body;

int egress_body_new(struct egress_body **ret);
void egress_body_free(struct egress_body *b);
/* A new body (the previous one, if any, is forgotten). */
int egress_body_start(struct egress_body *b, const struct egress_dlp *d, enum egress_coding c,
		      const struct egress_body_limits *lim);
/* Checks the next n bytes of the body, as sent. Returns 0 with *ret_safe the number of
 * the body's bytes (from its start, as sent) that may leave, or -EACCES with the reason in
 * err ("DLP: ..."): a key or pattern, a size or ratio past the limits, a corrupt or
 * unsupported stream. After an error the body is refused: feed no more. */
int egress_body_feed(struct egress_body *b, const uint8_t *p, size_t n, uint64_t *ret_safe,
		     struct orch_error *err);
/* The body is complete: everything is checked, and a compressed stream must have ended.
 * 0 (then all of it may leave) or -EACCES as above. */
int egress_body_end(struct egress_body *b, struct orch_error *err);
