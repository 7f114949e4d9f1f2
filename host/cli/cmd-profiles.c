/* SPDX-License-Identifier: Apache-2.0 */
/* orch profiles [list] | show NAME [--prompt TEXT] | dispatch NAME --prompt TEXT [...]:
 * the agent profiles (shipped and from orchd's config), the exact task a profile
 * generates, and dispatching it through `orch dispatch`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agents.h"
#include "cleanup.h"
#include "cli-ops.h"
#include "profile.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch profiles [--json] [--config FILE] [--dir DIR] [list]\n"
		"       orch profiles [--json] [--config FILE] [--dir DIR] show NAME "
		"[--prompt TEXT]\n"
		"Lists the agent profiles (shipped ones and `profiles` of orchd's config "
		"FILE,\n"
		"default $ORCH_CONFIG), or shows one with the command and environment it "
		"generates\n"
		"for a prompt. DIR: shipped profiles (default: $ORCH_PROFILES_DIR, else "
		"%s).\n"
		"See docs/PROFILES.md.\n",
		orch_profiles_default_dir());
}

/* Prints s quoted for a POSIX shell when it needs it. */
static void put_quoted(const char *s)
{
	if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
			    "_-./=:,+@%") == strlen(s)) {
		fputs(s, stdout);
		return;
	}
	putchar('\'');
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	putchar('\'');
}

