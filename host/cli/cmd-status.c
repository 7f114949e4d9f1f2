/* SPDX-License-Identifier: Apache-2.0 */
/* orch status: the daemon, its backends, VMs, agent slots and the queue. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, int argc, char **argv)
{
	json_t *res = NULL, *vm, *tasks;
	const char *k;
	json_t *v;
	size_t i;
	int r;

	r = cli_simple_args(c, argc, argv, " [--json]",
			    "Shows orchd (version, pid, uptime), its backends, VMs with their "
			    "agent slots, and task counts per state.\n",
			    NULL);
	if (r != CLI_GO_ON)
		return r;
	r = cli_call(c, "status", NULL, 30000, &res);
	if (r)
		return r;
	if (c->json) {
		cli_print_json(res);
		json_decref(res);
		return 0;
	}
	printf("orchd %s  pid %lld  up %llds  socket %s\n",
	       json_string_value(json_object_get(res, "version")),
	       (long long)json_integer_value(json_object_get(res, "pid")),
	       (long long)json_integer_value(json_object_get(res, "uptime_ms")) / 1000,
	       json_string_value(json_object_get(res, "socket")));
	printf("state dir %s\n", json_string_value(json_object_get(res, "state_dir")));
	printf("backends:");
	json_array_foreach(json_object_get(res, "backends"), i, v)
		printf(" %s", json_string_value(v));
	printf("\nqueue depth %lld\n\n",
	       (long long)json_integer_value(json_object_get(res, "queue_depth")));
	cli_print_vm_header();
	json_array_foreach(json_object_get(res, "vms"), i, vm) cli_print_vm(vm);
	tasks = json_object_get(res, "tasks");
	printf("\ntasks:");
	json_object_foreach(tasks, k, v) printf(" %s=%lld", k, (long long)json_integer_value(v));
	printf("\n");
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_status = {
	.name = "status",
	.summary = "show orchd, backends, VMs, agent slots and the queue",
	.run = run,
};
