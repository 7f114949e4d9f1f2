/* SPDX-License-Identifier: Apache-2.0 */
/* The orch CLI: one verb per file (cmd-<verb>.c), each exporting a struct cli_cmd that
 * orch.c gathers in cmd_table[]. Exit codes are documented in docs/CLI.md. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"
#include "rpc.h"

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_ERROR = 1,	 /* orchd answered with an error */
	CLI_EXIT_USAGE = 2,	 /* bad command line */
	CLI_EXIT_NO_DAEMON = 3,	 /* cannot reach orchd (not running, permission) */
	CLI_EXIT_NOT_FOUND = 4,	 /* no such task */
	CLI_EXIT_LOST = 75,	 /* --wait: the task was lost */
	CLI_EXIT_NEVER_RAN = 70, /* --wait: failed without an exit code */
	CLI_EXIT_TIMED_OUT = 124,
	CLI_EXIT_CANCELLED = 130,
	CLI_GO_ON = -1, /* not an exit code: the argument parsers' "carry on" */
};

struct cli;
struct cli_render;
/* Called for each task.output notification (logs, dispatch --follow). */
typedef void (*cli_output_cb)(struct cli *c, json_t *params);

struct cli {
	const char *socket;
	bool json;
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	cli_output_cb on_output;
	/* cli_write_output's stdout goes through this (render.h) when set. */
	struct cli_render *render;
	void *data;
	bool closed;
	int64_t shown_attempt; /* cli_write_output: the attempt of the last chunk shown */
};

struct cli_cmd {
	const char *name;
	const char *summary;
	/* argv[0] is the verb; returns an exit code. */
	int (*run)(struct cli *c, int argc, char **argv);
};

/* Connects to orchd (once); on failure prints why and how to start it, returns -errno. */
int cli_connect(struct cli *c);
void cli_disconnect(struct cli *c);
/* Calls a method and waits for the reply (params_new stolen). On an error reply prints
 * "orch: <message>" unless quiet, and returns the mapped exit code (> 0); 0 on success
 * with *ret_result a new reference. timeout_ms 0: no timeout (waits forever). */
int cli_call(struct cli *c, const char *method, json_t *params_new, uint64_t timeout_ms,
	     json_t **ret_result);
/* Prints a JSON value (--json). */
void cli_print_json(json_t *v);
/* Parses a task id argument; prints an error and returns -EINVAL if bad. */
int cli_parse_id(const char *s, int64_t *ret);
/* Writes a task.output notification's data to stdout/stderr (or as JSON with --json). */
void cli_write_output(struct cli *c, json_t *params);
/* Exit code for a finished task object (dispatch --wait, result). */
int cli_task_exit_code(json_t *task);
/* For the default of a verb's getopt_long switch, the options every verb takes: 'j'
 * (--json) sets c->json and returns CLI_GO_ON; 'h' (--help) prints usage to stdout and
 * returns 0; anything else prints it to stderr and returns CLI_EXIT_USAGE. */
int cli_common_opt(struct cli *c, int opt, void (*usage)(FILE *f));
/* Parses the arguments of a verb that takes --json, --help (-h) and, when ret_arg is
 * given, one more argument (*ret_arg, NULL when absent). --help prints "Usage: orch
 * <verb><synopsis>" and help. Returns CLI_GO_ON, or the exit code to return at once. */
int cli_simple_args(struct cli *c, int argc, char **argv, const char *synopsis, const char *help,
		    const char **ret_arg);
/* cli_simple_args() for a verb taking [--json] ID: *ret_id is the parsed task id. */
int cli_id_args(struct cli *c, int argc, char **argv, const char *help, int64_t *ret_id);
/* A VM of orchd's `status` (or vm.*) as one table row: name, backend, state, its slots'
 * tasks and its last error; the header goes first. */
void cli_print_vm_header(void);
void cli_print_vm(json_t *vm);
/* The path of the running orch binary (to run it again); -errno when unknown. */
int cli_self_path(char *buf, size_t size);
void cli_sleep_ms(long ms);
/* A duration like "30s", "5m", "1h", "1500ms" or plain seconds; -EINVAL if bad. */
int cli_parse_duration_ms(const char *s, int64_t *ret);

/* task.logs: replays output from from_seq (printing it), follows when asked; *ret_task is
 * the final task object. */
/* task.logs: replays (and with follow, follows) a task's output: the latest attempt's, or
 * attempt N's, or with all every attempt's, a line "--- attempt N ---" on stderr where
 * one ends and the next begins. */
int cli_follow_task(struct cli *c, int64_t id, int64_t from_seq, bool follow, int64_t attempt,
		    bool all, json_t **ret_task);

/* Reads a repository task's result file (method "task.diff" or "task.bundle") chunk by
 * chunk into cb; returns 0 or an exit code. *ret_truncated: orchd cut it at its bound. */
typedef int (*cli_chunk_cb)(const void *buf, size_t len, void *data);
int cli_result_file(struct cli *c, const char *method, int64_t id, cli_chunk_cb cb, void *data,
		    bool *ret_truncated);
/* The summary line of a repository task's result ("git" member of a task object) on f. */
void cli_print_git_result(FILE *f, int64_t id, json_t *git);

extern const struct cli_cmd cmd_diff, cmd_checkout, cmd_push, cmd_workspaces;
extern const struct cli_cmd cmd_dispatch, cmd_status, cmd_tasks, cmd_result, cmd_logs, cmd_cancel,
	cmd_vm, cmd_budget, cmd_egress;
