/* SPDX-License-Identifier: Apache-2.0 */
/* DLP on intercepted requests: keys and patterns, content codings, bodies checked as they
 * stream, gzip and deflate inflated on the way (egress-dlp.h). */
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "egress-dlp.h"

#define CHUNK (16 * 1024) /* bytes checked at once, besides the EGRESS_DLP_KEEP before */
#define SCAN_CAP (EGRESS_DLP_KEEP + CHUNK)
#define SYMBOL 258 /* the most output one DEFLATE symbol makes */
#define NCK 64	   /* checkpoints (sent, inflated) kept */
#define CK_GAP 512 /* inflated bytes between two of them, at least */

struct egress_dlp {
	const char *const *keys; /* borrowed */
	char *const *patterns;	 /* borrowed */
	regex_t *re;
	size_t n_re;
};

int egress_dlp_new(const char *const *keys, char *const *patterns, size_t n_patterns,
		   struct egress_dlp **ret, struct orch_error *err)
{
	struct egress_dlp *d = calloc(1, sizeof(*d));

	if (!d || !(d->re = calloc(n_patterns + 1, sizeof(*d->re)))) {
		free(d);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	d->keys = keys;
	d->patterns = patterns;
	for (; d->n_re < n_patterns; d->n_re++)
		if (regcomp(&d->re[d->n_re], patterns[d->n_re], REG_EXTENDED | REG_NOSUB) != 0) {
			int r = orch_err(err, -EINVAL, "bad DLP pattern '%s'", patterns[d->n_re]);
			egress_dlp_free(d);
			return r;
		}
	*ret = d;
	return 0;
}

void egress_dlp_free(struct egress_dlp *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_re; i++)
		regfree(&d->re[i]);
	free(d->re);
	free(d);
}

const char *egress_dlp_match(const struct egress_dlp *d, const uint8_t *p, size_t n)
{
	for (size_t i = 0; d->keys && d->keys[i]; i++)
		if (d->keys[i][0] && memmem(p, n, d->keys[i], strlen(d->keys[i])))
			return "a configured key";
	for (size_t i = 0; i < d->n_re; i++) {
		regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)n};
		if (regexec(&d->re[i], (const char *)p, 1, &m, REG_STARTEND) == 0)
			return d->patterns[i];
	}
	return NULL;
}

/* ---- content codings ---- */

const char *egress_coding_name(enum egress_coding c)
{
	switch (c) {
	case EGRESS_CODING_IDENTITY:
		return "identity";
	case EGRESS_CODING_GZIP:
		return "gzip";
	case EGRESS_CODING_DEFLATE:
		return "deflate";
	}
	return "?";
}

int egress_dlp_coding(const struct orch_http_head *h, enum egress_coding *ret,
		      struct orch_error *err)
{
	enum egress_coding c = EGRESS_CODING_IDENTITY;
	size_t n = 0;

	for (size_t i = 0; i < h->n_headers; i++) {
		if (strcasecmp(h->headers[i].name, "content-encoding") != 0)
			continue;
		for (const char *t = h->headers[i].value; *t;) {
			size_t len;
			t += strspn(t, " \t,");
			len = strcspn(t, ",");
			while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t'))
				len--;
			if (len == 0)
				break;
			if (len == 8 && !strncasecmp(t, "identity", len)) {
				t += len;
				continue;
			}
			if ((len == 4 && !strncasecmp(t, "gzip", len)) ||
			    (len == 6 && !strncasecmp(t, "x-gzip", len)))
				c = EGRESS_CODING_GZIP;
			else if (len == 7 && !strncasecmp(t, "deflate", len))
				c = EGRESS_CODING_DEFLATE;
			else
				return orch_err(
					err, -EPROTO,
					"request bodies with Content-Encoding: %.*s cannot be "
					"checked (gzip and deflate can) and are not accepted "
					"for intercepted hosts",
					(int)(len < 40 ? len : 40), t);
			if (++n > 1)
				return orch_err(err, -EPROTO,
						"request bodies with more than one content coding "
						"cannot be checked and are not accepted for "
						"intercepted hosts");
			t += len;
		}
	}
	*ret = c;
	return 0;
}

