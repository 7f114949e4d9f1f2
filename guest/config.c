/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "transport.h"

static void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static const char *const default_ro_paths[] = {
	"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc",
};

void sv_config_init(struct sv_config *c)
{
	*c = (struct sv_config){
		.slots = 1,
		.uid_base = SV_DEFAULT_UID_BASE,
		.heartbeat_ms = SV_DEFAULT_HEARTBEAT_MS,
		.output_buffer = SV_DEFAULT_OUTPUT_BUFFER,
		.output_chunk = SV_DEFAULT_OUTPUT_CHUNK,
		.kill_grace_ms = SV_DEFAULT_KILL_GRACE_MS,
		.limits = {.nofile = SV_DEFAULT_NOFILE},
		.llm_port = SV_DEFAULT_LLM_PORT,
		.egress_port = SV_DEFAULT_EGRESS_PORT,
	};
	c->connect = strdup(SV_DEFAULT_CONNECT);
	c->workspace_root = strdup(SV_DEFAULT_WORKSPACE_ROOT);
	c->cgroup_name = strdup("orch");
	for (size_t i = 0; i < ELEMENTSOF(default_ro_paths); i++)
		c->ro_paths[c->n_ro_paths++] = strdup(default_ro_paths[i]);
}

static void clear_ro_paths(struct sv_config *c)
{
	for (size_t i = 0; i < c->n_ro_paths; i++)
		free(c->ro_paths[i]);
	c->n_ro_paths = 0;
}

void sv_config_done(struct sv_config *c)
{
	clear_ro_paths(c);
	free(c->connect);
	free(c->workspace_root);
	free(c->bwrap);
	free(c->exec_helper);
	free(c->cgroup_name);
	free(c->shell_listen);
	free(c->llm_connect);
	free(c->egress_connect);
	*c = (struct sv_config){0};
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);
	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int check_abs_path(const char *what, const char *p, struct orch_error *err)
{
	if (p[0] != '/' || strlen(p) >= PATH_MAX || strstr(p, "/../") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
		return orch_err(err, -EINVAL, "%s '%s' must be an absolute path without '..'", what,
				p);
	return 0;
}

static int add_ro_path(struct sv_config *c, const char *p, struct orch_error *err)
{
	int r = check_abs_path("read-only path", p, err);
	if (r < 0)
		return r;
	if (c->n_ro_paths >= SV_MAX_RO_PATHS)
		return orch_err(err, -E2BIG, "too many read-only paths (at most %d)",
				SV_MAX_RO_PATHS);
	c->ro_paths[c->n_ro_paths] = strdup(p);
	if (!c->ro_paths[c->n_ro_paths])
		return -ENOMEM;
	c->n_ro_paths++;
	return 0;
}

/* "123", "64K", "512M", "2G" (binary units). */
static int parse_size(const char *what, const char *s, int64_t *ret, struct orch_error *err)
{
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return orch_err(err, -EINVAL, "%s: '%s' is not a number", what, s);
	unsigned shift = 0;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		end++;
		break;
	case 'm':
	case 'M':
		shift = 20;
		end++;
		break;
	case 'g':
	case 'G':
		shift = 30;
		end++;
		break;
	default:
		break;
	}
	if (*end)
		return orch_err(err, -EINVAL, "%s: trailing garbage in '%s'", what, s);
	if (v > (unsigned long long)INT64_MAX >> shift)
		return orch_err(err, -ERANGE, "%s: '%s' is too large", what, s);
	*ret = (int64_t)(v << shift);
	return 0;
}

static int parse_range(const char *what, const char *s, int64_t min, int64_t max, int64_t *ret,
		       struct orch_error *err)
{
	int64_t v = 0;
	int r = parse_size(what, s, &v, err);
	if (r < 0)
		return r;
	if (v < min || v > max)
		return orch_err(err, -ERANGE, "%s must be in %" PRId64 "..%" PRId64 ", not %s",
				what, min, max, s);
	*ret = v;
	return 0;
}

