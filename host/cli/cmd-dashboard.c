/* SPDX-License-Identifier: Apache-2.0 */
/* orch dashboard: a tmux session with live status, a window per VM (console log and each
 * agent's live output) and a debug window that opens `orch shell`; re-attaches when it
 * exists. The tmux layout is scripts/orch-dashboard; this verb asks orchd for the VMs and
 * runs it. `orch dashboard --follow-slot VM N` is what each agent pane runs. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "orch-config.h"

#define MAX_VMS 64

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch dashboard [--session NAME] [--tmux-socket PATH] [--no-attach]\n"
		   "                      [--interval SECONDS] [--json]\n"
		   "Creates (or re-attaches to) a tmux session, on its own tmux server (-L orch):\n"
		   "  status   live `orch status`\n"
		   "  vm:NAME  the VM's console log and each agent's live task output\n"
		   "  debug    pick an agent and get `orch shell`; prefix+S does it from anywhere\n"
		   "Detach with prefix+d; everything keeps running. --no-attach only creates it;\n"
		   "--json prints {\"session\",\"tmux\",\"created\",\"windows\"} first.\n");
}

static const char *script_path(void)
{
	const char *e = getenv("ORCH_DASHBOARD_SCRIPT");
	if (e && *e)
		return e;
	if (access(ORCH_LIBEXECDIR "/orch-dashboard", X_OK) == 0)
		return ORCH_LIBEXECDIR "/orch-dashboard";
	return ORCH_SOURCEDIR "/scripts/orch-dashboard";
}

/* The oldest task of vm/slot with an id above after (one that ran or runs there), 0 when
 * none, < 0 when orchd cannot be asked. With finished_max, instead returns the newest
 * finished task's id there (where following starts). */
static int64_t slot_next(struct cli *c, const char *vm_name, long slot, int64_t after,
			 bool finished_max)
{
	json_t *res = NULL, *t;
	size_t i;
	if (cli_call(c, "task.list", json_pack("{sI}", "limit", (json_int_t)200), 10000, &res) != 0)
		return -1;
	int64_t best = 0;
	json_array_foreach(json_object_get(res, "tasks"), i, t)
	{
		json_t *vm = json_object_get(t, "vm"), *sl = json_object_get(t, "slot");
		int64_t id = json_integer_value(json_object_get(t, "id"));
		const char *st = json_string_value(json_object_get(t, "state"));
		if (!json_is_string(vm) || strcmp(json_string_value(vm), vm_name) != 0 ||
		    !json_is_integer(sl) || json_integer_value(sl) != slot || !st)
			continue;
		bool active = !strcmp(st, "leased") || !strcmp(st, "running");
		if (finished_max) {
			if (!active && strcmp(st, "queued") != 0 && id > best)
				best = id;
		} else if (id > after && strcmp(st, "queued") != 0 && (best == 0 || id < best)) {
			best = id;
		}
	}
	json_decref(res);
	return best;
}

