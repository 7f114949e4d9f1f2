/* SPDX-License-Identifier: Apache-2.0 */
/* The workspaces a vm-per-task class's retired VMs leave on the host (docs/VM.md,
 * "Pools"): <class's workspace>/<class>.<n>, each its one task's. The newest
 * pool.keep_workspaces of them (by n) are kept for the tasks' results; older ones are
 * removed by a child process (orchd's binary in a hidden mode), never on orchd's loop: a
 * workspace can be a large tree. A VM is retired only after its task's result is recorded
 * (vm.c stores an exit before it releases the slot).
 *
 * The trees were written by guests (as root, through virtiofsd), so the removal trusts
 * nothing in them: every directory is opened relative to its parent with O_NOFOLLOW and
 * O_DIRECTORY and its entries removed with unlinkat, so a symlink is removed, never
 * followed, whatever is renamed meanwhile; it stays on the workspace's filesystem (a
 * mount below it, e.g. a repository task's, is left alone, and so is its mount point); a
 * workspace orchd made a bind mount of itself (docs/WORKSPACES.md) is detached first. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define POOL_PRUNE_ARG "--pool-remove-workspaces"
#define POOL_PRUNE_DEPTH_MAX 512

/* The names in dir of the form <class_name>.<n> (n a decimal number without sign or
 * leading zero) that are directories, not live(name, data), and not among the newest keep
 * of those by n. *ret is NULL-terminated (free with orch_strv_free); *ret_n its length. */
int pool_prune_candidates(const char *dir, const char *class_name, int64_t keep,
			  bool (*live)(const char *name, void *data), void *data, char ***ret,
			  size_t *ret_n, struct orch_error *err);

/* Removes the tree at path as described above. 0, or -errno of the first failure (what
 * could be removed is). */
int pool_remove_tree(const char *path);

/* For main(): runs the hidden mode (and exits) when argv asks for it, else returns. */
void pool_prune_main(int argc, char **argv);
