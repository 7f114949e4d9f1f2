/* SPDX-License-Identifier: Apache-2.0 */
/* orch logs [-f] ID: replays a task's spooled output, then follows it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "render.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch logs [-f] [--raw] [--from-seq N] [--json] ID\n"
		   "Replays the task's output (stdout to stdout, stderr to stderr) from chunk N\n"
		   "(default 0); with -f keeps following until the task ends. Interrupting and\n"
		   "re-attaching loses nothing: with --json every chunk carries its seq, and\n"
		   "--from-seq resumes after the last one seen. Claude Code's stream-json is\n"
		   "shown as readable progress; --raw prints the output as the agent wrote it.\n");
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'}, {"from-seq", required_argument, NULL, 's'},
		{"raw", no_argument, NULL, 'R'},    {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},   {},
	};
	bool follow = false, raw = false;
	struct cli_render render;
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
		case 'R':
			raw = true;
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
	cli_render_init(&render, stdout);
	if (!raw && !c->json)
		c->render = &render;
	r = cli_follow_task(c, id, from, follow, &t);
	cli_render_flush(&render);
	cli_render_done(&render);
	c->render = NULL;
	json_decref(t);
	return r;
}

const struct cli_cmd cmd_logs = {
	.name = "logs",
	.summary = "show a task's output (-f follows)",
	.run = run,
};
