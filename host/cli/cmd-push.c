/* SPDX-License-Identifier: Apache-2.0 */
/* orch push ID: orchd pushes a repository task's result upstream through its git gate. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch push [--remote NAME] [--to REF] [--allow PATH]... [--json] ID\n"
		"orchd pushes the result of repository task ID (its branch orch/task-ID) to the\n"
		"task's repository, or to remote NAME of orchd's git.remotes, as REF (default\n"
		"orch/task-ID), with the credentials orchd holds. Its push gate refuses, naming\n"
		"the rule: a REF outside git.push.refs, a force push, a change to a protected\n"
		"path (unless --allow names it), a change larger than the size limits, or an\n"
		"added line holding a configured key or matching a secret pattern.\n\n"
		"  --remote NAME   a remote of orchd's git.remotes (default: the task's "
		"repository)\n"
		"  --to REF        the branch (or refs/...) to push to\n"
		"  --allow PATH    let a protected path change (repeatable; e.g. "
		".github/workflows/)\n");
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"remote", required_argument, NULL, 'r'}, {"to", required_argument, NULL, 't'},
		{"allow", required_argument, NULL, 'a'},  {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},	  {},
	};
	json_t *params = json_object(), *allow = json_array(), *res = NULL;
	int64_t id;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			json_object_set_new(params, "remote", json_string(optarg));
			break;
		case 't':
			json_object_set_new(params, "to", json_string(optarg));
			break;
		case 'a':
			json_array_append_new(allow, json_string(optarg));
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON) {
				json_decref(params);
				json_decref(allow);
				return r;
			}
		}
	}
	if (optind + 1 != argc || cli_parse_id(argv[optind], &id) < 0) {
		usage(stderr);
		json_decref(params);
		json_decref(allow);
		return CLI_EXIT_USAGE;
	}
	json_object_set_new(params, "id", json_integer(id));
	if (json_array_size(allow))
		json_object_set_new(params, "allow", allow);
	else
		json_decref(allow);
	r = cli_call(c, "task.push", params, 0, &res);
	if (r)
		return r;
	if (c->json)
		cli_print_json(res);
	else
		printf("pushed %.12s to %s %s\n", json_string_value(json_object_get(res, "commit")),
		       json_string_value(json_object_get(res, "url")),
		       json_string_value(json_object_get(res, "ref")));
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_push = {
	.name = "push",
	.summary = "push a repository task's result upstream (through the git gate)",
	.run = run,
};
