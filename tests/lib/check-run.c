/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "check-run.h"
#include "check-run.h"

int orch_check_run_opts(Suite *s, const struct orch_check_opts *o)
{
	SRunner *sr = srunner_create(s);
	if (o && o->no_fork)
		srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run(sr, NULL, o ? o->tcase : NULL, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int orch_check_run(Suite *s)
{
	return orch_check_run_opts(s, NULL);
}
