/* SPDX-License-Identifier: Apache-2.0 */
/* orch tasks: list tasks, newest first. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "cli.h"
#include "visible.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch tasks [--state S] [--limit N] [--json]\n"
		   "Lists tasks, newest first. S is one of queued, leased, running, succeeded,\n"
		   "failed, timed_out, cancelled, lost. N defaults to 100 (max 10000).\n");
}

/* The command in at most 48 columns on one line: a profile's task as "[NAME] " and the
 * agent's command (not the writer of its files, host/ops/profile-cmd.c), control bytes made
 * visible. */
static void print_cmd(json_t *task)
{
	json_t *argv = json_object_get(task, "argv"), *v;
	const char *profile = json_string_value(json_object_get(task, "profile"));
	size_t i, n = 0, first = 0;

	if (profile) {
		n += (size_t)printf("[%.20s] ", profile);
		if (json_array_size(argv) > 4 &&
		    !strcmp(json_string_value(json_array_get(argv, 0)) ?: "", "/bin/sh") &&
		    !strcmp(json_string_value(json_array_get(argv, 3)) ?: "", "orch-profile"))
			first = 4;
	}
	json_array_foreach(argv, i, v)
	{
		const char *s = json_string_value(v);
		if (i < first)
			continue;
		if (n + 4 >= 48) {
			printf("...");
			break;
		}
		if (i > first)
			n += (size_t)printf(" ");
		/* a guest's bytes never reach the terminal as they are */
		char *vis = cli_visible_str(s);
		for (const char *q = vis; q && *q && n + 4 < 48; q++, n++)
			putchar(*q);
		free(vis);
	}
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"limit", required_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	_cleanup_json_ json_t *params = json_object();
	json_t *res = NULL, *t;
	size_t i;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			json_object_set_new(params, "state", json_string(optarg));
			break;
		case 'n':
			json_object_set_new(params, "limit", json_integer(atoll(optarg)));
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	r = cli_call(c, "task.list", TAKE_PTR(params), 30000, &res);
	if (r)
		return r;
	if (c->json) {
		cli_print_json(json_object_get(res, "tasks"));
		json_decref(res);
		return 0;
	}
	printf("%-8s %-10s %-12s %-5s %-5s %-20s %s\n", "ID", "STATE", "VM", "AGENT", "EXIT",
	       "CREATED", "COMMAND");
	json_array_foreach(json_object_get(res, "tasks"), i, t)
	{
		json_t *vm = json_object_get(t, "vm"), *slot = json_object_get(t, "slot");
		json_t *code = json_object_get(t, "exit_code");
		time_t created =
			(time_t)(json_integer_value(json_object_get(t, "created_at")) / 1000);
		char when[32], sl[16], ex[16];
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&created, &tm));
		snprintf(sl, sizeof(sl), "%s", "-");
		if (json_is_integer(slot))
			snprintf(sl, sizeof(sl), "%lld", (long long)json_integer_value(slot));
		snprintf(ex, sizeof(ex), "%s", "-");
		if (json_is_integer(code))
			snprintf(ex, sizeof(ex), "%lld", (long long)json_integer_value(code));
		printf("%-8lld %-10s %-12s %-5s %-5s %-20s ",
		       (long long)json_integer_value(json_object_get(t, "id")),
		       json_string_value(json_object_get(t, "state")),
		       json_is_string(vm) ? json_string_value(vm) : "-", sl, ex, when);
		print_cmd(t);
		printf("\n");
	}
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_tasks = {
	.name = "tasks",
	.summary = "list tasks (--state S)",
	.run = run,
};
