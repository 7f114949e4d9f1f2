/* SPDX-License-Identifier: Apache-2.0 */
/* orch shell VM AGENT: an interactive shell inside agent AGENT's jail, through socat.
 * Every debug shell goes through orchd (host/control/shell-relay.c), which checks the caller as
 * the control socket does and relays to the VM on whatever transport it uses. The socket
 * comes from orchd's `status` (the VM's "shell" array, one "unix:/PATH" per slot), else
 * the convention <state_dir>/shell/VM/agent-AGENT.sock. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch shell [--print] [--address ADDR] [--wait SECONDS] VM AGENT\n"
		   "Opens a shell inside agent AGENT's jail in VM (same uid, mounts, "
		   "namespaces,\n"
		   "seccomp filter and limits as its tasks) by running socat on this terminal.\n"
		   "Ctrl-] quits; closing the connection ends the shell and everything it "
		   "started.\n"
		   "  --print         print the socat command instead of running it\n"
		   "  --address ADDR  connect to ADDR (unix:/PATH) without asking orchd\n"
		   "  --wait SECONDS  wait this long for a booting VM to be ready (default 300)\n"
		   "Raw equivalent: socat -,raw,echo=0,escape=0x1d "
		   "UNIX-CONNECT:STATE_DIR/shell/VM/agent-AGENT.sock\n"
		   "(root and members of orchd's group only, as for the control socket).\n");
}

/* "unix:/p" -> "UNIX-CONNECT:/p". */
static int socat_address(const char *addr, char *buf, size_t len)
{
	if (!strncmp(addr, "unix:/", 6))
		return snprintf(buf, len, "UNIX-CONNECT:%s", addr + 5) < (int)len ? 0
										  : -ENAMETOOLONG;
	return -EINVAL;
}

static int lookup(struct cli *c, const char *vm_name, long agent, char *addr, size_t len,
		  char *state, size_t state_len)
{
	json_t *res = NULL, *vm, *found = NULL;
	size_t i;
	int r = cli_call(c, "status", NULL, 30000, &res);
	if (r)
		return r;
	json_array_foreach(json_object_get(res, "vms"), i, vm)
	{
		if (json_is_string(json_object_get(vm, "name")) &&
		    !strcmp(json_string_value(json_object_get(vm, "name")), vm_name))
			found = vm;
	}
	if (!found) {
		fprintf(stderr, "orch shell: no VM named '%s' (see orch status)\n", vm_name);
		json_decref(res);
		return CLI_EXIT_NOT_FOUND;
	}
	size_t n_slots = json_array_size(json_object_get(found, "slots"));
	if (agent < 0 || (size_t)agent >= n_slots) {
		fprintf(stderr, "orch shell: VM %s has agents 0..%zu\n", vm_name,
			n_slots ? n_slots - 1 : 0);
		json_decref(res);
		return CLI_EXIT_NOT_FOUND;
	}
	json_t *shells = json_object_get(found, "shell");
	const char *sd = json_string_value(json_object_get(res, "state_dir"));
	const char *st = json_string_value(json_object_get(found, "state"));
	snprintf(state, state_len, "%s", st ? st : "unknown");
	if (json_is_string(json_array_get(shells, (size_t)agent)))
		snprintf(addr, len, "%s", json_string_value(json_array_get(shells, (size_t)agent)));
	else
		snprintf(addr, len, "unix:%s/shell/%s/agent-%ld.sock", sd ? sd : "/var/lib/orch",
			 vm_name, agent);
	json_decref(res);
	return 0;
}

/* Waits until the VM is ready (its supervisor serves the shells), with a spinner on a
 * terminal and one line otherwise. */
