/* SPDX-License-Identifier: Apache-2.0 */
/* orch budget show [--scope agent|task] [ID] | set SCOPE ID [--usd X] [--tokens N] [--reset] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch budget show [--scope agent|task|fleet] [ID] [--json]\n"
		"       orch budget set agent|task|fleet ID [--usd X] [--tokens N] [--reset] "
		"[--json]\n"
		"LLM budgets: per agent slot (ID <vm>/<slot>, e.g. local/0), per task (ID the\n"
		"task id) and for the whole fleet (ID all: every agent of this orchd, or of every\n"
		"node sharing its PostgreSQL store). Limits of 0 mean unlimited; --reset zeroes\n"
		"the spend.\n");
}

static void print_budget(json_t *b)
{
	printf("%-6s %-16s %10.4f %10.4f %10.4f %12lld %12lld\n",
	       json_string_value(json_object_get(b, "scope")),
	       json_string_value(json_object_get(b, "id")),
	       json_real_value(json_object_get(b, "limit_usd")),
	       json_real_value(json_object_get(b, "spent_usd")),
	       json_real_value(json_object_get(b, "reserved_usd")),
	       (long long)json_integer_value(json_object_get(b, "limit_tokens")),
	       (long long)json_integer_value(json_object_get(b, "spent_tokens")));
}

static void header(void)
{
	printf("%-6s %-16s %10s %10s %10s %12s %12s\n", "SCOPE", "ID", "LIMIT_USD", "SPENT_USD",
	       "RESERVED", "LIMIT_TOK", "SPENT_TOK");
}

static int run(struct cli *c, int argc, char **argv)
{
	const char *pos[3] = {NULL};
	json_t *params = json_object(), *res = NULL, *b;
	size_t npos = 0, i;
	char *end;
	int r;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			usage(stdout);
			json_decref(params);
			return 0;
		} else if (strcmp(argv[a], "--scope") == 0 && a + 1 < argc)
			json_object_set_new(params, "scope", json_string(argv[++a]));
		else if (strcmp(argv[a], "--usd") == 0 && a + 1 < argc) {
			double v = strtod(argv[++a], &end);
			if (*end || end == argv[a])
				goto bad;
			json_object_set_new(params, "limit_usd", json_real(v));
		} else if (strcmp(argv[a], "--tokens") == 0 && a + 1 < argc) {
			long long v = strtoll(argv[++a], &end, 10);
			if (*end || end == argv[a])
				goto bad;
			json_object_set_new(params, "limit_tokens", json_integer(v));
		} else if (strcmp(argv[a], "--reset") == 0)
			json_object_set_new(params, "reset", json_true());
		else if (argv[a][0] != '-' && npos < 3)
			pos[npos++] = argv[a];
		else
			goto bad;
	}
	if (npos >= 1 && strcmp(pos[0], "show") == 0 && npos <= 2) {
		if (npos == 2)
			json_object_set_new(params, "id", json_string(pos[1]));
		r = cli_call(c, "budget.show", params, 30000, &res);
		if (r)
			return r;
		if (c->json) {
			cli_print_json(json_object_get(res, "budgets"));
		} else {
			header();
			json_array_foreach(json_object_get(res, "budgets"), i, b) print_budget(b);
		}
		json_decref(res);
		return 0;
	}
	if (npos == 3 && strcmp(pos[0], "set") == 0) {
		json_object_set_new(params, "scope", json_string(pos[1]));
		json_object_set_new(params, "id", json_string(pos[2]));
		r = cli_call(c, "budget.set", params, 30000, &res);
		if (r)
			return r;
		if (c->json) {
			cli_print_json(res);
		} else {
			header();
			print_budget(res);
		}
		json_decref(res);
		return 0;
	}
bad:
	json_decref(params);
	usage(stderr);
	return CLI_EXIT_USAGE;
}

const struct cli_cmd cmd_budget = {
	.name = "budget",
	.summary = "show or set LLM budgets (per agent slot, per task, the fleet)",
	.run = run,
};
