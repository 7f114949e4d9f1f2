/* SPDX-License-Identifier: Apache-2.0 */
/* orch logs [-f] ID: replays a task's spooled output, then follows it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch logs [-f] [--from-seq N] [--json] ID\n"
		   "Replays the task's output (stdout to stdout, stderr to stderr) from chunk N\n"
		   "(default 0); with -f keeps following until the task ends. Interrupting and\n"
		   "re-attaching loses nothing: with --json every chunk carries its seq, and\n"
		   "--from-seq resumes after the last one seen.\n");
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'},
		{"from-seq", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	bool follow = false;
	int64_t id, from = 0;
	json_t *t = NULL;
	char *end;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (o) {
		case 'f':
			follow = true;
			break;
		case 's':
			from = strtoll(optarg, &end, 10);
			if (end == optarg || *end || from < 0) {
				fprintf(stderr, "orch logs: bad --from-seq '%s'\n", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	if (optind + 1 != argc || cli_parse_id(argv[optind], &id) < 0) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	r = cli_follow_task(c, id, from, follow, &t);
	json_decref(t);
	return r;
}

const struct cli_cmd cmd_logs = {
	.name = "logs",
	.summary = "show a task's output (-f follows)",
	.run = run,
};
