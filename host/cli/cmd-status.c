/* SPDX-License-Identifier: Apache-2.0 */
/* orch status: the daemon, its backends, VMs, agent slots and the queue. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, int argc, char **argv)
{
	json_t *res = NULL, *vm, *slot, *tasks;
	const char *k;
	json_t *v;
	size_t i, j;
	int r;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			printf("Usage: orch status [--json]\n"
			       "Shows orchd (version, pid, uptime), its backends, VMs with their "
			       "agent slots, and task counts per state.\n");
			return 0;
		} else {
			fprintf(stderr, "orch status: unexpected argument '%s'\n", argv[a]);
			return CLI_EXIT_USAGE;
		}
	}
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
	printf("%-16s %-8s %-9s %s\n", "VM", "BACKEND", "STATE", "SLOTS (agent:task)");
	json_array_foreach(json_object_get(res, "vms"), i, vm)
	{
		printf("%-16s %-8s %-9s", json_string_value(json_object_get(vm, "name")),
		       json_string_value(json_object_get(vm, "backend")),
		       json_string_value(json_object_get(vm, "state")));
		json_array_foreach(json_object_get(vm, "slots"), j, slot)
		{
			json_t *t = json_object_get(slot, "task");
			if (json_is_integer(t))
				printf(" %zu:%lld", j, (long long)json_integer_value(t));
			else
				printf(" %zu:-", j);
		}
		if (json_is_string(json_object_get(vm, "last_error")))
			printf("  (%s)", json_string_value(json_object_get(vm, "last_error")));
		printf("\n");
	}
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
