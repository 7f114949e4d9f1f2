/* SPDX-License-Identifier: Apache-2.0 */
/* The store's git_tasks table (migration 6 in host/store/store-schema.c): one row per repository
 * task. Its state:
 *   queued    no workspace yet
 *   preparing orchd is making its workspace (after the lease)
 *   ready     the workspace is there; task.run was or will be sent
 *   pending   the task is final (set by a trigger in the same transaction); the result
 *             is to be recorded: orchd does so now, or at its next start
 *   recorded  the result is on its branch (or there were no changes)
 *   failed    the result could not be recorded (error says why)
 *   none      the task ended without a workspace (cancelled while queued, ...)
 * ws_state says whether the task's workspace image exists on the host. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "store.h"

struct git_row {
	int64_t task;
	char *repo, *ref;
	int64_t uid, gid;
	char *prompt;
	char *state;
	char *base;
	char *vm;
	int64_t slot;
	char *mount, *image;
	bool ws_present;
	char *branch, *commit;
	int64_t files_changed, insertions, deletions;
	char *changes; /* JSON array */
	char *error;
	int64_t recorded_at;
	char *pushes; /* JSON array */
};

void git_row_free(struct git_row *r);

int git_store_insert(struct store *s, int64_t task, const char *repo, const char *ref, int64_t uid,
		     int64_t gid, const char *prompt, struct orch_error *err);
/* -ENOENT when the task is not a repository task. */
int git_store_get(struct store *s, int64_t task, struct git_row **ret, struct orch_error *err);
/* Sets the state (and the error, NULL to clear it). */
int git_store_set_state(struct store *s, int64_t task, const char *state, const char *error,
			struct orch_error *err);
/* preparing, on vm/slot, with the image and mount the workspace will have (ws present). */
int git_store_preparing(struct store *s, int64_t task, const char *vm, int64_t slot,
			const char *image, const char *mount, struct orch_error *err);
/* preparing -> ready with its base commit; -ESTALE when the row is no longer preparing
 * (the task ended meanwhile). */
int git_store_ready(struct store *s, int64_t task, const char *base, struct orch_error *err);
int git_store_ws_gone(struct store *s, int64_t task, struct orch_error *err);
struct git_result_stats {
	const char *branch, *commit; /* NULL when there were no changes */
	int64_t files_changed, insertions, deletions;
	const char *changes; /* JSON array */
};
int git_store_recorded(struct store *s, int64_t task, const struct git_result_stats *st,
		       struct orch_error *err);
int git_store_add_push(struct store *s, int64_t task, json_t *push, struct orch_error *err);
/* Tasks in a state (malloc'd ids). */
int git_store_in_state(struct store *s, const char *state, int64_t **ret, size_t *ret_n,
		       struct orch_error *err);
/* Finished tasks whose workspace image still exists, newest first, after the first keep. */
int git_store_ws_expired(struct store *s, int64_t keep, int64_t **ret, size_t *ret_n,
			 struct orch_error *err);
/* Every task whose workspace image exists, newest first, as JSON objects
 * {task, state, task_state, vm, slot, repo, image, mount}. */
int git_store_ws_list(struct store *s, json_t **ret, struct orch_error *err);
/* The task object's "git" member. */
json_t *git_row_to_json(const struct git_row *r);
