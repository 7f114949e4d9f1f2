/* SPDX-License-Identifier: Apache-2.0 */
/* VM backends behind one interface. A backend starts and stops the thing that runs a
 * supervisor (a local child process, a libvirt domain) and hands orchd the channel to it:
 * it calls vm_attach_channel(vm, fd) when a connection to the supervisor exists and
 * vm_gone(vm, reason) when the VM/supervisor disappeared. Everything runs on orchd's
 * loop (vm->d->loop). Backends keep their own state in vm->backend. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "transport.h"

struct vm;
struct orchd;
struct orch_vm_thaw;

struct orchd_backend_ops {
	const char *name; /* "local", "libvirt": the config's vms.<name>.backend */
	/* Once per orchd before any VM starts (e.g. connect to libvirtd); may be NULL. */
	int (*init)(struct orchd *d, struct orch_error *err);
	void (*shutdown)(struct orchd *d);
	/* Start the VM; the channel arrives later through vm_attach_channel. */
	int (*start)(struct vm *vm, struct orch_error *err);
	/* Stop it (force: at once). vm_gone is NOT called for a stop requested here. */
	void (*stop)(struct vm *vm, bool force);
	/* Release vm->backend (after stop). */
	void (*free)(struct vm *vm);
	/* Path of the console log, NULL when there is none. */
	const char *(*console_path)(const struct vm *vm);
	/* Extra fields for `orch status` (e.g. pid, domain id); may be NULL. */
	void (*describe)(const struct vm *vm, json_t *obj);
	/* Where the supervisor serves slot's debug shell, for orchd's relay (shell-relay.c)
	 * to connect to: a unix: address only root can reach, or vsock:CID:PORT (dialled
	 * from a reserved port). -ENOTCONN with the reason when the VM runs none now. NULL:
	 * this backend has no debug shells. Users never reach this address themselves. */
	int (*shell_endpoint)(const struct vm *vm, unsigned slot, struct orch_addr *ret,
			      struct orch_error *err);
	/* After the supervisor's hello (frozen: it says it waits for vm.thaw): whether the
	 * VM was restored from a snapshot and needs vm.thaw (docs/PROTOCOL.md "Snapshots").
	 * Returns 1 and fills ret's name and mounts (strings the backend's, valid until the
	 * VM stops; the core adds seed and time), 0 when not, < 0 when the two disagree.
	 * NULL: never. */
	int (*thaw)(struct vm *vm, bool frozen, struct orch_vm_thaw *ret, struct orch_error *err);
	/* A task was just leased to slot (vm_slot_lease done): 1 when the backend readies
	 * the VM for it first (memory hot-plug: docs/VM.md) and then calls sched_lease_ready
	 * (it always does, unless the VM stops meanwhile); 0 when the task may start now.
	 * NULL: always now. */
	int (*task_leased)(struct vm *vm, int64_t slot, int64_t task, int64_t attempt);
};

/* Where a backend's debug shell endpoint of a slot lives on the host when it is a Unix
 * socket (the local backend's supervisor listens there; QEMU binds the virtio-serial
 * port's): <state_dir>/vm/<vm>/chan/shell-N.sock, slot < 0 giving the pattern with "%u"
 * for N (the supervisor's --shell-listen). Only root reaches the chan/ directory; users
 * get shells through orchd's relay (shell-relay.c). Returns 0 or -ENAMETOOLONG. */
int orchd_shell_socket_path(const char *state_dir, const char *vm, int64_t slot, char *buf,
			    size_t len);

/* The table of backends (backend.c); NULL when unknown. */
const struct orchd_backend_ops *orchd_backend_find(const char *name);
extern const struct orchd_backend_ops orchd_backend_local;   /* backend-local.c */
extern const struct orchd_backend_ops orchd_backend_libvirt; /* host/libvirt/ */