static int check_int(const char *what, json_int_t v, int64_t min, int64_t max,
		     struct orch_error *err)
{
	if (v < min || v > max)
		return orch_err(err, -ERANGE, "%s must be in %" PRId64 "..%" PRId64 ", not %lld",
				what, min, max, (long long)v);
	return 0;
}

static int load_limits(struct orch_limits *l, json_t *o, struct orch_error *err)
{
	json_error_t jerr;
	json_int_t mem = l->memory_bytes, pids = l->pids, cpu = l->cpu_percent, nofile = l->nofile,
		   fsize = l->fsize_bytes;
	if (json_unpack_ex(o, &jerr, JSON_STRICT, "{s?I s?I s?I s?I s?I}", "memory_bytes", &mem,
			   "pids", &pids, "cpu_percent", &cpu, "nofile", &nofile, "fsize_bytes",
			   &fsize) < 0)
		return orch_err(err, -EINVAL, "config: limits: %s", jerr.text);
	int r;
	if ((r = check_int("limits.memory_bytes", mem, 0, INT64_MAX, err)) < 0 ||
	    (r = check_int("limits.pids", pids, 0, 1 << 22, err)) < 0 ||
	    (r = check_int("limits.cpu_percent", cpu, 0, 100 * 1024, err)) < 0 ||
	    (r = check_int("limits.nofile", nofile, 0, 1 << 20, err)) < 0 ||
	    (r = check_int("limits.fsize_bytes", fsize, 0, INT64_MAX, err)) < 0)
		return r;
	*l = (struct orch_limits){mem, pids, cpu, nofile, fsize};
	return 0;
}

