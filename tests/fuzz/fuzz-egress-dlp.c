/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's DLP body checker (host/egress/egress-dlp.c) against arbitrary request bodies:
 * identity, gzip and deflate, fed in pieces of a size the input chooses. The first byte
 * picks the coding (bits 0-1) and whether the harness compresses the rest first (bit 2;
 * otherwise the bytes are the body as sent, mostly corrupt streams), the second the
 * piece size. Checked: a body whose content holds the key or the pattern is refused, and
 * before that no byte of it was allowed out; an accepted body inflates (independently) to
 * content holding neither; the safe count never shrinks nor passes what was fed. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "egress-dlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY "SECRET-0123456789"
static const char *const keys[] = {KEY, NULL};
static char *patterns[] = {"leak-[0-9]{6}"};

/* The first offset where p[0..n) holds the key or the pattern, n if none. */
static size_t first_hit(const struct egress_dlp *d, const uint8_t *p, size_t n)
{
	uint8_t *t = malloc(n + 1); /* egress_dlp_match wants a NUL after the bytes */
	size_t lo = 0, hi = n;	    /* the shortest prefix that matches ends at hi */

	if (!t)
		abort();
	memcpy(t, p, n);
	t[n] = 0;
	if (!egress_dlp_match(d, t, n)) {
		free(t);
		return n;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint8_t save = t[mid];
		t[mid] = 0;
		if (egress_dlp_match(d, t, mid))
			hi = mid;
		else
			lo = mid + 1;
		t[mid] = save;
	}
	free(t);
	return hi >= 17 ? hi - 17 : 0; /* where a match ending there may start */
}

/* What a receiver inflates from p[0..n) (every gzip member), at most cap bytes. */
static size_t decode(enum egress_coding c, const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
	z_stream z = {0};
	int wbits = 16 + MAX_WBITS;

	if (c == EGRESS_CODING_IDENTITY) {
		size_t k = n < cap ? n : cap;
		memcpy(out, p, k);
		return k;
	}
	if (c == EGRESS_CODING_DEFLATE) {
		if (n < 2)
			return 0;
		bool zl = (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((p[0] << 8) | p[1]) % 31 == 0;
		wbits = zl ? MAX_WBITS : -MAX_WBITS;
	}
	if (inflateInit2(&z, wbits) != Z_OK)
		abort();
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	for (;;) {
		int r = inflate(&z, Z_SYNC_FLUSH);
		if (r == Z_STREAM_END && z.avail_in > 0 && c == EGRESS_CODING_GZIP &&
		    inflateReset(&z) == Z_OK)
			continue;
		break;
	}
	size_t got = cap - z.avail_out;
	inflateEnd(&z);
	return got;
}

static uint8_t *zip(enum egress_coding c, const uint8_t *p, size_t n, size_t *ret_len)
{
	z_stream z = {0};
	int wbits = c == EGRESS_CODING_GZIP ? 16 + MAX_WBITS : MAX_WBITS;

	if (deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	size_t cap = deflateBound(&z, (uLong)n) + 16;
	uint8_t *out = malloc(cap);
	if (!out)
		abort();
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	*ret_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct egress_dlp *d;
	static struct egress_body *b;
	struct orch_error err = {0};

	if (!d && (egress_dlp_new(keys, patterns, 1, &d, &err) < 0 || egress_body_new(&b) < 0))
		abort();
	if (size < 2)
		return 0;
	enum egress_coding c = (enum egress_coding)(data[0] & 3);
	if (c > EGRESS_CODING_DEFLATE)
		c = EGRESS_CODING_DEFLATE;
	bool harness = data[0] & 4;
	size_t piece = 1 + data[1] * 4u;
	const uint8_t *plain = data + 2, *body = plain;
	size_t plain_len = size - 2, len = plain_len;
	uint8_t *zbody = NULL;
	if (harness && c != EGRESS_CODING_IDENTITY)
		body = zbody = zip(c, plain, plain_len, &len);

	egress_body_start(b, d, c, &egress_body_limits_default);
	uint64_t safe = 0;
	int r = 0;
	for (size_t at = 0; at < len && r == 0;) {
		size_t n = len - at < piece ? len - at : piece;
		uint64_t s = 0;
		r = egress_body_feed(b, body + at, n, &s, &err);
		at += n;
		if (r == 0) {
			if (s < safe || s > at)
				abort();
			safe = s;
		}
	}
	if (r == 0)
		r = egress_body_end(b, &err);
	if (r < 0 && r != -EACCES)
		abort();

	/* what a receiver makes of everything, and of what was allowed out */
	size_t cap = 2 * 1024 * 1024 + 100 * len, got, got_safe;
	uint8_t *out = malloc(cap);
	if (!out)
		abort();
	got = decode(c, body, len, out, cap);
	size_t hit = first_hit(d, out, got), wire_hit = first_hit(d, body, len);
	if (r == 0 && (hit < got || wire_hit < len))
		abort(); /* a key or pattern was accepted */
	if (r < 0) {
		got_safe = decode(c, body, (size_t)safe, out, cap);
		if (hit < got && got_safe > hit)
			abort(); /* bytes of a match left before it was found */
		if (wire_hit < len && safe > wire_hit)
			abort();
	}
	free(out);
	free(zbody);
	return 0;
}
