/* SPDX-License-Identifier: Apache-2.0 */
/* orch nodes: the orchd nodes sharing the store, their VMs, slots in use, heartbeats. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, int argc, char **argv)
{
	json_t *res = NULL, *node, *vm;
	size_t i, j;
	int r;

	r = cli_simple_args(c, argc, argv, " [--json]",
			    "Shows the orchd nodes that share this orchd's store (docs/FLEET.md):\n"
			    "each node's state (up, dead), the age of its last heartbeat, its VMs\n"
			    "with their agent slots in use. With the embedded SQLite store there\n"
			    "is one node, this orchd. Any node answers for all of them.\n",
			    NULL);
	if (r != CLI_GO_ON)
		return r;
	r = cli_call(c, "nodes.list", NULL, 30000, &res);
	if (r)
		return r;
	if (c->json) {
		cli_print_json(res);
		json_decref(res);
		return 0;
	}
	printf("store %s, this node %s\n\n",
	       json_string_value(json_object_get(res, "store")) ?: "?",
	       json_string_value(json_object_get(res, "self")) ?: "?");
	printf("%-20s %-6s %12s  %s\n", "NODE", "STATE", "HEARTBEAT", "VMS (busy/slots)");
	json_array_foreach(json_object_get(res, "nodes"), i, node)
	{
		char hb[32];

		snprintf(hb, sizeof(hb), "%.1fs ago",
			 (double)json_integer_value(json_object_get(node, "heartbeat_age_ms")) /
				 1e3);
		printf("%-20s %-6s %12s ", json_string_value(json_object_get(node, "name")) ?: "?",
		       json_string_value(json_object_get(node, "state")) ?: "?", hb);
		json_array_foreach(json_object_get(node, "vms"), j, vm) printf(
			" %s(%s %lld/%lld)", json_string_value(json_object_get(vm, "name")) ?: "?",
			json_string_value(json_object_get(vm, "state")) ?: "?",
			(long long)json_integer_value(json_object_get(vm, "busy")),
			(long long)json_integer_value(json_object_get(vm, "slots")));
		printf("\n");
	}
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_nodes = {
	.name = "nodes",
	.summary = "show the orchd nodes sharing the store, their VMs and heartbeats",
	.run = run,
};
