/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's repository tasks (host/git/, docs/WORKSPACES.md): a task submitted with a
 * repository gets a workspace of its own, a checkout of the ref it asked for prepared
 * on the host after the lease and before task.run; when it ends its workspace becomes a
 * commit on branch orch/task-<id> of the repository's cache; `orch push` sends that
 * branch upstream through the push gate. orchd's main adds orchd_git_service
 * (service.h); the control room calls the rest of this header. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "error.h"
#include "service.h"

struct orchd;
struct orch_rpc_req;

/* task_leased (the workspace before task.run), task_changed (a final task's result is
 * recorded), task_settled (task.wait waits for the result), task_json ("git"),
 * task_pruned (the image goes). */
extern const struct orchd_service orchd_git_service;

int orchd_git_new(struct orchd *d, struct orch_error *err);
void orchd_git_free(struct orchd *d);

/* What task.submit asked for ("repo", "ref", or its profile's). */
struct orchd_git_submit {
	char *repo; /* NULL: not a repository task */
	char *ref;
	uid_t uid; /* the submitter: a local repository is read as this user */
	gid_t gid;
};
/* Validates repo and ref (or takes the profile's); the submitter is uid:gid. */
int orchd_git_submit_check(struct orchd *d, uid_t uid, gid_t gid, const char *profile,
			   const char *repo, const char *ref, struct orchd_git_submit *ret,
			   struct orch_error *err);
/* In task.submit's transaction. */
int orchd_git_task_insert(struct orchd *d, int64_t task, const struct orchd_git_submit *gs,
			  const char *prompt, struct orch_error *err);
void orchd_git_submit_done(struct orchd_git_submit *gs);

/* The control methods' work (docs/CONTROL.md); each answers req itself, now or later,
 * and returns < 0 with err (a JSON-RPC code) when it did not. */
/* task.diff (bundle false) / task.bundle: a chunk of the result's file. */
int orchd_git_result_file(struct orchd *d, struct orch_rpc_req *req, int64_t task, bool bundle,
			  int64_t offset, int64_t max, struct orch_error *err);
struct orchd_git_push {
	int64_t task;
	const char *remote; /* NULL: the task's repository */
	const char *to;	    /* NULL: orch/task-<id> */
	char *const *allow; /* NULL-terminated, may be NULL */
	uid_t uid;	    /* the caller: a local remote is written as this user */
	gid_t gid;
};
int orchd_git_push(struct orchd *d, struct orch_rpc_req *req, const struct orchd_git_push *a,
		   struct orch_error *err);
/* workspaces.list's rows. */
int orchd_git_workspaces(struct orchd *d, json_t **ret, struct orch_error *err);
int orchd_git_workspace_rm(struct orchd *d, struct orch_rpc_req *req, int64_t task,
			   struct orch_error *err);
