/* SPDX-License-Identifier: Apache-2.0 */
/* orch agents [list] | install [--node SPEC] [--force] NAME[@VERSION]...|all |
 * remove NAME[@VERSION]...: the agent CLIs on this host (host/agents.h, docs/AGENTS.md).
 * Works on the agents directory directly (no orchd needed); install and remove need
 * root. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "cleanup.h"
#include "cli-ops.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: orch agents [--json] [--config FILE] [--dir DIR] [list]\n"
		"       orch agents [--dir DIR] install [--node SPEC] [--force] "
		"NAME[@VERSION]...|all\n"
		"       orch agents [--dir DIR] remove NAME[@VERSION]...\n"
		"The agent CLIs installed on this host, each from its official npm package with "
		"the\n"
		"Node.js it needs, in a versioned directory; tasks of the local backend and "
		"every VM\n"
		"use them (profiles name them with \"agent\"). install resolves VERSION (a "
		"version,\n"
		"a dist-tag or a range; default latest) with npm and makes it current; an "
		"upgrade\n"
		"never changes the files of a running task. --node: the Node.js line (default "
		"%s).\n"
		"remove NAME removes every version; NAME@VERSION one that is not current.\n"
		"DIR: --dir, else agents_dir of orchd's config FILE (default $ORCH_CONFIG), else\n"
		"$ORCH_AGENTS_DIR, else %s. Agents:",
		ORCH_AGENTS_NODE_DEFAULT, ORCH_AGENTS_DIR_DEFAULT);
	for (size_t i = 0; i < orch_agent_n_kinds; i++)
		fprintf(f, " %s (%s)%s", orch_agent_kinds[i].name, orch_agent_kinds[i].package,
			i + 1 < orch_agent_n_kinds ? "," : ".\n");
}

static void progress(const char *msg, void *data)
{
	fprintf(stderr, "orch agents: %s: %s\n", (const char *)data, msg);
}

/* "name@version" -> name (in buf) and version (NULL when absent). */
static int split(const char *arg, char *buf, size_t size, const char **ret_version)
{
	const char *at = strchr(arg, '@');
	size_t n = at ? (size_t)(at - arg) : strlen(arg);
	if (n == 0 || n >= size || (at && !at[1]))
		return -1;
	memcpy(buf, arg, n);
	buf[n] = 0;
	*ret_version = at ? at + 1 : NULL;
	return 0;
}

static int install(struct cli *c, const char *dir, int argc, char **argv)
{
	struct orch_agents_install_opts o = {.dir = dir, .progress = progress};
	static const struct option opts[] = {
		{"node", required_argument, NULL, 'n'},
		{"force", no_argument, NULL, 'f'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int opt, r, failed = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "n:fjh", opts, NULL)) != -1) {
		if (opt == 'n')
			o.node_spec = optarg;
		else if (opt == 'f')
			o.force = true;
		else if ((r = cli_common_opt(c, opt, usage)) != CLI_GO_ON)
			return r;
	}
	if (optind >= argc) {
		fprintf(stderr, "orch agents install: name the agents (or all)\n");
		return CLI_EXIT_USAGE;
	}
	/* Check every argument before installing anything. */
	for (int i = optind; i < argc; i++) {
		char name[64];
		const char *spec;
		if (strcmp(argv[i], "all") == 0)
			continue;
		if (split(argv[i], name, sizeof(name), &spec) < 0 || !orch_agent_kind_find(name)) {
			fprintf(stderr,
				"orch agents install: unknown agent '%s' (see orch agents "
				"--help)\n",
				argv[i]);
			return CLI_EXIT_USAGE;
		}
	}
	json_t *out = json_array();
	for (int i = optind; i < argc; i++) {
		char name[64], version[ORCH_AGENTS_VERSION_MAX + 1];
		const char *spec = NULL;
		bool all = strcmp(argv[i], "all") == 0, fresh;
		for (size_t k = 0; k < (all ? orch_agent_n_kinds : 1); k++) {
			const struct orch_agent_kind *kind;
			struct orch_error err = {0};
			if (all) {
				kind = &orch_agent_kinds[k];
			} else {
				split(argv[i], name, sizeof(name), &spec);
				kind = orch_agent_kind_find(name);
			}
			o.data = (void *)kind->name;
			r = orch_agents_install(&o, kind, spec, version, &fresh, &err);
			if (r < 0) {
				fprintf(stderr, "orch agents install: %s: %s\n", kind->name,
					err.msg);
				failed++;
				continue;
			}
			if (c->json)
				json_array_append_new(out, json_pack("{s:s, s:s, s:b}", "name",
								     kind->name, "version", version,
								     "installed", fresh));
			else
				printf("%s %s %s\n", kind->name, version,
				       fresh ? "installed, current" : "already installed, current");
		}
	}
	if (c->json)
		cli_print_json(out);
	json_decref(out);
	return failed ? CLI_EXIT_ERROR : 0;
}

