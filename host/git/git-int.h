/* SPDX-License-Identifier: Apache-2.0 */
/* The state of orchd's repository support, shared by the files of host/git/ (not by the
 * rest of orchd, which uses orchd-git.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "git-cache.h"
#include "git-exec.h"
#include "git-store.h"
#include "orchd.h"

struct gcache_state;
struct gprep;
struct grec;
struct gop;
struct gpush;
struct gwsop;

struct git_mod {
	struct orchd *d;
	struct git_ctx g;
	struct gcache_state *caches;
	struct gprep *preps;  /* workspaces being prepared */
	struct grec *recs;    /* results being recorded */
	struct gop *ops;      /* diffs and bundles being made */
	struct gpush *pushes; /* pushes in flight (git-gate.c) */
	struct gwsop *wsops;  /* workspaces being removed */
	struct orch_timer *retention_timer;
	uint64_t record_delay_ms; /* ORCHD_GIT_TEST_RECORD_DELAY_MS: tests only */
	char **secrets;		  /* what the push gate looks for: key files' lines */
	size_t n_secrets;
	bool usable;
	char why[300]; /* why repository tasks cannot run here, when !usable */
};

/* git-prepare.c: after a lease, makes the task's workspace, then sends task.run. */
int gprep_start(struct git_mod *m, struct vm *vm, int64_t slot, int64_t task,
		struct orch_error *err);
void gprep_free_all(struct git_mod *m);

/* git-record.c: records a final task's result (idempotent; see git-record.c). */
void grec_start(struct git_mod *m, int64_t task);
bool grec_running(struct git_mod *m, int64_t task);
void grec_free_all(struct git_mod *m);

/* git-workspaces.c: removing a workspace (unmounting first), retention. */
typedef void (*gws_done_cb)(int r, const char *msg, void *data);
int gws_remove(struct git_mod *m, int64_t task, gws_done_cb cb, void *data, struct orch_error *err);
void gws_retention(struct git_mod *m);
void gws_free_all(struct git_mod *m);
/* Removes the diffs and bundles made for a task's result (git-ops.c makes them again). */
void gws_drop_files(struct git_mod *m, int64_t task);

/* git-ops.c and git-gate.c: control requests that run git. */
void gop_free_all(struct git_mod *m);
void gpush_free_all(struct git_mod *m);
/* The task's row for a control request: -32002 when it is not a repository task,
 * -32006 unless its result is recorded. */
int gctl_recorded_row(struct git_mod *m, int64_t task, struct git_row **ret,
		      struct orch_error *err);

/* The agent uid/gid of a VM's slot. */
static inline uid_t git_agent_uid(const struct vm *vm, int64_t slot)
{
	return (uid_t)(vm->cfg->uid_base + slot);
}
