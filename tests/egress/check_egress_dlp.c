/* SPDX-License-Identifier: Apache-2.0 */
/* DLP on intercepted request bodies (host/egress/egress-dlp.c): content codings, a key
 * or pattern found wherever the pieces, the compressed stream or the inflated output
 * are cut, and no byte of it allowed to leave before; compression bombs, truncated,
 * corrupt and trailing data, gzip headers, preset dictionaries. Bodies are compressed
 * here with zlib. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check-run.h"
#include "egress-dlp.h"
#include "egress-http.h"

#define KEY "ghp-0123456789abcdefghijklmnopqrstuvwxyzAB"
#define OUT_CAP (8u * 1024 * 1024)

static const char *const keys[] = {KEY, NULL};
static char *patterns[] = {"leak-[0-9]{6}"};
static struct egress_dlp *dlp;

static void setup(void)
{
	struct orch_error err = {0};
	ck_assert_msg(egress_dlp_new(keys, patterns, 1, &dlp, &err) == 0, "%s", err.msg);
}

static void teardown(void)
{
	egress_dlp_free(dlp);
}

/* Pseudo-random hexadecimal text (compresses about 2:1), the same for a seed. */
static uint8_t *text(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	ck_assert_ptr_nonnull(p);
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t) "0123456789abcdef"[(seed >> 16) & 15];
		if (i % 64 == 63)
			p[i] = '\n';
	}
	return p;
}