int sv_config_load_json(struct sv_config *c, const char *text, size_t len, struct orch_error *err)
{
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return orch_err(err, -EINVAL, "config: line %d: %s", jerr.line, jerr.text);

	const char *connect = NULL, *ws = NULL, *bwrap = NULL, *helper = NULL, *cgname = NULL,
		   *level = NULL, *shell = NULL, *llm_connect = NULL, *egress_connect = NULL;
	json_int_t llm_port = c->llm_port, egress_port = c->egress_port;
	json_int_t slots = c->slots, uid_base = c->uid_base, hb = (json_int_t)c->heartbeat_ms,
		   obuf = (json_int_t)c->output_buffer, ochunk = (json_int_t)c->output_chunk,
		   grace = (json_int_t)c->kill_grace_ms;
	json_t *ro = NULL, *limits = NULL;
	int no_seccomp = c->no_seccomp;
	if (json_unpack_ex(
		    root, &jerr, JSON_STRICT,
		    "{s?s s?I s?I s?s s?o s?o s?I s?I s?I s?I s?s s?s s?s s?s s?b s?I s?s s?s s?I "
		    "s?s}",
		    "connect", &connect, "slots", &slots, "uid_base", &uid_base, "workspace_root",
		    &ws, "ro_paths", &ro, "limits", &limits, "heartbeat_ms", &hb,
		    "output_buffer_bytes", &obuf, "output_chunk_bytes", &ochunk, "kill_grace_ms",
		    &grace, "bwrap", &bwrap, "exec_helper", &helper, "cgroup_name", &cgname,
		    "log_level", &level, "no_seccomp", &no_seccomp, "llm_port", &llm_port,
		    "shell_listen", &shell, "llm_connect", &llm_connect, "egress_port",
		    &egress_port, "egress_connect", &egress_connect) < 0)
		return orch_err(err, -EINVAL, "config: %s", jerr.text);

	int r;
	if ((r = check_int("slots", slots, 1, ORCH_MAX_SLOTS, err)) < 0 ||
	    (r = check_int("uid_base", uid_base, 1000, 4294000000LL, err)) < 0 ||
	    (r = check_int("heartbeat_ms", hb, 100, 600000, err)) < 0 ||
	    (r = check_int("output_buffer_bytes", obuf, 4096, 1 << 30, err)) < 0 ||
	    (r = check_int("output_chunk_bytes", ochunk, 512, ORCH_MAX_OUTPUT_CHUNK, err)) < 0 ||
	    (r = check_int("kill_grace_ms", grace, 0, 600000, err)) < 0 ||
	    (r = check_int("llm_port", llm_port, 0, 65535, err)) < 0 ||
	    (r = check_int("egress_port", egress_port, 0, 65535, err)) < 0)
		return r;
	if (ro && !json_is_array(ro))
		return orch_err(err, -EINVAL, "config: ro_paths must be an array of strings");
	if (limits && !json_is_object(limits))
		return orch_err(err, -EINVAL, "config: limits must be an object");
	if (ws && (r = check_abs_path("workspace_root", ws, err)) < 0)
		return r;
	enum orch_log_level lvl = orch_log_level;
	if (level && orch_log_level_parse(level, &lvl) < 0)
		return orch_err(err, -EINVAL, "config: log_level '%s' is not error|warn|info|debug",
				level);

	/* Everything validated that can fail without side effects; apply. */
	struct orch_limits lim = c->limits;
	if (limits && (r = load_limits(&lim, limits, err)) < 0)
		return r;
	if (ro) {
		size_t i;
		json_t *v;
		if (json_array_size(ro) > SV_MAX_RO_PATHS)
			return orch_err(err, -E2BIG, "config: too many ro_paths (at most %d)",
					SV_MAX_RO_PATHS);
		json_array_foreach(ro, i, v)
		{
			if (!json_is_string(v))
				return orch_err(err, -EINVAL,
						"config: ro_paths[%zu] is not a string", i);
			if ((r = check_abs_path("ro_paths entry", json_string_value(v), err)) < 0)
				return r;
		}
		clear_ro_paths(c);
		json_array_foreach(ro, i, v) if ((r = add_ro_path(c, json_string_value(v), err)) <
						 0) return r;
	}
	if ((connect && (r = set_str(&c->connect, connect)) < 0) ||
	    (ws && (r = set_str(&c->workspace_root, ws)) < 0) ||
	    (bwrap && (r = set_str(&c->bwrap, bwrap)) < 0) ||
	    (helper && (r = set_str(&c->exec_helper, helper)) < 0) ||
	    (cgname && (r = set_str(&c->cgroup_name, cgname)) < 0) ||
	    (shell && (r = set_str(&c->shell_listen, shell)) < 0) ||
	    (llm_connect && (r = set_str(&c->llm_connect, llm_connect)) < 0) ||
	    (egress_connect && (r = set_str(&c->egress_connect, egress_connect)) < 0))
		return orch_errno(err, r, "config");
	c->llm_port = (unsigned)llm_port;
	c->egress_port = (unsigned)egress_port;
	c->slots = (unsigned)slots;
	c->uid_base = (uid_t)uid_base;
	c->heartbeat_ms = (uint64_t)hb;
	c->output_buffer = (size_t)obuf;
	c->output_chunk = (size_t)ochunk;
	c->kill_grace_ms = (uint64_t)grace;
	c->limits = lim;
	c->no_seccomp = no_seccomp;
	orch_log_level = lvl;
	return 0;
}

#define SV_CONFIG_FILE_MAX (1024 * 1024)

int sv_config_load_file(struct sv_config *c, const char *path, struct orch_error *err)
{
	_cleanup_(fclosep) FILE *f = fopen(path, "re");
	if (!f)
		return orch_errno(err, -errno, "cannot open config file %s", path);
	_cleanup_free_ char *buf = malloc(SV_CONFIG_FILE_MAX + 1);
	if (!buf)
		return -ENOMEM;
	size_t n = fread(buf, 1, SV_CONFIG_FILE_MAX + 1, f);
	if (ferror(f))
		return orch_errno(err, -EIO, "cannot read config file %s", path);
	if (n > SV_CONFIG_FILE_MAX)
		return orch_err(err, -EFBIG, "config file %s is larger than %d bytes", path,
				SV_CONFIG_FILE_MAX);
	int r = sv_config_load_json(c, buf, n, err);
	if (r < 0)
		return orch_err_prefix(err, "%s", path);
	return 0;
}

