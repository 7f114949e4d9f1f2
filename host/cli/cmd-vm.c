/* SPDX-License-Identifier: Apache-2.0 */
/* orch vm list | pools | up NAME | down NAME | restart NAME | console NAME */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "visible.h"
#include "schema.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch vm list|pools [--json]\n"
		"       orch vm up|down|restart NAME [--json]\n"
		"       orch vm console NAME [--bytes N] [--json]\n"
		"list     VMs with backend, state, agent slots and last error, then the pools\n"
		"pools    the pools: class, isolation, ready/max, VMs idle/busy/starting,\n"
		"         made, retired, snapshot\n"
		"up       start a stopped VM (or restart a down one now); a pool's class: fill it\n"
		"down     stop it; its running tasks are lost (and re-queued per retries); a\n"
		"         pool's class: retire its VMs and make none; a pool's VM: retire it\n"
		"restart  stop it at once and start it again (a pool's VM: retire it)\n"
		"console  the tail of its console log (VM backend; default 16384 bytes)\n");
}

static void print_pools(json_t *pools)
{
	size_t i;
	json_t *p;

	if (!json_array_size(pools))
		return;
	printf("%-16s %-11s %-9s %-7s %4s %4s %8s %5s %7s  %s\n", "POOL", "ISOLATION", "STATE",
	       "READY", "IDLE", "BUSY", "STARTING", "MADE", "RETIRED", "SNAPSHOT");
	json_array_foreach(pools, i, p)
	{
		json_t *v = json_object_get(p, "vms"), *snap = json_object_get(p, "snapshot");
		char ready[32];
		snprintf(ready, sizeof(ready), "%lld/%lld",
			 (long long)json_integer_value(json_object_get(p, "ready")),
			 (long long)json_integer_value(json_object_get(p, "max")));
		printf("%-16s %-11s %-9s %-7s %4lld %4lld %8lld %5lld %7lld  %s",
		       json_string_value(json_object_get(p, "class")),
		       json_string_value(json_object_get(p, "isolation")),
		       json_string_value(json_object_get(p, "state")), ready,
		       (long long)json_integer_value(json_object_get(v, "idle")),
		       (long long)json_integer_value(json_object_get(v, "busy")),
		       (long long)json_integer_value(json_object_get(v, "starting")),
		       (long long)json_integer_value(json_object_get(p, "made")),
		       (long long)json_integer_value(json_object_get(p, "retired")),
		       snap ? json_string_value(json_object_get(snap, "state")) : "-");
		json_t *e = json_object_get(p, "last_error");
		if (json_is_string(e)) {
			char *vis = cli_visible_str(json_string_value(e));
			printf("  (%s)", vis ? vis : "?");
			free(vis);
		}
		printf("\n");
	}
}

static int run(struct cli *c, int argc, char **argv)
{
	const char *sub = NULL, *name = NULL;
	long long bytes = -1;
	json_t *res = NULL, *params;
	char method[32];
	int r;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[a], "--bytes") == 0 && a + 1 < argc)
			bytes = atoll(argv[++a]);
		else if (!sub)
			sub = argv[a];
		else if (!name)
			name = argv[a];
		else {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	bool listing = sub && (!strcmp(sub, "list") || !strcmp(sub, "pools"));
	if (!sub || listing != !name ||
	    (!listing && strcmp(sub, "up") && strcmp(sub, "down") && strcmp(sub, "restart") &&
	     strcmp(sub, "console"))) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	snprintf(method, sizeof(method), "vm.%s", listing ? "list" : sub);
	params = name ? json_pack("{ss}", "name", name) : NULL;
	if (params && bytes >= 0)
		json_object_set_new(params, "bytes", json_integer(bytes));
	r = cli_call(c, method, params, 120000, &res);
	if (r)
		return r;
	if (c->json) {
		cli_print_json(
			!listing ? res
				 : json_object_get(res, strcmp(sub, "list") ? "pools" : "vms"));
	} else if (strcmp(sub, "pools") == 0) {
		print_pools(json_object_get(res, "pools"));
	} else if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *vm;
		cli_print_vm_header();
		json_array_foreach(json_object_get(res, "vms"), i, vm) cli_print_vm(vm);
		if (json_array_size(json_object_get(res, "pools")))
			printf("\n");
		print_pools(json_object_get(res, "pools"));
	} else if (strcmp(sub, "console") == 0) {
		const char *tail = json_string_value(json_object_get(res, "tail"));
		const char *b64 = json_string_value(json_object_get(res, "tail_b64"));
		unsigned char *raw = NULL;
		size_t len = 0;

		if (tail) {
			raw = (unsigned char *)strdup(tail);
			len = raw ? strlen(tail) : 0;
		} else if (!b64 || orch_b64_decode(b64, strlen(b64), &raw, &len) < 0) {
			raw = NULL;
		}
		fflush(stdout);
		if (raw && isatty(1)) /* the guest wrote it: no control of the terminal */
			cli_write_visible(1, raw, len, CLI_VISIBLE_LINES | CLI_VISIBLE_SGR);
		else if (raw)
			fwrite(raw, 1, len, stdout);
		free(raw);
	} else if (json_object_get(res, "action")) { /* a pool's */
		printf("%s: %s\n", json_string_value(json_object_get(res, "name")),
		       json_string_value(json_object_get(res, "action")));
	} else {
		cli_print_vm(res);
	}
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_vm = {
	.name = "vm",
	.summary = "list, start, stop, restart VMs; show a console",
	.run = run,
};
