/* SPDX-License-Identifier: Apache-2.0 */
/* The glue between orch-supervisor and its debug shells: one call per slot builds the
 * shell's jail from exactly what the supervisor uses for that slot's tasks.
 *
 * Wiring (guest/main.c), once the loop exists and the slots are built in setup():
 *     for (unsigned i = 0; cfg->shell_listen && i < cfg->slots; i++)
 *             if ((r = sv_shell_start_slot(sv, &sv->slots[i], cfg->shell_listen,
 *                                          on_shell_event, sv, &sv->slots[i].shell,
 *                                          err)) < 0)
 *                     return r;
 * and in teardown(), before the slots go: sv_shell_free(sv->slots[i].shell).
 * orchd's local backend passes unix:<state_dir>/vm/<vm>/chan/shell-%u.sock (the path
 * `orch shell` uses); in a VM: "vsock" with vhost-vsock, else
 * serial:/dev/virtio-ports/org.orch.shell.%u (the libvirt backend's port names).
 * A debug shell shares the slot's cgroup and uid: cancelling or timing out the slot's
 * task (cgroup.kill, the uid sweep) ends it too; a task that exits normally does not. */
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

/* The directory of a unix: shell listen address ("unix:/run/orch/shell-%u.sock" ->
 * "/run/orch"), "" for other transports: what a task's read-only paths must not expose.
 * Returns 0 or -EINVAL. */
int sv_shell_socket_dir(const char *listen, char *buf, size_t len);

/* orch-shell-init next to orch-jail-exec (installed: libexecdir; build tree:
 * guest/shell/), or NULL. */
char *sv_shell_find_init(const char *exec_helper);