void sv_limits_merge(const struct orch_limits *cfg, const struct orch_limits *task,
		     struct orch_limits *ret)
{
#define MERGE(f) ret->f = !task->f ? cfg->f : (cfg->f && cfg->f < task->f ? cfg->f : task->f)
	MERGE(memory_bytes);
	MERGE(pids);
	MERGE(cpu_percent);
	MERGE(nofile);
	MERGE(fsize_bytes);
#undef MERGE
}

void sv_config_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s [OPTIONS]\n"
		"Runs agents in bubblewrap jails and serves one host channel (orch guest side).\n"
		"\n"
		"  --connect ADDR         host channel: fd:N, unix:/path, vsock:CID:PORT,\n"
		"                         hvsock:/path:PORT, serial:/dev/... (default %s)\n"
		"  --config FILE          JSON configuration (strict); flags override it\n"
		"  --slots N              agent slots 1..%d (default 1)\n"
		"  --uid-base UID         agent N runs as uid/gid UID+N (default %d)\n"
		"  --workspace-root DIR   agent N's workspace is DIR/agent-N (default %s)\n"
		"  --ro-path PATH         read-only path offered to jails; repeatable, the first\n"
		"                         replaces the default list (/usr /bin /sbin /lib /lib32\n"
		"                         /lib64 /etc; missing ones are skipped)\n"
		"  --memory BYTES         memory limit per task (K/M/G suffixes; 0: none)\n"
		"  --pids N               process limit per task (0: none)\n"
		"  --cpu PERCENT          cpu limit per task, 100 = one cpu (0: none)\n"
		"  --nofile N             RLIMIT_NOFILE per task (default %d)\n"
		"  --fsize BYTES          RLIMIT_FSIZE per task (0: none)\n"
		"  --heartbeat-ms MS      heartbeat interval before the host sets one (default "
		"%d)\n"
		"  --output-buffer BYTES  agent output buffered per task (default %d)\n"
		"  --output-chunk BYTES   bytes per task.output message (default %d)\n"
		"  --kill-grace-ms MS     cancel: SIGTERM, then SIGKILL after MS (default %d)\n"
		"  --bwrap PATH           bubblewrap binary (default: bwrap in PATH)\n"
		"  --exec-helper PATH     orch-jail-exec (default: beside this binary, then\n"
		"                         %s/orch-jail-exec)\n"
		"  --cgroup-name NAME     cgroup directory for the agents (default orch)\n"
		"  --no-seccomp           do not install the seccomp filter (debugging only)\n"
		"  --llm-port PORT        in-jail LLM endpoint on 127.0.0.1:PORT in every agent's\n"
		"                         network namespace (default 4000; 0: none)\n"
		"  --llm-connect ADDR     a channel of its own for llm.request/llm.chunk/llm.done\n"
		"                         (same syntax as --connect; fd:N is not redialled), so\n"
		"                         a long stream never delays the main channel (default:\n"
		"                         none, LLM traffic on the main channel)\n"
		"  --egress-port PORT     in-jail egress proxy on 127.0.0.1:PORT (default 3128;\n"
		"                         0: none); used only with --egress-connect\n"
		"  --egress-connect ADDR  the egress lane to orchd (same syntax as --connect):\n"
		"                         the agents' HTTP(S) out, decided by orchd (default:\n"
		"                         none, no way out)\n"
		"  --template             a snapshot template's supervisor: it runs no task until\n"
		"                         a restored copy of it is thawed (vm.thaw)\n"
		"  --shell-listen ADDR    per-agent debug shells: unix:/path-%%u.sock (%%u: "
		"slot),\n"
		"                         vsock (port 6000+slot, host only), serial:/dev/...%%u\n"
		"                         (default: none)\n"
		"  --log-level LEVEL      error|warn|info|debug (default warn)\n"
		"  --dlopen-list          print the libraries loaded at run time (for packaging)\n"
		"  --help, --version\n",
		prog, SV_DEFAULT_CONNECT, ORCH_MAX_SLOTS, SV_DEFAULT_UID_BASE,
		SV_DEFAULT_WORKSPACE_ROOT, SV_DEFAULT_NOFILE, SV_DEFAULT_HEARTBEAT_MS,
		SV_DEFAULT_OUTPUT_BUFFER, SV_DEFAULT_OUTPUT_CHUNK, SV_DEFAULT_KILL_GRACE_MS,
		ORCH_LIBEXECDIR);
}

