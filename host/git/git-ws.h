/* SPDX-License-Identifier: Apache-2.0 */
/* A task's workspace on the host (docs/WORKSPACES.md): an ext4 file system in a sparse
 * image file of git.workspace_mib under <git.dir>/images (where no guest reaches),
 * loop-mounted nosuid,nodev at <VM workspace>/task-<id>, the directory the task's jail
 * (or VM, through the workspace share) binds at /workspace. Writing past its size fails
 * with ENOSPC inside the jail; the host's disk holds at most what the task wrote.
 *
 * The directory under the mount is made immutable first: a VM that does not see the
 * mount (its virtiofsd started before the share became a shared mount) cannot take the
 * empty directory for its workspace, the supervisor's chown fails and the task fails.
 *
 * mkfs, mount and umount run as child processes (git-proc.h); the small steps between
 * them (a sparse file, a directory, a flag) are done in place. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "git-exec.h"

/* The name in the VM's workspace: "task-<id>". */
void ws_name(int64_t task, char *buf, size_t len);
/* <git.dir>/images/task-<id>.img and <vm_workspace>/task-<id> (malloc'd). */
int ws_paths(const struct git_config *cfg, const char *vm_workspace, int64_t task, char **image,
	     char **mount, struct orch_error *err);

/* Whether the file system that holds git.dir has room for one more workspace: its free
 * space minus what the existing images (the NULL-terminated list) may still grow by must
 * stay above workspace_mib + min_free_mib. */
int ws_space_check(const struct git_config *cfg, char *const *images, struct orch_error *err);
/* A sparse file of workspace_mib (replacing an old one). */
int ws_image_create(const struct git_config *cfg, const char *image, struct orch_error *err);
/* Starts mkfs.ext4 on image, its root owned by uid:gid. */
int ws_mkfs_start(const struct git_ctx *g, const char *image, uid_t uid, gid_t gid, gproc_cb cb,
		  void *data, struct gproc **ret, struct orch_error *err);
/* Makes mount an empty immutable directory (0700, root's) to mount on. */
int ws_mountpoint(const char *mount, struct orch_error *err);
int ws_mount_start(const struct git_ctx *g, const char *image, const char *mount, bool ro,
		   gproc_cb cb, void *data, struct gproc **ret, struct orch_error *err);
/* After a mount: removes lost+found (the agent's workspace starts empty). */
int ws_after_mount(const char *mount, struct orch_error *err);
/* lazy: umount -l (the mount is detached now, freed when no one uses it). */
int ws_umount_start(const struct git_ctx *g, const char *mount, bool lazy, gproc_cb cb, void *data,
		    struct gproc **ret, struct orch_error *err);
/* Whether a file system is mounted at mount (its device differs from its parent's). */
bool ws_mounted(const char *mount);
/* Removes the (unmounted) mount point and the image; missing ones are fine. */
int ws_remove(const char *image, const char *mount, struct orch_error *err);
/* Bytes the image takes on the host's disk. */
int64_t ws_image_used(const char *image);

/* Makes dir a mount point with shared propagation (a bind mount of itself), so that
 * mounts made below it later reach the mount namespaces copied from it after this, such
 * as a virtiofsd's sandbox. Idempotent. */
int ws_share(const char *dir, struct orch_error *err);
