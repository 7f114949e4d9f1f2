/* SPDX-License-Identifier: Apache-2.0 */
/* Test host for orch-supervisor: starts the real binary over a socketpair and speaks the
 * protocol to it through proto/rpc.h (hello reply, task.output collection, task.exit
 * acknowledgement). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "loop.h"
#include "rpc.h"
#include "schema.h"

/* Agents run as H_UID_BASE + slot (the channel tests' own supervisor at + 10). The base
 * is picked once per test program from its pid, in 10100..10739 by steps of 16, and the
 * supervisor's cgroup is named after it (h_cgroup_name), so that two runs of the tests at
 * the same time (two build trees on one machine) do not kill each other's agents or
 * share cgroups. */
int h_uid_base(void);
#define H_UID_BASE h_uid_base()
/* "orch-test-<H_UID_BASE>"; with a suffix: "orch-test-<suffix>-<H_UID_BASE>". */
const char *h_cgroup_name(const char *suffix);
#define H_SLOTS 3
#define H_MAX_TASKS 32

struct h_task {
	char id[ORCH_MAX_ID_LEN + 1];
	char *out, *err;
	size_t out_len, err_len;
	size_t out_cap, err_cap; /* allocated: grown by doubling (a 32 MiB flood arrives in
				  * thousands of chunks; ASan's realloc always copies) */
	int64_t next_seq;
	bool bad_seq;
	bool exited;
	int exits; /* task.exit requests seen (duplicates counted) */
	enum orch_exit_status status;
	int64_t exit_code, signal, output_seq, duration_ms;
	char reason[ORCH_MAX_REASON_LEN];
	bool replied;
	json_t *result; /* task.run result */
	struct orch_error run_err;
};

struct host {
	pid_t pid;
	char log[64]; /* the supervisor's stderr: read for sanitizer reports by h_stop */
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	char root[64];
	json_t *hello;
	int heartbeats;
	bool closed;
	bool ack_exits; /* default true */
	struct h_task tasks[H_MAX_TASKS];
	size_t n_tasks;
};

/* Starts orch-supervisor (extra flags appended) and waits for its hello. */
void h_start(struct host *h, const char *const *extra);
/* Stops the supervisor; its stderr is copied to ours, and a sanitizer report in it (or
 * an abort) fails the test. */
void h_stop(struct host *h);
/* Sends task.run and waits for the reply; env_json/limits_json may be NULL. */
struct h_task *h_run(struct host *h, const char *id, int slot, const char *const *argv,
		     int64_t timeout_ms, json_t *limits_new);
struct h_task *h_wait_exit(struct host *h, const char *id, uint64_t deadline_ms);
struct h_task *h_task(struct host *h, const char *id);
/* Runs the loop until cond(h) or the deadline. */
bool h_wait(struct host *h, bool (*cond)(struct host *h, void *arg), void *arg,
	    uint64_t timeout_ms);
int h_cancel(struct host *h, const char *id, int64_t grace_ms);
/* Processes whose real uid is uid. */
int h_count_uid(uid_t uid);
/* True once no live process of uid is left (waits up to timeout_ms for exits). */
bool h_uid_gone(uid_t uid, uint64_t timeout_ms);
const char *h_builddir(void);
/* "memory" / "pids" / "cpu" enforcement as announced in hello (NULL: not enforced). */
const char *h_limit_mode(struct host *h, const char *name);

/* The main() of a supervisor test program: SKIP (77) unless root, SIGPIPE ignored, runs
 * the suite and returns the exit status (frees s). need_bwrap: SKIP without bwrap. */
struct Suite;
int h_run_suite(struct Suite *s, bool need_bwrap);