enum {
	OPT_CONNECT = 0x100,
	OPT_CONFIG,
	OPT_SLOTS,
	OPT_UID_BASE,
	OPT_WORKSPACE_ROOT,
	OPT_RO_PATH,
	OPT_MEMORY,
	OPT_PIDS,
	OPT_CPU,
	OPT_NOFILE,
	OPT_FSIZE,
	OPT_HEARTBEAT,
	OPT_OUTPUT_BUFFER,
	OPT_OUTPUT_CHUNK,
	OPT_KILL_GRACE,
	OPT_BWRAP,
	OPT_EXEC_HELPER,
	OPT_CGROUP_NAME,
	OPT_NO_SECCOMP,
	OPT_LOG_LEVEL,
	OPT_LLM_PORT,
	OPT_SHELL_LISTEN,
	OPT_LLM_CONNECT,
	OPT_EGRESS_PORT,
	OPT_EGRESS_CONNECT,
	OPT_TEMPLATE,
	OPT_HELP,
	OPT_VERSION,
	OPT_DLOPEN_LIST,
};

static const struct option options[] = {
	{"connect", required_argument, NULL, OPT_CONNECT},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"slots", required_argument, NULL, OPT_SLOTS},
	{"uid-base", required_argument, NULL, OPT_UID_BASE},
	{"workspace-root", required_argument, NULL, OPT_WORKSPACE_ROOT},
	{"ro-path", required_argument, NULL, OPT_RO_PATH},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"pids", required_argument, NULL, OPT_PIDS},
	{"cpu", required_argument, NULL, OPT_CPU},
	{"nofile", required_argument, NULL, OPT_NOFILE},
	{"fsize", required_argument, NULL, OPT_FSIZE},
	{"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
	{"output-buffer", required_argument, NULL, OPT_OUTPUT_BUFFER},
	{"output-chunk", required_argument, NULL, OPT_OUTPUT_CHUNK},
	{"kill-grace-ms", required_argument, NULL, OPT_KILL_GRACE},
	{"bwrap", required_argument, NULL, OPT_BWRAP},
	{"exec-helper", required_argument, NULL, OPT_EXEC_HELPER},
	{"cgroup-name", required_argument, NULL, OPT_CGROUP_NAME},
	{"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"llm-port", required_argument, NULL, OPT_LLM_PORT},
	{"shell-listen", required_argument, NULL, OPT_SHELL_LISTEN},
	{"llm-connect", required_argument, NULL, OPT_LLM_CONNECT},
	{"egress-port", required_argument, NULL, OPT_EGRESS_PORT},
	{"egress-connect", required_argument, NULL, OPT_EGRESS_CONNECT},
	{"template", no_argument, NULL, OPT_TEMPLATE},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{"dlopen-list", no_argument, NULL, OPT_DLOPEN_LIST},
	{0},
};

int sv_config_parse_args(struct sv_config *c, int argc, char **argv, struct orch_error *err)
{
	int r, opt;
	int64_t v;
	bool ro_replaced = false;

	/* First pass: the config file, so that flags override it wherever they appear. */
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
		if (opt == OPT_CONFIG && (r = sv_config_load_file(c, optarg, err)) < 0)
			return r;

	opterr = 1;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		r = 0;
		switch (opt) {
		case OPT_CONNECT:
			r = set_str(&c->connect, optarg);
			break;
		case OPT_CONFIG:
			break;
		case OPT_SLOTS:
			if ((r = parse_range("--slots", optarg, 1, ORCH_MAX_SLOTS, &v, err)) >= 0)
				c->slots = (unsigned)v;
			break;
		case OPT_UID_BASE:
			if ((r = parse_range("--uid-base", optarg, 1000, 4294000000LL, &v, err)) >=
			    0)
				c->uid_base = (uid_t)v;
			break;
		case OPT_WORKSPACE_ROOT:
			if ((r = check_abs_path("--workspace-root", optarg, err)) >= 0)
				r = set_str(&c->workspace_root, optarg);
			break;
		case OPT_RO_PATH:
			if (!ro_replaced)
				clear_ro_paths(c);
			ro_replaced = true;
			r = add_ro_path(c, optarg, err);
			break;
		case OPT_MEMORY:
			r = parse_range("--memory", optarg, 0, INT64_MAX, &c->limits.memory_bytes,
					err);
			break;
		case OPT_PIDS:
			r = parse_range("--pids", optarg, 0, 1 << 22, &c->limits.pids, err);
			break;
		case OPT_CPU:
			r = parse_range("--cpu", optarg, 0, 100 * 1024, &c->limits.cpu_percent,
					err);
			break;
		case OPT_NOFILE:
			r = parse_range("--nofile", optarg, 0, 1 << 20, &c->limits.nofile, err);
			break;
		case OPT_FSIZE:
			r = parse_range("--fsize", optarg, 0, INT64_MAX, &c->limits.fsize_bytes,
					err);
			break;
		case OPT_HEARTBEAT:
			if ((r = parse_range("--heartbeat-ms", optarg, 100, 600000, &v, err)) >= 0)
				c->heartbeat_ms = (uint64_t)v;
			break;
		case OPT_OUTPUT_BUFFER:
			if ((r = parse_range("--output-buffer", optarg, 4096, 1 << 30, &v, err)) >=
			    0)
				c->output_buffer = (size_t)v;
			break;
		case OPT_OUTPUT_CHUNK:
			if ((r = parse_range("--output-chunk", optarg, 512, ORCH_MAX_OUTPUT_CHUNK,
					     &v, err)) >= 0)
				c->output_chunk = (size_t)v;
			break;
		case OPT_KILL_GRACE:
			if ((r = parse_range("--kill-grace-ms", optarg, 0, 600000, &v, err)) >= 0)
				c->kill_grace_ms = (uint64_t)v;
			break;
		case OPT_BWRAP:
			r = set_str(&c->bwrap, optarg);
			break;
		case OPT_EXEC_HELPER:
			r = set_str(&c->exec_helper, optarg);
			break;
		case OPT_CGROUP_NAME:
			r = set_str(&c->cgroup_name, optarg);
			break;
		case OPT_NO_SECCOMP:
			c->no_seccomp = true;
			break;
		case OPT_TEMPLATE:
			c->template = true;
			break;
		case OPT_LOG_LEVEL:
			if (orch_log_level_parse(optarg, &orch_log_level) < 0)
				r = orch_err(err, -EINVAL,
					     "--log-level: '%s' is not error|warn|info|debug",
					     optarg);
			break;
		case OPT_LLM_PORT:
			if ((r = parse_range("--llm-port", optarg, 0, 65535, &v, err)) >= 0)
				c->llm_port = (unsigned)v;
			break;
		case OPT_SHELL_LISTEN:
			r = set_str(&c->shell_listen, optarg);
			break;
		case OPT_LLM_CONNECT:
			r = set_str(&c->llm_connect, optarg);
			break;
		case OPT_EGRESS_PORT:
			if ((r = parse_range("--egress-port", optarg, 0, 65535, &v, err)) >= 0)
				c->egress_port = (unsigned)v;
			break;
		case OPT_EGRESS_CONNECT:
			r = set_str(&c->egress_connect, optarg);
			break;
		case OPT_HELP:
			sv_config_usage(stdout, argv[0]);
			return 1;
		case OPT_VERSION:
			printf("orch-supervisor %s\n", ORCH_VERSION);
			return 1;
		case OPT_DLOPEN_LIST:
			c->dlopen_list = true;
			return 1;
		default:
			return orch_err(err, -EINVAL, "unknown or incomplete option; see --help");
		}
		if (r < 0)
			return err && err->msg[0] ? r : orch_errno(err, r, "%s", argv[optind - 1]);
	}
	if (optind < argc)
		return orch_err(err, -EINVAL, "unexpected argument '%s'; see --help", argv[optind]);
	return 0;
}

