/* SPDX-License-Identifier: Apache-2.0 */
/* orch: the command-line client of orchd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "orch-config.h"

#define DEFAULT_SOCKET "/run/orch/orch.sock"

/* The operator verbs (host/cli/cmd-{shell,dashboard,profiles,doctor,agents}.c). */
extern const struct cli_cmd cmd_shell, cmd_dashboard, cmd_profiles, cmd_doctor, cmd_agents;

static const struct cli_cmd *const cmd_table[] = {
	&cmd_dispatch, &cmd_status, &cmd_tasks, &cmd_result,	&cmd_logs,     &cmd_cancel,
	&cmd_vm,       &cmd_budget, &cmd_shell, &cmd_dashboard, &cmd_profiles, &cmd_doctor,
	&cmd_egress,   &cmd_agents, &cmd_diff,	&cmd_checkout,	&cmd_push,     &cmd_workspaces,
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch [--socket PATH] [--json] COMMAND [ARGS...]\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ELEMENTSOF(cmd_table); i++)
		fprintf(f, "  %-10s %s\n", cmd_table[i]->name, cmd_table[i]->summary);
	fprintf(f,
		"\nGlobal options:\n"
		"  -s, --socket PATH  orchd's control socket (default: $ORCH_SOCKET, else %s)\n"
		"  -j, --json         machine-readable output\n"
		"  -h, --help         this text; `orch COMMAND --help` for a command\n"
		"  -V, --version      print the version\n"
		"\nExit codes: 0 ok, 1 orchd reported an error, 2 usage, 3 orchd unreachable,\n"
		"4 no such task; dispatch --wait and result exit with the task's code\n"
		"(see docs/CLI.md).\n",
		DEFAULT_SOCKET);
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	const char *env = getenv("ORCH_SOCKET");
	int i, r;

	c.socket = env && *env ? env : DEFAULT_SOCKET;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "--socket") == 0 || strcmp(a, "-s") == 0) && i + 1 < argc)
			c.socket = argv[++i];
		else if (strncmp(a, "--socket=", 9) == 0)
			c.socket = a + 9;
		else if (strcmp(a, "--json") == 0 || strcmp(a, "-j") == 0)
			c.json = true;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("orch %s\n", ORCH_VERSION);
			return 0;
		} else if (a[0] == '-') {
			fprintf(stderr, "orch: unknown option '%s'\n", a);
			usage(stderr);
			return CLI_EXIT_USAGE;
		} else
			break;
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	for (size_t k = 0; k < ELEMENTSOF(cmd_table); k++)
		if (strcmp(cmd_table[k]->name, argv[i]) == 0) {
			r = cmd_table[k]->run(&c, argc - i, argv + i);
			cli_disconnect(&c);
			return r;
		}
	fprintf(stderr, "orch: unknown command '%s' (see orch --help)\n", argv[i]);
	return CLI_EXIT_USAGE;
}
