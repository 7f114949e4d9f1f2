/* SPDX-License-Identifier: Apache-2.0 */
/* Who may enter the directories above the VMs' workspaces (docs/CONFIG.md, "Workspaces").
 *
 * A libvirt VM's workspace is shared into the guest with virtio-fs, and virtiofsd creates
 * files there with the guest's uids, unmapped: the guest's root makes root-owned files
 * (setuid ones included) and owns the share's root directory, which it can open up. So
 * what keeps the host's other users out must lie above the share: the workspace's parent
 * is owned by orchd's uid (root) with no permission for group or others. The workspace
 * itself keeps o+x: the guest's agents pass through it to their agent-N directories
 * (the guest checks the host's modes).
 *
 * A local VM's agents are host uids whose jails bind their workspace by path as those
 * uids: every directory above it needs o+x. One directory cannot be both, so a libvirt
 * VM whose workspace's parent local agents pass through is refused, naming both. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "error.h"

/* At startup: creates state_dir (0711) and workspace_root (0700) when missing, and every
 * local VM's workspace (0755); state_dir and workspace_root get o+x (and g+x) when a
 * local VM's workspace lies below them. Returns 0 or -errno with err set. */
int orchd_dirs_prepare(const struct orchd_config *cfg, struct orch_error *err);

/* Before libvirt VM vm starts: creates the missing directories above its workspace 0700
 * and the workspace 0711 (an existing one gets o+x added when it lacks it), and makes
 * sure the workspace's parent is private to orchd's uid. An open parent is tightened
 * (*ret_tightened = true) when it is orchd's own (workspace_root, or below state_dir or
 * workspace_root) and no local VM's agents pass through it; otherwise refused with
 * -EPERM and the path and the fix in err. */
int orchd_workspace_private(const struct orchd_config *cfg, const struct orchd_vm_config *vm,
			    bool *ret_tightened, struct orch_error *err);
