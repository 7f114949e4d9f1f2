/* SPDX-License-Identifier: Apache-2.0 */
/* orch dispatch: submit a task; optionally wait for it or follow its output. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "render.h"
#include "visible.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch dispatch [OPTIONS] -- CMD [ARGS...]\n"
		"Queues CMD as a task and prints its id.\n\n"
		"  --vm NAME          run on this VM, or a VM of this pooled class (default: any)\n"
		"  --agent N          run in agent slot N (default: any free one)\n"
		"  --priority P       higher runs first (default 0)\n"
		"  --timeout D        wall-clock limit: 30s, 5m, 1h, 1500ms (default: none)\n"
		"  --env K=V          extra environment (repeatable)\n"
		"  --cwd DIR          working directory in the jail (default /workspace)\n"
		"  --retries N        re-queues after the task is lost (default: orchd's)\n"
		"  --profile NAME     agent profile from orchd's config\n"
		"  --prompt TEXT      the task for the profile's agent (with --profile)\n"
		"  --egress SETS      egress sets the task may use, comma-separated\n"
		"                     (orchd's egress.sets; the VM must allow them)\n"
		"  --repo PATH|URL    work on a checkout of this repository: a local path\n"
		"                     (read as you) or an https/ssh/git/file URL (fetched\n"
		"                     by orchd); the result becomes branch orch/task-ID\n"
		"  --ref REF          the branch, tag or commit to check out (default: the\n"
		"                     repository's default branch)\n"
		"  --wait             wait for the task; exit with its exit code\n"
		"  --follow           stream its output live, then exit with its exit code\n"
		"  --raw              the output as the agent wrote it (default: Claude Code's\n"
		"                     stream-json shown as readable progress)\n"
		"  --json             print JSON\n"
		"  -h, --help         this text\n");
}

/* --repo: a URL as it is, a local path made absolute (it is read on orchd's host, as the
 * user who runs orch). */
static int cli_repo_arg(const char *arg, char **ret)
{
	const char *colon = strchr(arg, ':'), *slash = strchr(arg, '/');
	if (strstr(arg, "://") || (colon && colon != arg && (!slash || colon < slash))) {
		*ret = strdup(arg);
		return *ret ? 0 : -ENOMEM;
	}
	char *real = realpath(arg, NULL);
	if (!real) {
		fprintf(stderr, "orch dispatch: --repo %s: %s\n", arg, strerror(errno));
		return -errno;
	}
	*ret = real;
	return 0;
}

static void on_output(struct cli *c, json_t *params)
{
	cli_write_output(c, params);
}

