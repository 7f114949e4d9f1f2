/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text writer: families, label escaping, integers past 2^53, histogram
 * buckets (cumulative, +Inf, sum and count), out-of-range observations. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "metrics-text.h"

static char *take(struct mx_text *t)
{
	char *s = mx_text_take(t, NULL);

	ck_assert_ptr_nonnull(s);
	return s;
}

START_TEST(test_family_and_samples)
{
	struct mx_text t = {0};
	const char *l[] = {"vm", "a\"b\\c\nd", "state", "ready", NULL};
	char *s;

	mx_family(&t, "orch_x", "gauge", "Help with a \\ and a\nnewline.");
	mx_sample(&t, "orch_x", NULL, 1.5);
	mx_sample(&t, "orch_x", l, NAN);
	mx_sample(&t, "orch_x", l, INFINITY);
	mx_sample_int(&t, "orch_x", NULL, 9007199254740993LL);
	s = take(&t);
	ck_assert_str_eq(s, "# HELP orch_x Help with a \\\\ and a\\nnewline.\n"
			    "# TYPE orch_x gauge\n"
			    "orch_x 1.5\n"
			    "orch_x{vm=\"a\\\"b\\\\c\\nd\",state=\"ready\"} NaN\n"
			    "orch_x{vm=\"a\\\"b\\\\c\\nd\",state=\"ready\"} +Inf\n"
			    "orch_x 9007199254740993\n");
	free(s);
}
END_TEST

START_TEST(test_histogram)
{
	struct mx_text t = {0};
	struct mx_histogram h = {0};
	const char *l[] = {"backend", "local", NULL};
	char *s;

	mx_observe(&h, 0.0005); /* first bucket */
	mx_observe(&h, 0.001);	/* le is inclusive */
	mx_observe(&h, 0.3);	/* 0.5 */
	mx_observe(&h, 1000);	/* +Inf only */
	mx_observe(&h, -1);	/* a clock step back counts as 0 */
	mx_observe(&h, NAN);
	ck_assert_uint_eq(h.count, 6);
	mx_histogram(&t, "orch_h", l, &h);
	s = take(&t);
	ck_assert_ptr_nonnull(strstr(s, "orch_h_bucket{backend=\"local\",le=\"0.001\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(s, "orch_h_bucket{backend=\"local\",le=\"0.25\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(s, "orch_h_bucket{backend=\"local\",le=\"0.5\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(s, "orch_h_bucket{backend=\"local\",le=\"300\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(s, "orch_h_bucket{backend=\"local\",le=\"+Inf\"} 6\n"));
	ck_assert_ptr_nonnull(strstr(s, "orch_h_sum{backend=\"local\"} 1000.3015\n"));
	ck_assert_ptr_nonnull(strstr(s, "orch_h_count{backend=\"local\"} 6\n"));
	free(s);
	/* without labels */
	mx_histogram(&t, "orch_h", NULL, &(struct mx_histogram){0});
	s = take(&t);
	ck_assert_ptr_nonnull(strstr(s, "orch_h_bucket{le=\"+Inf\"} 0\norch_h_sum 0\n"));
	free(s);
}
END_TEST

START_TEST(test_empty)
{
	struct mx_text t = {0};
	size_t len = 1;
	char *s = mx_text_take(&t, &len);

	ck_assert_str_eq(s, "");
	ck_assert_uint_eq(len, 0);
	free(s);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("metrics_text");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_family_and_samples);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_empty);
	suite_add_tcase(su, tc);
	return orch_check_run(su);
}