/* wbits: 16 + 15 gzip, 15 zlib, -15 raw DEFLATE. */
static uint8_t *zip(const uint8_t *in, size_t n, int wbits, int level, size_t *ret_len)
{
	z_stream z = {0};

	ck_assert_int_eq(deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
	size_t cap = deflateBound(&z, (uLong)n) + 64;
	uint8_t *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	*ret_len = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

/* What an independent inflater makes of a prefix of a compressed body (bytes out). */
static size_t inflated_len(const uint8_t *in, size_t n, int wbits, uint8_t *out)
{
	z_stream z = {0};
	ck_assert_int_eq(inflateInit2(&z, wbits), Z_OK);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = OUT_CAP;
	(void)inflate(&z, Z_SYNC_FLUSH);
	size_t got = OUT_CAP - z.avail_out;
	inflateEnd(&z);
	return got;
}

struct run {
	int r;	       /* of the last call */
	uint64_t safe; /* the last safe count before a refusal */
	char msg[ORCH_ERROR_MSG_MAX];
};

/* Feeds data in pieces (cuts: ascending offsets, the last one len), then ends it. */
static struct run feed(enum egress_coding c, const uint8_t *data, size_t len, const size_t *cuts,
		       size_t n_cuts, const struct egress_body_limits *lim)
{
	struct egress_body *b;
	struct orch_error err = {0};
	struct run ru = {0};
	size_t at = 0;

	ck_assert_int_eq(egress_body_new(&b), 0);
	egress_body_start(b, dlp, c, lim ? lim : &egress_body_limits_default);
	for (size_t i = 0; i < n_cuts && ru.r == 0; i++) {
		uint64_t safe = 0;
		ck_assert(cuts[i] >= at && cuts[i] <= len);
		ru.r = egress_body_feed(b, data + at, cuts[i] - at, &safe, &err);
		if (ru.r == 0) {
			ck_assert(safe >= ru.safe && safe <= cuts[i]);
			ru.safe = safe;
		}
		at = cuts[i];
	}
	if (ru.r == 0)
		ru.r = egress_body_end(b, &err);
	snprintf(ru.msg, sizeof(ru.msg), "%s", err.msg);
	egress_body_free(b);
	return ru;
}

static struct run feed_two(enum egress_coding c, const uint8_t *d, size_t len, size_t cut)
{
	size_t cuts[2] = {cut, len};
	return feed(c, d, len, cuts, 2, NULL);
}

static struct run feed_steps(enum egress_coding c, const uint8_t *d, size_t len, size_t step)
{
	size_t n = (len + step - 1) / step, *cuts = calloc(n + 1, sizeof(*cuts));
	for (size_t i = 0; i < n; i++)
		cuts[i] = (i + 1) * step < len ? (i + 1) * step : len;
	struct run ru = feed(c, d, len, cuts, n, NULL);
	free(cuts);
	return ru;
}

static enum egress_coding coding_of(const char *headers, int *ret, char *msg)
{
	char buf[512];
	struct orch_http_head *h = malloc(sizeof(*h));
	struct orch_error err = {0};
	enum egress_coding c = EGRESS_CODING_IDENTITY;

	snprintf(buf, sizeof(buf), "POST /x HTTP/1.1\r\nHost: a.test\r\n%s\r\n", headers);
	ck_assert_int_eq(orch_http_origin_parse(buf, strlen(buf), h, &err), 0);
	*ret = egress_dlp_coding(h, &c, &err);
	snprintf(msg, ORCH_ERROR_MSG_MAX, "%s", err.msg);
	free(h);
	return c;
}

START_TEST(test_coding)
{
	static const struct {
		const char *headers;
		int r;
		enum egress_coding c;
		const char *msg;
	} cases[] = {
		{"", 0, EGRESS_CODING_IDENTITY, NULL},
		{"Content-Encoding: identity\r\n", 0, EGRESS_CODING_IDENTITY, NULL},
		{"Content-Encoding: gzip\r\n", 0, EGRESS_CODING_GZIP, NULL},
		{"content-encoding: GZip\r\n", 0, EGRESS_CODING_GZIP, NULL},
		{"Content-Encoding: x-gzip\r\n", 0, EGRESS_CODING_GZIP, NULL},
		{"Content-Encoding: deflate\r\n", 0, EGRESS_CODING_DEFLATE, NULL},
		{"Content-Encoding: identity, gzip\r\n", 0, EGRESS_CODING_GZIP, NULL},
		{"Content-Encoding: br\r\n", -EPROTO, 0, "Content-Encoding: br cannot be checked"},
		{"Content-Encoding: zstd\r\n", -EPROTO, 0, "Content-Encoding: zstd cannot"},
		{"Content-Encoding: compress\r\n", -EPROTO, 0, "Content-Encoding: compress cannot"},
		{"Content-Encoding: gzip, br\r\n", -EPROTO, 0, "Content-Encoding: br cannot"},
		{"Content-Encoding: gzip, deflate\r\n", -EPROTO, 0, "more than one content coding"},
		{"Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n", -EPROTO, 0,
		 "more than one content coding"},
	};
	char msg[ORCH_ERROR_MSG_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r;
		enum egress_coding c = coding_of(cases[i].headers, &r, msg);
		ck_assert_msg(r == cases[i].r, "%s: %d %s", cases[i].headers, r, msg);
		if (r == 0)
			ck_assert_int_eq(c, cases[i].c);
		else
			ck_assert_msg(strstr(msg, cases[i].msg), "%s: %s", cases[i].headers, msg);
	}
}
END_TEST

/* A key in an identity body at every split position: found, and before that no byte of
 * it may leave. */
START_TEST(test_identity_split)
{
	size_t len = 3000, pos = 1700, kl = strlen(KEY);
	uint8_t *d = text(len, 1);

	memcpy(d + pos, KEY, kl);
	for (size_t cut = 0; cut <= len; cut++) {
		struct run ru = feed_two(EGRESS_CODING_IDENTITY, d, len, cut);
		ck_assert_msg(ru.r == -EACCES, "split at %zu: not found", cut);
		ck_assert_str_eq(ru.msg, "DLP: the request body holds a configured key");
		ck_assert_msg(ru.safe <= pos, "split at %zu: %llu bytes left", cut,
			      (unsigned long long)ru.safe);
	}
	struct run ru = feed_steps(EGRESS_CODING_IDENTITY, d, len, 1);
	ck_assert_int_eq(ru.r, -EACCES);
	ck_assert(ru.safe <= pos);
	/* a pattern */
	memcpy(d + pos, "xxleak-123456xx", 15);
	for (size_t step = 1; step < 40; step++) {
		ru = feed_steps(EGRESS_CODING_IDENTITY, d, len, step);
		ck_assert_int_eq(ru.r, -EACCES);
		ck_assert_msg(strstr(ru.msg, "leak-[0-9]{6}"), "%s", ru.msg);
		ck_assert(ru.safe <= pos + 2);
	}
	/* a clean body passes, all of it */
	memset(d + pos, 'x', 15);
	ru = feed_steps(EGRESS_CODING_IDENTITY, d, len, 7);
	ck_assert_msg(ru.r == 0, "%s", ru.msg);
	free(d);
}
END_TEST

/* A key in a gzip body, the compressed stream split at every position: found, and the
 * compressed bytes allowed out before never inflate to any byte of it. */
static void split_everywhere(int wbits, enum egress_coding c, const char *how)
{
	size_t len = 20000, pos = 16384 - 20, kl = strlen(KEY), zlen;
	uint8_t *d = text(len, 2), *out = malloc(OUT_CAP);
	char want[200];

	memcpy(d + pos, KEY, kl);
	uint8_t *z = zip(d, len, wbits, 6, &zlen);
	snprintf(want, sizeof(want), "DLP: the request body (%s, inflated) holds a configured key",
		 how);
	for (size_t cut = 0; cut <= zlen; cut++) {
		struct run ru = feed_two(c, z, zlen, cut);
		ck_assert_msg(ru.r == -EACCES, "split at %zu: not found", cut);
		ck_assert_str_eq(ru.msg, want);
		size_t got = inflated_len(z, ru.safe, wbits, out);
		ck_assert_msg(got <= pos, "split at %zu: %zu bytes out, the key at %zu", cut, got,
			      pos);
	}
	for (size_t step = 1; step < 64; step += 5) {
		struct run ru = feed_steps(c, z, zlen, step);
		ck_assert_int_eq(ru.r, -EACCES);
		ck_assert(inflated_len(z, ru.safe, wbits, out) <= pos);
	}
	free(z);
	free(d);
	free(out);
}

START_TEST(test_gzip_split)
{
	split_everywhere(16 + 15, EGRESS_CODING_GZIP, "gzip");
}
END_TEST

START_TEST(test_deflate_split)
{
	split_everywhere(15, EGRESS_CODING_DEFLATE, "deflate");
	split_everywhere(-15, EGRESS_CODING_DEFLATE, "deflate");
}
END_TEST

/* The key at every offset around where the inflated output is cut into windows, in
 * highly compressible text (a long run before it), fed whole and in pieces. */
START_TEST(test_output_boundary)
{
	size_t len = 40000, kl = strlen(KEY), zlen;
	uint8_t *d = malloc(len), *out = malloc(OUT_CAP);

	for (size_t pos = 15000; pos < 19000; pos += 1) {
		memset(d, 'a', len);
		memcpy(d + pos, KEY, kl);
		uint8_t *z = zip(d, len, 16 + 15, 9, &zlen);
		struct run ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, pos % 2 ? zlen : 3);
		ck_assert_msg(ru.r == -EACCES, "key at %zu not found", pos);
		ck_assert(inflated_len(z, ru.safe, 16 + 15, out) <= pos);
		free(z);
	}
	/* the pattern too, and a clean body passes */
	memset(d, 'a', len);
	memcpy(d + 17400, "leak-654321", 11);
	uint8_t *z = zip(d, len, 16 + 15, 9, &zlen);
	struct run ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, 1);
	ck_assert_msg(strstr(ru.msg, "(gzip, inflated) holds leak-[0-9]{6}"), "%s", ru.msg);
	free(z);
	memset(d, 'a', len);
	z = zip(d, len, 16 + 15, 9, &zlen);
	ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, 1);
	ck_assert_msg(ru.r == 0, "%s", ru.msg);
	free(z);
	free(d);
	free(out);
}
END_TEST