int cli_follow_task(struct cli *c, int64_t id, int64_t from_seq, bool follow, int64_t attempt,
		    bool all, json_t **ret_task)
{
	json_t *p = json_pack("{sIsIsb}", "id", (json_int_t)id, "from_seq", (json_int_t)from_seq,
			      "follow", follow);

	if (p && attempt)
		json_object_set_new(p, "attempt", json_integer(attempt));
	if (p && all)
		json_object_set_new(p, "all_attempts", json_true());
	/* A boundary before the first chunk only when it is not the first attempt (or all
	 * are shown), and wherever the attempt changes. */
	c->shown_attempt = all ? 0 : attempt ? attempt : 1;
	c->on_output = on_output;
	return cli_call(c, "task.logs", p, 0, ret_task);
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"vm", required_argument, NULL, 'm'},
		{"agent", required_argument, NULL, 'a'},
		{"priority", required_argument, NULL, 'p'},
		{"timeout", required_argument, NULL, 't'},
		{"env", required_argument, NULL, 'e'},
		{"cwd", required_argument, NULL, 'C'},
		{"retries", required_argument, NULL, 'r'},
		{"profile", required_argument, NULL, 'P'},
		{"prompt", required_argument, NULL, 'T'},
		{"egress", required_argument, NULL, 'E'},
		{"repo", required_argument, NULL, 'G'},
		{"ref", required_argument, NULL, 'F'},
		{"wait", no_argument, NULL, 'w'},
		{"follow", no_argument, NULL, 'f'},
		{"raw", no_argument, NULL, 'R'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	_cleanup_json_ json_t *params = json_object(), *env = json_object(), *argv_j = json_array();
	json_t *res = NULL, *task = NULL;
	bool wait = false, follow = false, raw = false;
	struct cli_render render;
	int64_t id, ms;
	char *end;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (o) {
		case 'm':
			json_object_set_new(params, "vm", json_string(optarg));
			break;
		case 'a':
		case 'p':
		case 'r': {
			long long v = strtoll(optarg, &end, 10);
			if (end == optarg || *end) {
				fprintf(stderr, "orch dispatch: '%s' is not a number\n", optarg);
				return CLI_EXIT_USAGE;
			}
			json_object_set_new(params,
					    o == 'a'   ? "slot"
					    : o == 'p' ? "priority"
						       : "retries",
					    json_integer(v));
			break;
		}
		case 't':
			if (cli_parse_duration_ms(optarg, &ms) < 0) {
				fprintf(stderr,
					"orch dispatch: bad --timeout '%s' (e.g. 30s, 5m)\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			json_object_set_new(params, "timeout_ms", json_integer(ms));
			break;
		case 'e': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				fprintf(stderr, "orch dispatch: --env expects K=V, got '%s'\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			*eq = 0;
			json_object_set_new(env, optarg, json_string(eq + 1));
			break;
		}
		case 'C':
			json_object_set_new(params, "cwd", json_string(optarg));
			break;
		case 'P':
			json_object_set_new(params, "profile", json_string(optarg));
			break;
		case 'T':
			json_object_set_new(params, "prompt", json_string(optarg));
			break;
		case 'E': {
			json_t *sets = json_object_get(params, "egress");
			if (!sets)
				json_object_set_new(params, "egress", sets = json_array());
			for (char *save = NULL, *t = strtok_r(optarg, ",", &save); t;
			     t = strtok_r(NULL, ",", &save))
				json_array_append_new(sets, json_string(t));
			break;
		}
		case 'G': {
			_cleanup_free_ char *repo = NULL;
			if (cli_repo_arg(optarg, &repo) < 0)
				return CLI_EXIT_USAGE;
			json_object_set_new(params, "repo", json_string(repo));
			break;
		}
		case 'F':
			json_object_set_new(params, "ref", json_string(optarg));
			break;
		case 'w':
			wait = true;
			break;
		case 'f':
			follow = true;
			break;
		case 'R':
			raw = true;
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	if (optind >= argc && !json_object_get(params, "profile")) {
		fprintf(stderr, "orch dispatch: missing command (orch dispatch -- CMD ARGS...)\n");
		return CLI_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++)
		json_array_append_new(argv_j, json_string(argv[i]));
	if (json_array_size(argv_j))
		json_object_set(params, "argv", argv_j);
	if (json_object_size(env))
		json_object_set(params, "env", env);

	r = cli_call(c, "task.submit", json_incref(params), 30000, &res);
	if (r)
		return r;
	id = json_integer_value(json_object_get(res, "id"));
	if (!wait && !follow) {
		if (c->json)
			cli_print_json(res);
		else
			printf("%lld\n", (long long)id);
		json_decref(res);
		return 0;
	}
	json_decref(res);
	cli_render_init(&render, stdout, isatty(1));
	if (!raw && !c->json)
		c->render = &render;
	if (follow) {
		r = cli_follow_task(c, id, 0, true, 0, false, &task);
		json_t *g = json_object_get(task, "git");
		const char *gs = json_string_value(json_object_get(g, "state"));
		if (!r && gs && strcmp(gs, "pending") == 0) {
			/* and its result, recorded after the task ended */
			json_decref(task);
			task = NULL;
			r = cli_call(c, "task.wait", json_pack("{sI}", "id", (json_int_t)id), 0,
				     &task);
		}
	} else {
		r = cli_call(c, "task.wait", json_pack("{sI}", "id", (json_int_t)id), 0, &task);
		if (!r && !c->json) {
			/* print the output after the fact */
			json_t *t2 = NULL;
			r = cli_follow_task(c, id, 0, false, 0, false, &t2);
			json_decref(t2);
		}
	}
	cli_render_flush(&render);
	cli_render_done(&render);
	c->render = NULL;
	if (r)
		return r;
	if (!c->json && json_is_object(json_object_get(task, "git")))
		cli_print_git_result(stderr, id, json_object_get(task, "git"));
	if (c->json)
		cli_print_json(task);
	else if (!json_is_integer(json_object_get(task, "exit_code"))) {
		/* the reason may come from the guest: shown with its control bytes visible */
		const char *why = json_string_value(json_object_get(task, "reason"));
		char *vis = why ? cli_visible_str(why) : NULL;
		fprintf(stderr, "orch: task %lld ended %s%s%s\n", (long long)id,
			json_string_value(json_object_get(task, "state")), vis ? ": " : "",
			vis ? vis : "");
		free(vis);
	}
	r = cli_task_exit_code(task);
	json_decref(task);
	return r;
}

const struct cli_cmd cmd_dispatch = {
	.name = "dispatch",
	.summary = "queue a command as a task (--wait, --follow)",
	.run = run,
};