static int follow_slot(struct cli *c, const char *vm, const char *slot_s)
{
	char *end;
	long slot = strtol(slot_s, &end, 10);
	if (*end || slot < 0 || slot > 63) {
		fprintf(stderr, "orch dashboard: bad slot '%s'\n", slot_s);
		return CLI_EXIT_USAGE;
	}
	printf("agent %ld of VM %s: waiting for a task\n", slot, vm);
	fflush(stdout);
	int64_t last = -1;
	for (;;) {
		if (last < 0) {
			last = slot_next(c, vm, slot, 0, true);
			if (last < 0) {
				cli_disconnect(c);
				cli_sleep_ms(2000);
			}
			continue;
		}
		int64_t id = slot_next(c, vm, slot, last, false);
		if (id < 0) {
			cli_disconnect(c);
			cli_sleep_ms(2000);
			continue;
		}
		if (id == 0) {
			cli_sleep_ms(500);
			continue;
		}
		printf("\033[1m--- task %lld ---\033[0m\n", (long long)id);
		fflush(stdout);
		json_t *task = NULL;
		int r = cli_follow_task(c, id, 0, true, 0, false, &task);
		if (r == 0 && task)
			printf("\033[1m--- task %lld %s ---\033[0m\n", (long long)id,
			       json_string_value(json_object_get(task, "state")));
		json_decref(task);
		fflush(stdout);
		if (c->closed)
			cli_disconnect(c);
		last = id;
	}
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"session", required_argument, NULL, 's'},
		{"tmux-socket", required_argument, NULL, 't'},
		{"no-attach", no_argument, NULL, 'n'},
		{"interval", required_argument, NULL, 'i'},
		{"follow-slot", no_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *session = "orch", *tsock = NULL, *interval = "2";
	bool no_attach = false, follow = false;
	int o, r;
	optind = 1;
	while ((o = getopt_long(argc, argv, "s:t:ni:fjh", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			session = optarg;
			break;
		case 't':
			tsock = optarg;
			break;
		case 'n':
			no_attach = true;
			break;
		case 'i':
			interval = optarg;
			break;
		case 'f':
			follow = true;
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	if (follow) {
		if (argc - optind != 2) {
			fprintf(stderr, "Usage: orch dashboard --follow-slot VM AGENT\n");
			return CLI_EXIT_USAGE;
		}
		return follow_slot(c, argv[optind], argv[optind + 1]);
	}
	if (optind < argc) {
		fprintf(stderr, "orch dashboard: unexpected argument '%s'\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}

	json_t *res = NULL, *vm;
	size_t i;
	r = cli_call(c, "status", NULL, 30000, &res);
	if (r)
		return r;
	char self[PATH_MAX];
	r = cli_self_path(self, sizeof(self));
	if (r < 0) {
		json_decref(res);
		fprintf(stderr, "orch dashboard: cannot find my own binary: %s\n", strerror(-r));
		return CLI_EXIT_ERROR;
	}
	const char *sd = json_string_value(json_object_get(res, "state_dir"));
	const char *args[16 + 2 * MAX_VMS];
	char vmargs[MAX_VMS][600];
	size_t k = 0;
	args[k++] = script_path();
	args[k++] = "--orch";
	args[k++] = self;
	args[k++] = "--socket";
	args[k++] = c->socket;
	args[k++] = "--state-dir";
	args[k++] = sd ? sd : "";
	args[k++] = "--session";
	args[k++] = session;
	args[k++] = "--interval";
	args[k++] = interval;
	if (tsock) {
		args[k++] = "--tmux-socket";
		args[k++] = tsock;
	}
	if (no_attach)
		args[k++] = "--no-attach";
	if (c->json)
		args[k++] = "--json";
	json_array_foreach(json_object_get(res, "vms"), i, vm)
	{
		if (i >= MAX_VMS)
			break;
		const char *name = json_string_value(json_object_get(vm, "name"));
		const char *backend = json_string_value(json_object_get(vm, "backend"));
		const char *console = json_string_value(json_object_get(vm, "console"));
		char def[512] = "-";
		if (!console && backend && strcmp(backend, "local") != 0 && sd)
			snprintf(def, sizeof(def), "%s/vm/%s/console.log", sd, name);
		snprintf(vmargs[i], sizeof(vmargs[i]), "%s:%zu:%s", name ? name : "?",
			 json_array_size(json_object_get(vm, "slots")), console ? console : def);
		args[k++] = "--vm";
		args[k++] = vmargs[i];
	}
	args[k] = NULL;
	cli_disconnect(c);
	fflush(stdout);
	execv(args[0], (char *const *)args);
	r = -errno;
	json_decref(res);
	fprintf(stderr, "orch dashboard: cannot run %s: %s\n", args[0], strerror(-r));
	return CLI_EXIT_ERROR;
}

const struct cli_cmd cmd_dashboard = {
	.name = "dashboard",
	.summary = "tmux dashboard: status, VM consoles, live output, debug shells",
	.run = run,
};