/* A key after a long run (a few compressed bytes make kilobytes) and before random bytes
 * (which do not compress): the bytes held back as sent are no margin then; the inflated
 * ones must be. */
START_TEST(test_run_then_random)
{
	size_t len = 20000, kl = strlen(KEY), zlen;
	uint8_t *d = malloc(len), *out = malloc(OUT_CAP);
	unsigned seed = 1;

	for (size_t trial = 0; trial < 200; trial++) {
		size_t pos = 5000 + trial * 7;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			d[i] = i < pos ? 'a' : (uint8_t)(seed >> 16);
		}
		memcpy(d + pos, KEY, kl);
		uint8_t *z = zip(d, len, 16 + 15, (int)(trial % 10), &zlen);
		for (size_t step = 1; step < 600; step += 37) {
			struct run ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, step);
			ck_assert_int_eq(ru.r, -EACCES);
			size_t got = inflated_len(z, ru.safe, 16 + 15, out);
			ck_assert_msg(got <= pos,
				      "trial %zu step %zu: %zu bytes out, the key at %zu", trial,
				      step, got, pos);
		}
		free(z);
	}
	free(d);
	free(out);
}
END_TEST

START_TEST(test_bombs)
{
	size_t len = 8u * 1024 * 1024, zlen;
	uint8_t *d = calloc(1, len);
	uint8_t *z = zip(d, len, 16 + 15, 9, &zlen);

	struct run ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, 4096);
	ck_assert_int_eq(ru.r, -EACCES);
	ck_assert_msg(strstr(ru.msg, "inflates more than 100 times (a compression bomb)"), "%s",
		      ru.msg);
	free(z);
	/* 1 MiB of zeros, ratio about 1000: still under the floor */
	z = zip(d, 1000 * 1000, 16 + 15, 9, &zlen);
	ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, 100);
	ck_assert_msg(ru.r == 0, "%s", ru.msg);
	free(z);
	free(d);

	/* the size limit (made small here), with text that compresses 2:1 */
	struct egress_body_limits lim = {
		.inflate_max = 100000, .ratio = 100, .ratio_floor = 1 << 20};
	d = text(300000, 3);
	z = zip(d, 300000, 16 + 15, 6, &zlen);
	size_t cuts[1] = {zlen};
	ru = feed(EGRESS_CODING_GZIP, z, zlen, cuts, 1, &lim);
	ck_assert_int_eq(ru.r, -EACCES);
	ck_assert_msg(strstr(ru.msg, "inflates to more than 100000 bytes"), "%s", ru.msg);
	lim.inflate_max = 300000;
	ru = feed(EGRESS_CODING_GZIP, z, zlen, cuts, 1, &lim);
	ck_assert_msg(ru.r == 0, "%s", ru.msg);
	free(z);
	free(d);
}
END_TEST