static json_t *strv_json(char **v)
{
	json_t *a = json_array();
	for (; a && v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static int show(struct cli *c, const struct orch_profile *p, const char *agents_dir,
		const char *prompt)
{
	struct orch_error err = {0};
	struct orch_profile_cmd cmd = {0};
	if (orch_profile_command(p, agents_dir, prompt ? prompt : "PROMPT", NULL, &cmd, &err) < 0) {
		fprintf(stderr, "orch profiles: %s\n", err.msg);
		return CLI_EXIT_USAGE;
	}
	if (c->json) {
		json_t *j = json_pack("{s:o, s:o, s:o, s:o}", "profile", orch_profile_to_json(p),
				      "argv", strv_json(cmd.argv), "env", strv_json(cmd.env),
				      "ro_paths", strv_json(cmd.ro_paths));
		cli_print_json(j);
		json_decref(j);
		orch_profile_cmd_done(&cmd);
		return 0;
	}
	printf("name         %s (%s)\n", p->name, p->from_config ? "config" : "shipped");
	printf("description  %s\n", p->description);
	const struct orchd_limits *l = &p->limits;
	printf("limits       timeout_ms=%lld memory_mib=%lld pids=%lld cpu_percent=%lld\n",
	       (long long)l->timeout_ms, (long long)l->memory_mib, (long long)l->pids,
	       (long long)l->cpu_percent);
	if (p->agent)
		printf("agent        %s (installed in %s/%s, `orch agents`)\n", p->agent,
		       agents_dir, p->agent);
	for (size_t i = 0; cmd.ro_paths[i]; i++)
		printf("ro_path      %s\n", cmd.ro_paths[i]);
	for (size_t i = 0; i < p->n_files; i++)
		printf("file         $HOME/%s (%zu bytes)\n", p->files[i].path,
		       strlen(p->files[i].content));
	printf("\nenvironment:\n");
	for (char **e = cmd.env; *e; e++) {
		if (!strncmp(*e, "ORCH_FILE_", 10) && strstr(*e, "_DATA="))
			continue; /* the file contents, listed above */
		printf("  ");
		put_quoted(*e);
		putchar('\n');
	}
	printf("\ncommand%s:\n ", p->n_files ? " (the /bin/sh -c writer creates the files, then "
					       "execs the agent)"
					     : "");
	/* The writer script is long; show it by name. */
	for (size_t i = 0; cmd.argv[i]; i++) {
		putchar(' ');
		if (p->n_files && i == 2)
			fputs("<writer>", stdout);
		else
			put_quoted(cmd.argv[i]);
	}
	putchar('\n');
	orch_profile_cmd_done(&cmd);
	return 0;
}

/* Runs `orch dispatch` with the profile's task: pass (NULL-terminated) goes first, then
 * the profile's timeout unless pass has one, its environment and -- argv. A profile with
 * read-only paths or an installed agent is dispatched as orchd's profile of that name
 * instead (`--profile NAME --prompt TEXT`): a client may not choose host paths for a
 * jail, only orchd's configuration can. */
static int dispatch(struct cli *c, const struct orch_profile *p, const char *prompt, char **pass,
		    int n_pass)
{
	struct orch_error err = {0};
	struct orch_profile_cmd cmd = {0};
	bool by_name = p->n_ro_paths > 0 || p->agent;
	size_t n_env = 0, n_argv = 0;
	if (!by_name) {
		if (orch_profile_command(p, NULL, prompt, NULL, &cmd, &err) < 0) {
			fprintf(stderr, "orch profiles: %s\n", err.msg);
			return CLI_EXIT_USAGE;
		}
		while (cmd.env[n_env])
			n_env++;
		while (cmd.argv[n_argv])
			n_argv++;
	}
	bool has_timeout = false;
	for (int i = 0; i < n_pass; i++)
		has_timeout |= !strcmp(pass[i], "--timeout") || !strncmp(pass[i], "--timeout=", 10);
	const char **args = calloc((size_t)n_pass + 2 * n_env + n_argv + 16, sizeof(char *));
	char self[4096], timeout[64];
	if (!args || cli_self_path(self, sizeof(self)) < 0) {
		free(args);
		orch_profile_cmd_done(&cmd);
		fprintf(stderr, "orch profiles: cannot run orch dispatch\n");
		return CLI_EXIT_ERROR;
	}
	size_t k = 0;
	args[k++] = self;
	args[k++] = "--socket";
	args[k++] = c->socket;
	if (c->json)
		args[k++] = "--json";
	args[k++] = "dispatch";
	for (int i = 0; i < n_pass; i++)
		args[k++] = pass[i];
	if (by_name) {
		args[k++] = "--profile";
		args[k++] = p->name;
		args[k++] = "--prompt";
		args[k++] = prompt;
	} else {
		if (!has_timeout && p->limits.timeout_ms > 0) {
			snprintf(timeout, sizeof(timeout), "%lldms",
				 (long long)p->limits.timeout_ms);
			args[k++] = "--timeout";
			args[k++] = timeout;
		}
		for (size_t i = 0; i < n_env; i++) {
			args[k++] = "--env";
			args[k++] = cmd.env[i];
		}
		args[k++] = "--";
		for (size_t i = 0; i < n_argv; i++)
			args[k++] = cmd.argv[i];
	}
	args[k] = NULL;
	fflush(stdout);
	execv(self, (char *const *)args);
	fprintf(stderr, "orch profiles: cannot run %s: %s\n", self, strerror(errno));
	free(args);
	orch_profile_cmd_done(&cmd);
	return CLI_EXIT_ERROR;
}

static int run(struct cli *c, int argc, char **argv)
{
	const char *config = getenv("ORCH_CONFIG"), *dir = NULL, *prompt = NULL;
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},      {"config", required_argument, NULL, 'c'},
		{"dir", required_argument, NULL, 'd'}, {"prompt", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},      {0},
	};
	int o, r;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+jc:d:p:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			config = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'p':
			prompt = optarg;
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	const char *verb = optind < argc ? argv[optind++] : "list";
	const char *name = NULL;
	_cleanup_free_ char **pass = NULL;
	int n_pass = 0;
	if (!strcmp(verb, "show")) {
		if (optind >= argc) {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
		name = argv[optind++];
		while ((o = getopt_long(argc, argv, "jp:", opts, NULL)) != -1) {
			if (o == 'j')
				c->json = true;
			else if (o == 'p')
				prompt = optarg;
			else
				return CLI_EXIT_USAGE;
		}
	} else if (!strcmp(verb, "dispatch")) {
		if (optind >= argc) {
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
		name = argv[optind++];
		/* Everything but --prompt goes to orch dispatch. */
		n_pass = 0;
		pass = calloc((size_t)argc + 1, sizeof(char *));
		if (!pass)
			return CLI_EXIT_ERROR;
		for (int i = optind; i < argc; i++) {
			if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
				prompt = argv[++i];
			else if (!strncmp(argv[i], "--prompt=", 9))
				prompt = argv[i] + 9;
			else
				pass[n_pass++] = argv[i];
		}
		optind = argc;
		if (!prompt) {
			fprintf(stderr, "orch profiles dispatch: --prompt TEXT is required\n");
			return CLI_EXIT_USAGE;
		}
	} else if (strcmp(verb, "list") != 0) {
		fprintf(stderr, "orch profiles: unknown subcommand '%s'\n", verb);
		return CLI_EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "orch profiles: unexpected argument '%s'\n", argv[optind]);
		return CLI_EXIT_USAGE;
	}

	struct orch_error err = {0};
	struct orchd_config *cfg;
	r = cli_load_config("profiles", config, &cfg);
	if (r != CLI_GO_ON)
		return r;
	struct orch_profiles ps = {0};
	_cleanup_free_ char *agents_dir = strdup(cfg ? cfg->agents_dir : orch_agents_dir_default());
	r = agents_dir ? orch_profiles_load(&ps, dir, cfg, &err)
		       : orch_err(&err, -ENOMEM, "out of memory");
	orchd_config_free(cfg);
	if (r < 0) {
		fprintf(stderr, "orch profiles: %s\n", err.msg);
		return CLI_EXIT_ERROR;
	}
	if (name) {
		const struct orch_profile *p = orch_profiles_find(&ps, name);
		if (!p) {
			fprintf(stderr,
				"orch profiles: no profile named '%s' (see orch profiles)\n", name);
			orch_profiles_done(&ps);
			return CLI_EXIT_NOT_FOUND;
		}
		r = pass ? dispatch(c, p, prompt, pass, n_pass) : show(c, p, agents_dir, prompt);
		orch_profiles_done(&ps);
		return r;
	}
	if (c->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < ps.n; i++)
			json_array_append_new(a, orch_profile_to_json(&ps.v[i]));
		cli_print_json(a);
		json_decref(a);
	} else {
		printf("%-12s %-8s %s\n", "PROFILE", "SOURCE", "DESCRIPTION");
		for (size_t i = 0; i < ps.n; i++)
			printf("%-12s %-8s %s\n", ps.v[i].name,
			       ps.v[i].from_config ? "config" : "shipped", ps.v[i].description);
	}
	orch_profiles_done(&ps);
	return 0;
}

const struct cli_cmd cmd_profiles = {
	.name = "profiles",
	.summary = "list agent profiles, show the task one generates",
	.run = run,
};