/* ---- bodies ---- */

/* A window over a byte stream: the last EGRESS_DLP_KEEP checked bytes, then the
 * unchecked ones. */
struct scan {
	uint8_t buf[SCAN_CAP + 1]; /* and the NUL egress_dlp_match wants after them */
	size_t len, unchecked;
	uint64_t total; /* bytes put in all */
};

struct ckpt {
	uint64_t sent, out; /* after inflating `sent` bytes, `out` had come out */
};

struct egress_body {
	const struct egress_dlp *d;
	struct egress_body_limits lim;
	enum egress_coding coding;
	bool z_live, z_end, failed;
	z_stream z;
	uint8_t lead[2]; /* deflate: the first bytes, which tell zlib from raw DEFLATE */
	size_t n_lead;
	uint64_t consumed; /* sent bytes given to zlib */
	uint64_t safe;
	struct ckpt ck[NCK];
	size_t n_ck;
	struct scan wire, out;
};

const struct egress_body_limits egress_body_limits_default = {
	.inflate_max = EGRESS_DLP_INFLATE_MAX,
	.ratio = EGRESS_DLP_INFLATE_RATIO,
	.ratio_floor = EGRESS_DLP_RATIO_FLOOR,
};

int egress_body_new(struct egress_body **ret)
{
	struct egress_body *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	*ret = b;
	return 0;
}

static void z_stop(struct egress_body *b)
{
	if (b->z_live)
		inflateEnd(&b->z);
	b->z_live = false;
}

void egress_body_free(struct egress_body *b)
{
	if (!b)
		return;
	z_stop(b);
	free(b);
}

int egress_body_start(struct egress_body *b, const struct egress_dlp *d, enum egress_coding c,
		      const struct egress_body_limits *lim)
{
	z_stop(b);
	b->d = d;
	b->lim = *lim;
	b->coding = c;
	b->z_end = b->failed = false;
	b->n_lead = 0;
	b->consumed = b->safe = 0;
	b->n_ck = 0;
	b->wire.len = b->wire.unchecked = 0;
	b->wire.total = 0;
	b->out.len = b->out.unchecked = 0;
	b->out.total = 0;
	return 0;
}

__attribute__((format(printf, 3, 4))) static int refuse(struct egress_body *b,
							struct orch_error *err, const char *fmt,
							...)
{
	char why[ORCH_ERROR_MSG_MAX];
	va_list ap;

	b->failed = true;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return orch_err(err, -EACCES, "%s", why);
}

static int scan_check(struct egress_body *b, struct scan *s, struct orch_error *err)
{
	const char *hit;

	if (!s->unchecked)
		return 0;
	s->buf[s->len] = 0;
	if ((hit = egress_dlp_match(b->d, s->buf, s->len)))
		return refuse(b, err, "DLP: the request body%s holds %.200s",
			      s == &b->out
				      ? (b->coding == EGRESS_CODING_GZIP ? " (gzip, inflated)"
									 : " (deflate, inflated)")
				      : "",
			      hit);
	s->unchecked = 0;
	if (s->len > EGRESS_DLP_KEEP) {
		memmove(s->buf, s->buf + s->len - EGRESS_DLP_KEEP, EGRESS_DLP_KEEP);
		s->len = EGRESS_DLP_KEEP;
	}
	return 0;
}

static int scan_put(struct egress_body *b, struct scan *s, const uint8_t *p, size_t n,
		    struct orch_error *err)
{
	int r;

