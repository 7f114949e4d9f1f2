/* SPDX-License-Identifier: Apache-2.0 */
/* orch logs [-f] ID: replays a task's spooled output, then follows it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "render.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch logs [-f] [--raw] [--from-seq N] [--attempt N | --all-attempts] "
		   "[--json] ID\n"
		   "Replays the task's output (stdout to stdout, stderr to stderr) from chunk N\n"
		   "(default 0); with -f keeps following until the task ends. Interrupting and\n"
		   "re-attaching loses nothing: with --json every chunk carries its seq, and\n"
		   "--from-seq resumes after the last one seen. Claude Code's stream-json is\n"
		   "shown as readable progress; --raw prints the output as the agent wrote it.\n"
		   "\n"
		   "A task that was lost and retried has a log per attempt: shown is the attempt\n"
		   "that finished (or runs now); a line \"--- attempt N ---\" on stderr says so\n"
		   "when it is not the first, and where a new attempt begins while following.\n"
		   "  --attempt N       attempt N's output\n"
		   "  --all-attempts    every attempt's, each after its \"--- attempt N ---\"\n"
		   "With --json each chunk carries its attempt.\n");
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"follow", no_argument, NULL, 'f'},
		{"from-seq", required_argument, NULL, 's'},
		{"attempt", required_argument, NULL, 'a'},
		{"all-attempts", no_argument, NULL, 'A'},
		{"raw", no_argument, NULL, 'R'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	bool follow = false, all = false, raw = false;
	struct cli_render render;
	int64_t id, from = 0, attempt = 0;
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
		case 'a':
			attempt = strtoll(optarg, &end, 10);
			if (end == optarg || *end || attempt < 1 || attempt > 1000) {
				fprintf(stderr, "orch logs: bad --attempt '%s' (1..1000)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'A':
			all = true;
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
	if (attempt && all) {
		fprintf(stderr, "orch logs: --attempt and --all-attempts exclude each other\n");
		return CLI_EXIT_USAGE;
	}
	cli_render_init(&render, stdout, isatty(1));
	if (!raw && !c->json)
		c->render = &render;
	r = cli_follow_task(c, id, from, follow, attempt, all, &t);
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
