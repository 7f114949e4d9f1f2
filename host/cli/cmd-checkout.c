/* SPDX-License-Identifier: Apache-2.0 */
/* orch checkout ID: fetches a repository task's result branch into the clone in the
 * current directory (through a git bundle orchd makes; git fetch runs as the user). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"

extern char **environ;

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch checkout [--branch NAME] [--json] ID\n"
		   "Fetches the result of repository task ID (branch orch/task-ID) into the git\n"
		   "repository of the current directory, as branch NAME (default orch/task-ID).\n"
		   "The repository needs the commit the task started from (a clone of the same\n"
		   "upstream has it). Nothing is checked out over your work: switch with\n"
		   "`git switch NAME`.\n");
}

static int put(const void *data, size_t len, void *arg)
{
	int fd = *(int *)arg;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"branch", required_argument, NULL, 'b'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *branch = NULL;
	char bname[64], tmp[] = "/tmp/orch-checkout.XXXXXX", refspec[600];
	int64_t id;
	int o, r;

	optind = 1;
	while ((o = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
		if (o == 'b') {
			branch = optarg;
			continue;
		}
		r = cli_common_opt(c, o, usage);
		if (r != CLI_GO_ON)
			return r;
	}
	if (optind + 1 != argc || cli_parse_id(argv[optind], &id) < 0) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	snprintf(bname, sizeof(bname), "orch/task-%lld", (long long)id);
	if (!branch)
		branch = bname;
	if (branch[0] == '-' || strchr(branch, ':') || strlen(branch) > 255) {
		fprintf(stderr, "orch checkout: bad branch name '%s'\n", branch);
		return CLI_EXIT_USAGE;
	}
	_cleanup_close_ int fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "orch checkout: cannot create a temporary file: %s\n",
			strerror(errno));
		return CLI_EXIT_ERROR;
	}
	r = cli_result_file(c, "task.bundle", id, put, &fd, NULL);
	if (r) {
		unlink(tmp);
		return r;
	}
	snprintf(refspec, sizeof(refspec), "refs/heads/orch/task-%lld:refs/heads/%s", (long long)id,
		 branch);
	char *gargv[] = {"git", "fetch", "--quiet", "--no-tags", "--", tmp, refspec, NULL};
	pid_t pid;
	int st = 0;
	if ((r = posix_spawnp(&pid, "git", NULL, NULL, gargv, environ)) != 0) {
		fprintf(stderr, "orch checkout: cannot run git: %s\n", strerror(r));
		unlink(tmp);
		return CLI_EXIT_ERROR;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	unlink(tmp);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "orch checkout: git fetch failed (is this a clone of the task's "
				"repository, with the commit it started from?)\n");
		return CLI_EXIT_ERROR;
	}
	if (c->json) {
		json_t *j = json_pack("{sIss}", "id", (json_int_t)id, "branch", branch);
		cli_print_json(j);
		json_decref(j);
	} else {
		printf("fetched the result of task %lld as branch %s\n", (long long)id, branch);
	}
	return 0;
}

const struct cli_cmd cmd_checkout = {
	.name = "checkout",
	.summary = "fetch a repository task's result branch into this clone",
	.run = run,
};
