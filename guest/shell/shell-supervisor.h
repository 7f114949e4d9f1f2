/* SPDX-License-Identifier: Apache-2.0 */
/* The glue between orch-supervisor and its debug shells: one call per slot builds the
 * shell's jail from exactly what the supervisor uses for that slot's tasks. */
#pragma once

#include "shell.h"
#include "supervisor.h"

/* listen: a transport address for slot N, "%u" replaced by the slot number:
 *   "unix:/run/orch/shell-%u.sock"             local backend
 *   "vsock" (port 6000+N, only the host CID 2)  VM with vhost-vsock
 *   "serial:/dev/virtio-ports/org.orch.shell.%u" VM with virtio-serial
 * Call after the slot's netns and cgroup exist and the seccomp filter is built; free the
 * result with sv_shell_free before the slot is torn down. */
int sv_shell_start_slot(struct supervisor *sv, struct sv_slot *slot, const char *listen,
			sv_shell_event_cb on_event, void *event_data, struct sv_shell **ret,
			struct orch_error *err);

/* orch-shell-init next to orch-jail-exec (installed: libexecdir; build tree:
 * guest/shell/), or NULL. */
char *sv_shell_find_init(const char *exec_helper);
