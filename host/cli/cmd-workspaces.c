/* SPDX-License-Identifier: Apache-2.0 */
/* orch workspaces [ls] | rm ID...: repository tasks' workspaces on orchd's host. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "visible.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch workspaces [ls] [--json] | rm ID...\n"
		"The workspaces of repository tasks that orchd keeps (docs/WORKSPACES.md): the\n"
		"task, its state, VM and slot, the space its image takes of its size, whether it\n"
		"is mounted, the repository. `rm` removes finished tasks' workspaces (their\n"
		"results stay on their branches); orchd keeps the newest git.keep_workspaces.\n");
}

static int list(struct cli *c)
{
	json_t *res = NULL, *w;
	size_t i;
	int r = cli_call(c, "workspaces.list", json_object(), 30000, &res);
	if (r)
		return r;
	if (c->json) {
		cli_print_json(json_object_get(res, "workspaces"));
		json_decref(res);
		return 0;
	}
	printf("%-7s %-9s %-10s %-16s %-15s %-7s %s\n", "TASK", "STATE", "RESULT", "VM/SLOT",
	       "USED/SIZE MiB", "MOUNTED", "REPOSITORY");
	json_array_foreach(json_object_get(res, "workspaces"), i, w)
	{
		char where[64], used[32];
		snprintf(where, sizeof(where), "%s/%lld",
			 json_string_value(json_object_get(w, "vm")),
			 (long long)json_integer_value(json_object_get(w, "slot")));
		snprintf(used, sizeof(used), "%lld/%lld",
			 (long long)(json_integer_value(json_object_get(w, "used_bytes")) >> 20),
			 (long long)(json_integer_value(json_object_get(w, "size_bytes")) >> 20));
		char *repo = cli_visible_str(json_string_value(json_object_get(w, "repo")));
		printf("%-7lld %-9s %-10s %-16s %-15s %-7s %s\n",
		       (long long)json_integer_value(json_object_get(w, "task")),
		       json_string_value(json_object_get(w, "task_state")),
		       json_string_value(json_object_get(w, "state")), where, used,
		       json_is_true(json_object_get(w, "mounted")) ? "yes" : "no",
		       repo ? repo : "?");
		free(repo);
	}
	json_decref(res);
	return 0;
}

static int run(struct cli *c, int argc, char **argv)
{
	int a = 1, rc = 0;
	for (; a < argc && argv[a][0] == '-'; a++) {
		if (!strcmp(argv[a], "--json"))
			c->json = true;
		else if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (a >= argc || !strcmp(argv[a], "ls") || !strcmp(argv[a], "list")) {
		for (a++; a < argc; a++)
			if (!strcmp(argv[a], "--json"))
				c->json = true;
			else {
				usage(stderr);
				return CLI_EXIT_USAGE;
			}
		return list(c);
	}
	if (strcmp(argv[a], "rm") != 0 || a + 1 >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (a++; a < argc; a++) {
		int64_t id;
		json_t *res = NULL;
		if (!strcmp(argv[a], "--json")) {
			c->json = true;
			continue;
		}
		if (cli_parse_id(argv[a], &id) < 0)
			return CLI_EXIT_USAGE;
		int r = cli_call(c, "workspaces.rm", json_pack("{sI}", "id", (json_int_t)id), 0,
				 &res);
		if (r) {
			rc = r;
			continue;
		}
		if (!c->json)
			printf("removed the workspace of task %lld\n", (long long)id);
		else
			cli_print_json(res);
		json_decref(res);
	}
	return rc;
}

const struct cli_cmd cmd_workspaces = {
	.name = "workspaces",
	.summary = "list or remove repository tasks' workspaces",
	.run = run,
};