	while (n > 0) {
		size_t room = SCAN_CAP - s->len, take;
		if (room == 0) {
			if ((r = scan_check(b, s, err)) < 0)
				return r;
			room = SCAN_CAP - s->len;
		}
		take = n < room ? n : room;
		memcpy(s->buf + s->len, p, take);
		s->len += take;
		s->unchecked += take;
		s->total += take;
		p += take;
		n -= take;
	}
	return 0;
}

static void update_safe(struct egress_body *b);

/* A point of the stream: after inflating `sent` bytes, `out` had come out. Kept about
 * CK_GAP inflated bytes apart, so that the few needed span the bytes held back. Dropping
 * one is never wrong: fewer bytes leave early. */
static void ck_add(struct egress_body *b, uint64_t sent, uint64_t out)
{
	if (b->n_ck >= 2 && out - b->ck[b->n_ck - 2].out < CK_GAP) {
		b->ck[b->n_ck - 1] = (struct ckpt){sent, out};
		return;
	}
	if (b->n_ck == NCK)
		update_safe(b); /* drops those before the one safe now */
	if (b->n_ck == NCK) {	/* coarser: keep every other one */
		for (size_t i = 0; i < NCK / 2; i++)
			b->ck[i] = b->ck[2 * i];
		b->n_ck = NCK / 2;
	}
	b->ck[b->n_ck++] = (struct ckpt){sent, out};
}

static int z_start(struct egress_body *b, int window_bits, struct orch_error *err)
{
	memset(&b->z, 0, sizeof(b->z));
	if (inflateInit2(&b->z, window_bits) != Z_OK)
		return orch_err(err, -ENOMEM, "out of memory (zlib)");
	b->z_live = true;
	return 0;
}

static int inflate_some(struct egress_body *b, const uint8_t *p, size_t n, struct orch_error *err)
{
	const char *name = egress_coding_name(b->coding);
	struct scan *o = &b->out;
	int r;

	b->z.next_in = (Bytef *)p;
	b->z.avail_in = (uInt)n;
	while (b->z.avail_in > 0) {
		if (b->z_end) {
			if (b->coding != EGRESS_CODING_GZIP)
				return refuse(
					b, err,
					"DLP: bytes after the end of the deflate request body");
			if (inflateReset(&b->z) != Z_OK) /* the next gzip member */
				return refuse(b, err, "DLP: the gzip request body cannot be read");
			b->z_end = false;
		}
		if (o->len == SCAN_CAP && (r = scan_check(b, o, err)) < 0)
			return r;
		uInt in0 = b->z.avail_in, room = (uInt)(SCAN_CAP - o->len);
		b->z.next_out = o->buf + o->len;
		b->z.avail_out = room;
		int zr = inflate(&b->z, Z_NO_FLUSH);
		size_t used = in0 - b->z.avail_in, got = room - b->z.avail_out;
		b->consumed += used;
		o->len += got;
		o->unchecked += got;
		o->total += got;
		if ((int64_t)o->total > b->lim.inflate_max)
			return refuse(b, err,
				      "DLP: the %s request body inflates to more than %lld bytes "
				      "(the limit for checked bodies)",
				      name, (long long)b->lim.inflate_max);
		if ((int64_t)o->total > b->lim.ratio_floor &&
		    o->total > (uint64_t)b->lim.ratio * b->consumed)
			return refuse(b, err,
				      "DLP: the %s request body inflates more than %lld times "
				      "(a compression bomb)",
				      name, (long long)b->lim.ratio);
		ck_add(b, b->consumed, o->total);
		switch (zr) {
		case Z_OK:
			break;
		case Z_STREAM_END:
			b->z_end = true;
			break;
		case Z_NEED_DICT:
			return refuse(b, err,
				      "DLP: the %s request body needs a preset dictionary and "
				      "cannot be checked",
				      name);
		case Z_MEM_ERROR:
			b->failed = true;
			return orch_err(err, -ENOMEM, "out of memory (zlib)");
		default:
			return refuse(b, err, "DLP: the %s request body is corrupt (zlib: %.100s)",
				      name, b->z.msg ? b->z.msg : "no progress");
		}
		if (!used && !got && zr != Z_STREAM_END)
			return refuse(b, err, "DLP: the %s request body cannot be read", name);
	}
	return 0;
}