START_TEST(test_truncated_corrupt)
{
	size_t len = 5000, zlen, kl = strlen(KEY);
	uint8_t *d = text(len, 4), *out = malloc(OUT_CAP);
	uint8_t *z = zip(d, len, 16 + 15, 6, &zlen);

	/* cut anywhere: refused at the end */
	for (size_t cut = 1; cut < zlen; cut++) {
		struct run ru = feed_steps(EGRESS_CODING_GZIP, z, cut, cut);
		ck_assert_msg(ru.r == -EACCES, "cut at %zu accepted", cut);
		ck_assert_msg(strstr(ru.msg, "the gzip request body ends inside its compressed "
					     "stream"),
			      "cut at %zu: %s", cut, ru.msg);
	}
	ck_assert_int_eq(feed_steps(EGRESS_CODING_GZIP, z, zlen, 99).r, 0);
	/* a bad magic, a bad checksum */
	z[0] ^= 0xff;
	struct run ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, zlen);
	ck_assert_msg(strstr(ru.msg, "the gzip request body is corrupt (zlib: incorrect header "
				     "check)"),
		      "%s", ru.msg);
	z[0] ^= 0xff;
	z[zlen - 6] ^= 1;
	ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, 50);
	ck_assert_msg(strstr(ru.msg, "corrupt (zlib: incorrect data check)"), "%s", ru.msg);
	z[zlen - 6] ^= 1;
	free(z);
	/* every byte flipped in a body holding the key: refused, or what passes holds no
	 * key when inflated */
	memcpy(d + 2000, KEY, kl);
	z = zip(d, len, 16 + 15, 6, &zlen);
	for (size_t i = 0; i < zlen; i++) {
		z[i] ^= 0x41;
		ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, 300);
		if (ru.r == 0) {
			size_t got = inflated_len(z, zlen, 16 + 15, out);
			ck_assert_msg(!memmem(out, got, KEY, kl), "byte %zu flipped: key passed",
				      i);
		}
		z[i] ^= 0x41;
	}
	free(z);
	/* bytes after the end of a deflate stream; a second gzip member with the key; junk
	 * after a gzip member */
	memset(d + 2000, 'x', kl);
	z = zip(d, len, 15, 6, &zlen);
	z = realloc(z, zlen + 10);
	memcpy(z + zlen, "trailing!!", 10);
	ru = feed_steps(EGRESS_CODING_DEFLATE, z, zlen + 10, 1000);
	ck_assert_msg(strstr(ru.msg, "bytes after the end of the deflate request body"), "%s",
		      ru.msg);
	free(z);
	size_t z1len, z2len;
	uint8_t *z1 = zip(d, len, 16 + 15, 6, &z1len);
	memcpy(d + 10, KEY, kl);
	uint8_t *z2 = zip(d, len, 16 + 15, 6, &z2len);
	z1 = realloc(z1, z1len + z2len);
	memcpy(z1 + z1len, z2, z2len);
	ru = feed_steps(EGRESS_CODING_GZIP, z1, z1len + z2len, 777);
	ck_assert_msg(strstr(ru.msg, "(gzip, inflated) holds a configured key"), "%s", ru.msg);
	memcpy(z1 + z1len, "junk after", 10);
	ru = feed_steps(EGRESS_CODING_GZIP, z1, z1len + 10, 777);
	ck_assert_msg(strstr(ru.msg, "the gzip request body is corrupt"), "%s", ru.msg);
	free(z1);
	free(z2);
	/* empty bodies; a deflate body of one byte */
	ck_assert_int_eq(feed_steps(EGRESS_CODING_GZIP, d, 0, 1).r, 0);
	ru = feed_steps(EGRESS_CODING_DEFLATE, (const uint8_t *)"x", 1, 1);
	ck_assert_msg(strstr(ru.msg, "ends inside its compressed stream"), "%s", ru.msg);
	free(d);
	free(out);
}
END_TEST

