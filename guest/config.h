/* SPDX-License-Identifier: Apache-2.0 */
/* orch-supervisor configuration: defaults, command-line flags and a strict JSON file. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"
#include "schema.h"

#define SV_MAX_RO_PATHS 64
#define SV_DEFAULT_CONNECT "vsock:2:700"
#define SV_DEFAULT_UID_BASE 10000
#define SV_DEFAULT_WORKSPACE_ROOT "/workspace"
#define SV_DEFAULT_HEARTBEAT_MS 10000
#define SV_DEFAULT_OUTPUT_BUFFER (1024 * 1024)
#define SV_DEFAULT_OUTPUT_CHUNK (16 * 1024)
#define SV_DEFAULT_KILL_GRACE_MS 2000
#define SV_DEFAULT_NOFILE 1024
#define SV_DEFAULT_LLM_PORT 4000
#define SV_DEFAULT_EGRESS_PORT 3128

struct sv_config {
	char *connect;	      /* transport address (proto/transport.h syntax) */
	unsigned slots;	      /* 1..ORCH_MAX_SLOTS */
	uid_t uid_base;	      /* agent N runs as uid/gid uid_base + N */
	char *workspace_root; /* <root>/agent-N is bound to /workspace */
	char *ro_paths[SV_MAX_RO_PATHS];
	size_t n_ro_paths;
	struct orch_limits limits; /* defaults and maxima for every task */
	uint64_t heartbeat_ms;	   /* until the host's hello reply says otherwise */
	size_t output_buffer;	   /* bytes of agent output buffered per task */
	size_t output_chunk;	   /* bytes per task.output */
	uint64_t kill_grace_ms;	   /* cancel: SIGTERM, this long, then SIGKILL */
	char *bwrap;		   /* path of bwrap */
	char *exec_helper;	   /* path of orch-jail-exec */
	char *cgroup_name;	   /* name of the cgroup directory made for the agents */
	bool no_seccomp;	   /* for debugging only; reported in hello */
	unsigned llm_port;	   /* in-jail LLM endpoint on 127.0.0.1 (0: none) */
	char *llm_connect;	   /* LLM channel of its own (transport address); NULL: main */
	char *shell_listen;	   /* debug shells: "unix:/x-%u.sock", "vsock", "serial:..." */
	unsigned egress_port;	   /* in-jail egress proxy on 127.0.0.1 (0: none) */
	char *egress_connect;	   /* the egress lane (transport address); NULL: no egress */
	bool dlopen_list;	   /* --dlopen-list was given (parse returned 1) */
	bool template; /* a snapshot template's (orch.snapshot=1): no task before thaw */
};

void sv_config_init(struct sv_config *c);
void sv_config_done(struct sv_config *c);

/* Loads a JSON config file (strict: unknown keys and wrong types are errors) on top of c. */
int sv_config_load_file(struct sv_config *c, const char *path, struct orch_error *err);
int sv_config_load_json(struct sv_config *c, const char *text, size_t len, struct orch_error *err);

/* Parses argv (flags override the file named by --config, wherever it appears).
 * Returns 0 to run, 1 when --help/--version was handled (printed to stdout) or
 * --dlopen-list was asked for (c->dlopen_list; the caller prints it), or < 0. */
int sv_config_parse_args(struct sv_config *c, int argc, char **argv, struct orch_error *err);

/* Checks consistency and fills derived defaults (bwrap, exec helper paths). */
int sv_config_finish(struct sv_config *c, struct orch_error *err);

/* Effective limits for a task: the task's value, capped by the configured one. */
void sv_limits_merge(const struct orch_limits *cfg, const struct orch_limits *task,
		     struct orch_limits *ret);

void sv_config_usage(FILE *f, const char *prog);
