/* SPDX-License-Identifier: Apache-2.0 */
/* The end of every Check unit test's main(). */
#pragma once

#include <stdbool.h>
#include <check.h>

struct orch_check_opts {
	bool no_fork;	   /* run the tests in this process (CK_NOFORK) */
	const char *tcase; /* run only this test case; NULL: all */
};

/* Runs the suite's tests (Check's normal report on stdout; CK_FORK and
 * CK_DEFAULT_TIMEOUT from the environment as usual) and frees it; EXIT_SUCCESS when all
 * passed, else EXIT_FAILURE. */
int orch_check_run(Suite *s);
int orch_check_run_opts(Suite *s, const struct orch_check_opts *o);
