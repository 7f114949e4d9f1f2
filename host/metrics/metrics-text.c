/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-text.h"

const double mx_bucket_bounds[MX_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
};

static void put(struct mx_text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		char *nb;

		while (cap < t->len + n + 1)
			cap *= 2;
		nb = realloc(t->buf, cap);
		if (!nb) {
			t->failed = -ENOMEM;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = 0;
}

static void puts_(struct mx_text *t, const char *s)
{
	put(t, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void putf(struct mx_text *t, const char *fmt, ...)
{
	char b[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(t, b, (size_t)n < sizeof(b) ? (size_t)n : sizeof(b) - 1);
}

/* HELP text escapes backslash and newline; label values also the double quote. */
static void escaped(struct mx_text *t, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(t, "\\\\");
		else if (*s == '\n')
			puts_(t, "\\n");
		else if (quote && *s == '"')
			puts_(t, "\\\"");
		else
			put(t, s, 1);
	}
}

void mx_family(struct mx_text *t, const char *name, const char *type, const char *help)
{
	puts_(t, "# HELP ");
	puts_(t, name);
	puts_(t, " ");
	escaped(t, help, 0);
	puts_(t, "\n# TYPE ");
	puts_(t, name);
	puts_(t, " ");
	puts_(t, type);
	puts_(t, "\n");
}

static void labels_(struct mx_text *t, const char *const *labels, const char *le)
{
	bool any = false;

	for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		puts_(t, any ? "," : "{");
		puts_(t, labels[i]);
		puts_(t, "=\"");
		escaped(t, labels[i + 1], 1);
		puts_(t, "\"");
		any = true;
	}
	if (le) {
		puts_(t, any ? "," : "{");
		puts_(t, "le=\"");
		puts_(t, le);
		puts_(t, "\"");
		any = true;
	}
	if (any)
		puts_(t, "}");
}

static void value(struct mx_text *t, double v)
{
	if (isnan(v))
		puts_(t, "NaN");
	else if (isinf(v))
		puts_(t, v > 0 ? "+Inf" : "-Inf");
	else {
		/* the shortest of %.15g and %.17g that reads back as v */
		char b[40];
		snprintf(b, sizeof(b), "%.15g", v);
		if (strtod(b, NULL) != v)
			snprintf(b, sizeof(b), "%.17g", v);
		puts_(t, b);
	}
}

void mx_sample(struct mx_text *t, const char *name, const char *const *labels, double v)
{
	puts_(t, name);
	labels_(t, labels, NULL);
	puts_(t, " ");
	value(t, v);
	puts_(t, "\n");
}

void mx_sample_int(struct mx_text *t, const char *name, const char *const *labels, int64_t v)
{
	puts_(t, name);
	labels_(t, labels, NULL);
	putf(t, " %lld\n", (long long)v);
}

void mx_observe(struct mx_histogram *h, double seconds)
{
	if (isnan(seconds) || seconds < 0)
		seconds = 0;
	for (size_t i = 0; i < MX_BUCKETS; i++)
		if (seconds <= mx_bucket_bounds[i]) {
			h->buckets[i]++;
			break;
		}
	h->count++;
	h->sum += seconds;
}

void mx_histogram(struct mx_text *t, const char *name, const char *const *labels,
		  const struct mx_histogram *h)
{
	char n[128], le[32];
	uint64_t cum = 0;

	snprintf(n, sizeof(n), "%s_bucket", name);
	for (size_t i = 0; i < MX_BUCKETS; i++) {
		cum += h->buckets[i];
		snprintf(le, sizeof(le), "%g", mx_bucket_bounds[i]);
		puts_(t, n);
		labels_(t, labels, le);
		putf(t, " %llu\n", (unsigned long long)cum);
	}
	puts_(t, n);
	labels_(t, labels, "+Inf");
	putf(t, " %llu\n", (unsigned long long)h->count);
	snprintf(n, sizeof(n), "%s_sum", name);
	mx_sample(t, n, labels, h->sum);
	snprintf(n, sizeof(n), "%s_count", name);
	puts_(t, n);
	labels_(t, labels, NULL);
	putf(t, " %llu\n", (unsigned long long)h->count);
}

char *mx_text_take(struct mx_text *t, size_t *ret_len)
{
	char *s = t->buf;
	int failed = t->failed;

	if (failed || !s) {
		mx_text_done(t);
		if (failed || !(s = strdup("")))
			return NULL;
		if (ret_len)
			*ret_len = 0;
		return s;
	}
	if (ret_len)
		*ret_len = t->len;
	*t = (struct mx_text){0};
	return s;
}

void mx_text_done(struct mx_text *t)
{
	free(t->buf);
	*t = (struct mx_text){0};
}
