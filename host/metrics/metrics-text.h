/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition format 0.0.4, written into a growing buffer: metric
 * families (# HELP, # TYPE), samples with labels (values escaped as the format asks:
 * backslash, double quote, newline), and fixed-bucket histograms. Pure: no I/O. A writer
 * that ran out of memory says so once at the end (mx_text_take returns NULL). */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mx_text {
	char *buf;
	size_t len, cap;
	int failed; /* -ENOMEM once an append failed */
};

/* The start of a family: its help text (one line) and type ("counter", "gauge",
 * "histogram"). name matches [a-zA-Z_:][a-zA-Z0-9_:]* (a programmer's constant). */
void mx_family(struct mx_text *t, const char *name, const char *type, const char *help);
/* One sample. labels: NULL, or "k1", "v1", "k2", "v2", ..., NULL (values any bytes). */
void mx_sample(struct mx_text *t, const char *name, const char *const *labels, double value);
/* Integers exactly (a double loses them past 2^53). */
void mx_sample_int(struct mx_text *t, const char *name, const char *const *labels, int64_t value);

/* Bucket upper bounds in seconds, shared by every orchd histogram: 1 ms .. 5 min. */
#define MX_BUCKETS 16
extern const double mx_bucket_bounds[MX_BUCKETS];

struct mx_histogram {
	uint64_t buckets[MX_BUCKETS]; /* not cumulative: counts of observations in each */
	uint64_t count;		      /* all observations, +Inf included */
	double sum;		      /* seconds */
};

void mx_observe(struct mx_histogram *h, double seconds);
/* Writes name_bucket{...,le=".."} (cumulative), name_sum and name_count. */
void mx_histogram(struct mx_text *t, const char *name, const char *const *labels,
		  const struct mx_histogram *h);

/* The text (NUL-terminated, caller frees), or NULL when memory ran out; t is emptied. */
char *mx_text_take(struct mx_text *t, size_t *ret_len);
void mx_text_done(struct mx_text *t);
