/* SPDX-License-Identifier: Apache-2.0 */
/* orch cancel ID: cancels a queued task at once, a running one through its supervisor. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, int argc, char **argv)
{
	json_t *res = NULL;
	int64_t id;
	int r;

	r = cli_id_args(c, argc, argv,
			"Cancels a task: a queued one ends `cancelled` at once; a running one\n"
			"is signalled (SIGTERM, then SIGKILL after 2 s) and ends `cancelled`.\n"
			"Exit code 1 when the task already finished.\n",
			&id);
	if (r != CLI_GO_ON)
		return r;
	r = cli_call(c, "task.cancel", json_pack("{sI}", "id", (json_int_t)id), 30000, &res);
	if (r)
		return r;
	if (c->json)
		cli_print_json(res);
	else
		printf("cancelling task %lld\n", (long long)id);
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_cancel = {
	.name = "cancel",
	.summary = "cancel a task",
	.run = run,
};