static int wait_ready(struct cli *c, const char *vm, long agent, char *addr, size_t len,
		      char *state, size_t state_len, long wait_s)
{
	static const char spin[] = "|/-\\";
	bool tty = isatty(2);
	if (!tty)
		fprintf(stderr, "orch shell: VM %s is %s; waiting up to %lds for it to be ready\n",
			vm, state, wait_s);
	for (long i = 0; strcmp(state, "ready") != 0; i++) {
		if (i >= wait_s * 4) {
			if (tty)
				fprintf(stderr, "\r\033[K");
			fprintf(stderr,
				"orch shell: VM %s is still %s after %lds (see orch status, "
				"orch vm console %s)\n",
				vm, state, wait_s, vm);
			return CLI_EXIT_ERROR;
		}
		if (tty)
			fprintf(stderr, "\r%c waiting for VM %s (%s) %lds", spin[i % 4], vm, state,
				i / 4);
		cli_sleep_ms(250);
		int r = lookup(c, vm, agent, addr, len, state, state_len);
		if (r)
			return r;
	}
	if (tty)
		fprintf(stderr, "\r\033[K");
	return 0;
}

static int run(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"print", no_argument, NULL, 'p'}, {"address", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},  {"wait", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},  {0},
	};
	bool print = false;
	long wait_s = 300;
	const char *address = NULL;
	int o, r;
	optind = 1;
	while ((o = getopt_long(argc, argv, "pa:jw:h", opts, NULL)) != -1) {
		switch (o) {
		case 'w': {
			char *e;
			wait_s = strtol(optarg, &e, 10);
			if (*e || e == optarg || wait_s < 0 || wait_s > 3600) {
				fprintf(stderr, "orch shell: --wait takes 0..3600 seconds\n");
				return CLI_EXIT_USAGE;
			}
			break;
		}
		case 'p':
			print = true;
			break;
		case 'a':
			address = optarg;
			break;
		default:
			r = cli_common_opt(c, o, usage);
			if (r != CLI_GO_ON)
				return r;
			break;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	char *end;
	long agent = strtol(argv[optind + 1], &end, 10);
	if (*end || end == argv[optind + 1] || agent < 0 || agent > 63) {
		fprintf(stderr, "orch shell: AGENT must be a slot number 0..63\n");
		return CLI_EXIT_USAGE;
	}
	char addr[512], sa[560], state[32] = "ready";
	if (address)
		snprintf(addr, sizeof(addr), "%s", address);
	else {
		r = lookup(c, argv[optind], agent, addr, sizeof(addr), state, sizeof(state));
		if (!r && !print && !c->json && strcmp(state, "ready") != 0)
			r = wait_ready(c, argv[optind], agent, addr, sizeof(addr), state,
				       sizeof(state), wait_s);
		if (r)
			return r;
	}
	if (socat_address(addr, sa, sizeof(sa)) < 0) {
		fprintf(stderr,
			"orch shell: cannot use shell address '%s' (expected unix:/PATH: "
			"orchd's socket for that agent)\n",
			addr);
		return CLI_EXIT_USAGE;
	}
	bool tty = isatty(0) && isatty(1);
	const char *local = tty ? "-,raw,echo=0,escape=0x1d" : "-";
	if (c->json) {
		json_t *j = json_pack("{s:s, s:s, s:[s, s, s]}", "vm", argv[optind], "address",
				      addr, "argv", "socat", local, sa);
		cli_print_json(j);
		json_decref(j);
		return 0;
	}
	if (print) {
		printf("socat %s %s\n", local, sa);
		return 0;
	}
	if (!strncmp(addr, "unix:", 5)) {
		struct stat st;
		if (stat(addr + 5, &st) < 0 && errno == EACCES) {
			fprintf(stderr,
				"orch shell: permission denied on %s: debug shells are for root "
				"and members of orchd's group\n",
				addr + 5);
			return CLI_EXIT_NO_DAEMON;
		}
		if (stat(addr + 5, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			fprintf(stderr,
				"orch shell: no debug shell listens at %s (is VM %s up? see orch "
				"status)\n",
				addr + 5, argv[optind]);
			return CLI_EXIT_ERROR;
		}
	}
	cli_disconnect(c);
	if (tty)
		fprintf(stderr, "orch: shell of agent %ld in VM %s; Ctrl-] quits\r\n", agent,
			argv[optind]);
	execlp("socat", "socat", local, sa, (char *)NULL);
	fprintf(stderr, "orch shell: cannot run socat: %s (apt-get install socat)\n",
		strerror(errno));
	return CLI_EXIT_ERROR;
}

const struct cli_cmd cmd_shell = {
	.name = "shell",
	.summary = "open a shell inside an agent's jail (through socat)",
	.run = run,
};