/* Bytes that are sent but never inflated: a gzip header's file name; a zlib stream that
 * needs a preset dictionary. */
START_TEST(test_headers_dictionary)
{
	size_t len = 3000;
	uint8_t *d = text(len, 5);
	z_stream z = {0};
	gz_header gh = {0};
	uint8_t buf[8192];

	ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	gh.name = (Bytef *)"name-" KEY;
	ck_assert_int_eq(deflateSetHeader(&z, &gh), Z_OK);
	z.next_in = d;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = sizeof(buf);
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t zlen = sizeof(buf) - z.avail_out;
	deflateEnd(&z);
	struct run ru = feed_steps(EGRESS_CODING_GZIP, buf, zlen, 5);
	ck_assert_str_eq(ru.msg, "DLP: the request body holds a configured key");
	ck_assert_int_eq(ru.safe, 0);

	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	ck_assert_int_eq(deflateSetDictionary(&z, (const Bytef *)"0123456789abcdef", 16), Z_OK);
	z.next_in = d;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = sizeof(buf);
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	zlen = sizeof(buf) - z.avail_out;
	deflateEnd(&z);
	ru = feed_steps(EGRESS_CODING_DEFLATE, buf, zlen, zlen);
	ck_assert_msg(strstr(ru.msg, "the deflate request body needs a preset dictionary"), "%s",
		      ru.msg);
	free(d);
}
END_TEST

/* git's requests: gzip bodies of "have" lines pass, in any pieces. */
START_TEST(test_clean_gzip)
{
	size_t len = 200000, zlen;
	uint8_t *d = text(len, 6);
	uint8_t *z = zip(d, len, 16 + 15, 6, &zlen);

	for (size_t step = 1; step < 20000; step = step * 3 + 1) {
		struct run ru = feed_steps(EGRESS_CODING_GZIP, z, zlen, step);
		ck_assert_msg(ru.r == 0, "step %zu: %s", step, ru.msg);
		/* bytes leave as the body streams, not only at its end */
		ck_assert_msg(ru.safe > zlen / 2, "step %zu: only %llu of %zu bytes left", step,
			      (unsigned long long)ru.safe, zlen);
	}
	free(z);
	free(d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("egress-dlp");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_coding);
	tcase_add_test(tc, test_identity_split);
	tcase_add_test(tc, test_gzip_split);
	tcase_add_test(tc, test_deflate_split);
	tcase_add_test(tc, test_output_boundary);
	tcase_add_test(tc, test_run_then_random);
	tcase_add_test(tc, test_bombs);
	tcase_add_test(tc, test_truncated_corrupt);
	tcase_add_test(tc, test_headers_dictionary);
	tcase_add_test(tc, test_clean_gzip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return orch_check_run(suite());
}