static int find_in_path(const char *name, char **ret)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	_cleanup_free_ char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s/%s", d, name) < 0)
			return -ENOMEM;
		if (p[0] == '/' && access(p, X_OK) == 0) {
			*ret = TAKE_PTR(p);
			return 0;
		}
	}
	return -ENOENT;
}

int sv_config_finish(struct sv_config *c, struct orch_error *err)
{
	int r;
	if (!c->connect || !c->workspace_root || !c->cgroup_name)
		return -ENOMEM;
	if (!c->cgroup_name[0] || strchr(c->cgroup_name, '/') || c->cgroup_name[0] == '.')
		return orch_err(err, -EINVAL, "cgroup name '%s' must be one path component",
				c->cgroup_name);
	if (c->llm_connect) {
		struct orch_addr a;
		if ((r = orch_addr_parse(c->llm_connect, &a, err)) < 0)
			return orch_err_prefix(err, "--llm-connect");
		if (!c->llm_port)
			return orch_err(err, -EINVAL,
					"--llm-connect needs the in-jail LLM endpoint (--llm-port "
					"is 0)");
	}
	if (c->egress_connect) {
		struct orch_addr a;
		if ((r = orch_addr_parse(c->egress_connect, &a, err)) < 0)
			return orch_err_prefix(err, "--egress-connect");
		if (!c->egress_port)
			return orch_err(err, -EINVAL,
					"--egress-connect needs the in-jail proxy (--egress-port "
					"is 0)");
	}
	if ((uint64_t)c->uid_base + c->slots >= 0xffffffffULL)
		return orch_err(err, -ERANGE, "uid base %u + %u slots is out of range",
				(unsigned)c->uid_base, c->slots);
	if (!c->bwrap) {
		if ((r = find_in_path("bwrap", &c->bwrap)) < 0)
			return orch_err(
				err, r,
				"bwrap not found in PATH; install bubblewrap or use --bwrap");
	}
	if (access(c->bwrap, X_OK) < 0)
		return orch_errno(err, -errno, "bwrap %s is not executable", c->bwrap);
	if (c->bwrap[0] != '/')
		return orch_err(err, -EINVAL, "--bwrap %s must be an absolute path", c->bwrap);
	if (!c->exec_helper) {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n > 0) {
			self[n] = 0;
			char *slash = strrchr(self, '/');
			if (slash) {
				*slash = 0;
				_cleanup_free_ char *p = NULL;
				if (asprintf(&p, "%s/orch-jail-exec", self) < 0)
					return -ENOMEM;
				if (access(p, X_OK) == 0)
					c->exec_helper = TAKE_PTR(p);
			}
		}
		if (!c->exec_helper &&
		    asprintf(&c->exec_helper, "%s/orch-jail-exec", ORCH_LIBEXECDIR) < 0)
			return -ENOMEM;
	}
	if (c->exec_helper[0] != '/' || access(c->exec_helper, X_OK) < 0)
		return orch_err(
			err, -ENOENT,
			"exec helper %s is missing; install orch-jail-exec or use --exec-helper",
			c->exec_helper);
	return 0;
}
