/* SPDX-License-Identifier: Apache-2.0 */
/* orch egress log [--task ID] [--limit N] [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "visible.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch egress log [--task ID] [--limit N] [--json]\n"
		"The agents' outbound connections through orchd's egress gateway, newest first:\n"
		"time, task, VM/slot, kind (connect|http), host:port, verdict, bytes up/down,\n"
		"duration and the reason of a refusal (docs/EGRESS.md).\n");
}

static void print_row(json_t *r)
{
	time_t ts = (time_t)(json_integer_value(json_object_get(r, "ts")) / 1000);
	struct tm tm;
	char when[32], task[24];
	json_t *t = json_object_get(r, "task");
	/* host and reason come from agents' requests: shown as cat -v would */
	char *host = cli_visible_str(json_string_value(json_object_get(r, "host")));
	char *reason = cli_visible_str(json_string_value(json_object_get(r, "reason")));

	gmtime_r(&ts, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(task, sizeof(task), "%lld",
		 json_is_integer(t) ? (long long)json_integer_value(t) : 0LL);
	printf("%s %-6s %s/%lld %-7s %s:%lld %-7s %lld/%lld %lldms %s\n", when,
	       json_is_integer(t) ? task : "-", json_string_value(json_object_get(r, "vm")),
	       (long long)json_integer_value(json_object_get(r, "slot")),
	       json_string_value(json_object_get(r, "kind")), host ? host : "?",
	       (long long)json_integer_value(json_object_get(r, "port")),
	       json_string_value(json_object_get(r, "verdict")),
	       (long long)json_integer_value(json_object_get(r, "bytes_up")),
	       (long long)json_integer_value(json_object_get(r, "bytes_down")),
	       (long long)json_integer_value(json_object_get(r, "duration_ms")),
	       reason ? reason : "");
	free(host);
	free(reason);
}

static int run(struct cli *c, int argc, char **argv)
{
	json_t *params = json_object(), *res = NULL, *r;
	size_t i;
	char *end;
	int rc;

	if (argc < 2 || strcmp(argv[1], "log") != 0) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			usage(stdout);
			json_decref(params);
			return 0;
		}
		goto bad;
	}
	for (int a = 2; a < argc; a++) {
		if (!strcmp(argv[a], "--json"))
			c->json = true;
		else if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
			usage(stdout);
			json_decref(params);
			return 0;
		} else if ((!strcmp(argv[a], "--task") || !strcmp(argv[a], "--limit")) &&
			   a + 1 < argc) {
			const char *k = argv[a] + 2;
			long long v = strtoll(argv[++a], &end, 10);
			if (*end || end == argv[a] || v < 1)
				goto bad;
			json_object_set_new(params, k, json_integer(v));
		} else
			goto bad;
	}
	rc = cli_call(c, "egress.log", params, 30000, &res);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(json_object_get(res, "connections"));
	else
		json_array_foreach(json_object_get(res, "connections"), i, r) print_row(r);
	json_decref(res);
	return 0;
bad:
	json_decref(params);
	usage(stderr);
	return CLI_EXIT_USAGE;
}

const struct cli_cmd cmd_egress = {
	.name = "egress",
	.summary = "the agents' outbound connections (egress log)",
	.run = run,
};