static int inflate_feed(struct egress_body *b, const uint8_t *p, size_t n, struct orch_error *err)
{
	int r;

	if (!b->z_live && b->coding == EGRESS_CODING_GZIP &&
	    (r = z_start(b, 16 + MAX_WBITS, err)) < 0)
		return r;
	if (!b->z_live) {
		/* "deflate" is the zlib format (RFC 9110); some clients send raw DEFLATE */
		while (n > 0 && b->n_lead < 2) {
			b->lead[b->n_lead++] = *p++;
			n--;
		}
		if (b->n_lead < 2)
			return 0;
		unsigned cmf = b->lead[0], flg = b->lead[1];
		bool zlib = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
		if ((r = z_start(b, zlib ? MAX_WBITS : -MAX_WBITS, err)) < 0 ||
		    (r = inflate_some(b, b->lead, 2, err)) < 0)
			return r;
	}
	return n ? inflate_some(b, p, n, err) : 0;
}

static void update_safe(struct egress_body *b)
{
	uint64_t wire_checked = b->wire.total - b->wire.unchecked;
	uint64_t ok = wire_checked > EGRESS_DLP_KEEP ? wire_checked - EGRESS_DLP_KEEP : 0;

	if (b->coding != EGRESS_CODING_IDENTITY) {
		uint64_t out_checked = b->out.total - b->out.unchecked, z_ok = b->safe;
		size_t i = 0, best = SIZE_MAX;
		for (; i < b->n_ck; i++) {
			if (b->ck[i].out + EGRESS_DLP_KEEP + 2 * SYMBOL > out_checked)
				break;
			best = i;
		}
		if (best != SIZE_MAX) {
			z_ok = b->ck[best].sent;
			memmove(b->ck, b->ck + best, (b->n_ck - best) * sizeof(*b->ck));
			b->n_ck -= best;
		}
		if (z_ok < ok)
			ok = z_ok;
	}
	if (ok > b->safe)
		b->safe = ok;
}

int egress_body_feed(struct egress_body *b, const uint8_t *p, size_t n, uint64_t *ret_safe,
		     struct orch_error *err)
{
	int r;

	if (b->failed)
		return orch_err(err, -EACCES, "DLP: the request body was refused");
	while (n > 0) {
		size_t take = n < CHUNK ? n : CHUNK;
		if ((r = scan_put(b, &b->wire, p, take, err)) < 0)
			return r;
		if (b->coding != EGRESS_CODING_IDENTITY && (r = inflate_feed(b, p, take, err)) < 0)
			return r;
		p += take;
		n -= take;
	}
	/* checks cost the bytes checked and the window before them: at least as many new
	 * bytes as that window, except when a window is full */
	if ((b->wire.unchecked >= EGRESS_DLP_KEEP && (r = scan_check(b, &b->wire, err)) < 0) ||
	    (b->out.unchecked >= EGRESS_DLP_KEEP && (r = scan_check(b, &b->out, err)) < 0))
		return r;
	update_safe(b);
	*ret_safe = b->safe;
	return 0;
}

int egress_body_end(struct egress_body *b, struct orch_error *err)
{
	int r;

	if (b->failed)
		return orch_err(err, -EACCES, "DLP: the request body was refused");
	if ((r = scan_check(b, &b->wire, err)) < 0 || (r = scan_check(b, &b->out, err)) < 0)
		return r;
	if (b->coding != EGRESS_CODING_IDENTITY && b->wire.total > 0 && !b->z_end)
		return refuse(b, err, "DLP: the %s request body ends inside its compressed stream",
			      egress_coding_name(b->coding));
	b->safe = b->wire.total;
	z_stop(b);
	return 0;
}
