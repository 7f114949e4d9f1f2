/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's repository tasks (host/git/, docs/WORKSPACES.md): a task submitted with a
 * repository gets a workspace of its own, a checkout of the ref it asked for prepared
 * on the host after the lease and before task.run; when it ends its workspace becomes a
 * commit on branch orch/task-<id> of the repository's cache; `orch push` sends that
 * branch upstream through the push gate. The rest of orchd calls only this header. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "error.h"

struct orchd;
struct vm;
struct orch_rpc;
struct orch_rpc_req;

int orchd_git_new(struct orchd *d, struct orch_error *err);
void orchd_git_free(struct orchd *d);

/* What task.submit asked for ("repo", "ref", or its profile's). */
struct orchd_git_submit {
	char *repo; /* NULL: not a repository task */
	char *ref;
	uid_t uid; /* the submitter (SO_PEERCRED): a local repository is read as this user */
	gid_t gid;
};
int orchd_git_submit_check(struct orchd *d, struct orch_rpc *rpc, const char *profile,
			   const char *repo, const char *ref, struct orchd_git_submit *ret,
			   struct orch_error *err);
/* In task.submit's transaction. */
int orchd_git_task_insert(struct orchd *d, int64_t task, const struct orchd_git_submit *gs,
			  const char *prompt, struct orch_error *err);
void orchd_git_submit_done(struct orchd_git_submit *gs);

/* After a lease: 1 when the task is a repository task whose workspace is now being made
 * (task.run follows through sched_send_run, or the task fails), 0 when it is not one. */
int orchd_git_lease(struct orchd *d, struct vm *vm, int64_t slot, int64_t task,
		    struct orch_error *err);
/* A task changed state: a final repository task's result is recorded. */
void orchd_git_task_changed(struct orchd *d, int64_t task);
/* False while a final repository task's result is still to be recorded (task.wait
 * answers when it is). */
bool orchd_git_settled(struct orchd *d, int64_t task);
/* A finished task was pruned from the store (scheduler.keep_finished): its workspace
 * image and result files go (its branch stays in the cache). */
void orchd_git_task_pruned(struct orchd *d, int64_t task);
/* Adds "git" to a task object of a repository task. */
void orchd_git_task_json(struct orchd *d, int64_t task, json_t *obj);

/* Control methods (docs/CONTROL.md). */
int control_task_diff(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err);
int control_task_bundle(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err);
int control_task_push(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err);
int control_workspaces_list(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			    void *data, struct orch_error *err);
int control_workspaces_rm(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			  void *data, struct orch_error *err);