static int remove_(struct cli *c, const char *dir, int argc, char **argv)
{
	int opt, r, failed = 0;
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	optind = 1;
	while ((opt = getopt_long(argc, argv, "jh", opts, NULL)) != -1)
		if ((r = cli_common_opt(c, opt, usage)) != CLI_GO_ON)
			return r;
	if (optind >= argc) {
		fprintf(stderr, "orch agents remove: name the agents\n");
		return CLI_EXIT_USAGE;
	}
	json_t *out = json_array();
	for (int i = optind; i < argc; i++) {
		char name[64];
		const char *version;
		struct orch_error err = {0};
		if (split(argv[i], name, sizeof(name), &version) < 0) {
			fprintf(stderr, "orch agents remove: bad argument '%s'\n", argv[i]);
			failed++;
			continue;
		}
		r = orch_agents_remove(dir, name, version, &err);
		if (r < 0) {
			fprintf(stderr, "orch agents remove: %s\n", err.msg);
			failed++;
		} else if (c->json) {
			json_array_append_new(
				out, json_pack("{s:s, s:s?}", "name", name, "version", version));
		} else {
			printf("%s%s%s removed\n", name, version ? " " : "",
			       version ? version : "");
		}
	}
	if (c->json)
		cli_print_json(out);
	json_decref(out);
	return failed ? CLI_EXIT_ERROR : 0;
}

static int list(struct cli *c, const char *dir)
{
	struct orch_agent_version *v = NULL;
	size_t n = 0;
	struct orch_error err = {0};
	if (orch_agents_list(dir, &v, &n, &err) < 0) {
		fprintf(stderr, "orch agents: %s\n", err.msg);
		return CLI_EXIT_ERROR;
	}
	if (c->json) {
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, orch_agent_version_json(&v[i]));
		json_t *j = json_pack("{s:s, s:o}", "dir", dir, "agents", a);
		cli_print_json(j);
		json_decref(j);
	} else if (n == 0) {
		printf("no agents installed in %s (orch agents install all)\n", dir);
	} else {
		printf("%-10s %-14s %-8s %-10s %s\n", "AGENT", "VERSION", "CURRENT", "NODE",
		       "INSTALLED");
		for (size_t i = 0; i < n; i++) {
			char when[32] = "-";
			time_t t = (time_t)v[i].installed_at;
			struct tm tm;
			if (t && gmtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
			printf("%-10s %-14s %-8s %-10s %s\n", v[i].name, v[i].version,
			       v[i].current ? "*" : "", v[i].node, when);
		}
	}
	free(v);
	return 0;
}

static int run(struct cli *c, int argc, char **argv)
{
	const char *config = getenv("ORCH_CONFIG"), *dir = NULL;
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"config", required_argument, NULL, 'c'},
		{"dir", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int opt, r;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+jc:d:h", opts, NULL)) != -1) {
		if (opt == 'c')
			config = optarg;
		else if (opt == 'd')
			dir = optarg;
		else if ((r = cli_common_opt(c, opt, usage)) != CLI_GO_ON)
			return r;
	}
	if (dir && dir[0] != '/') {
		fprintf(stderr, "orch agents: --dir must be an absolute path\n");
		return CLI_EXIT_USAGE;
	}
	const char *verb = optind < argc ? argv[optind] : "list";
	struct orchd_config *cfg = NULL;
	if (!dir && (r = cli_load_config("agents", config, &cfg)) != CLI_GO_ON)
		return r;
	_cleanup_free_ char *d = strdup(dir   ? dir
					: cfg ? cfg->agents_dir
					      : orch_agents_dir_default());
	orchd_config_free(cfg);
	if (!d)
		return CLI_EXIT_ERROR;
	if (strcmp(verb, "list") == 0) {
		if (optind + 1 < argc) {
			fprintf(stderr, "orch agents list: unexpected argument '%s'\n",
				argv[optind + 1]);
			return CLI_EXIT_USAGE;
		}
		return list(c, d);
	}
	if (strcmp(verb, "install") == 0)
		return install(c, d, argc - optind, argv + optind);
	if (strcmp(verb, "remove") == 0)
		return remove_(c, d, argc - optind, argv + optind);
	fprintf(stderr, "orch agents: unknown subcommand '%s' (list, install, remove)\n", verb);
	return CLI_EXIT_USAGE;
}

const struct cli_cmd cmd_agents = {
	.name = "agents",
	.summary = "install, list and remove the agent CLIs (npm)",
	.run = run,
};
