/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots (docs/PROTOCOL.md, "Snapshots"; docs/VM.md): vm.freeze makes this supervisor
 * a snapshot template's, vm.thaw makes a guest restored from that snapshot a VM of its
 * own. Between the two the supervisor is frozen: it runs no task, redials the host every
 * few milliseconds (the snapshot is taken while it does, the restored copies find their
 * host at once), reseeds the kernel's random generator from the CPU before each hello and
 * says it with a new boot id each time. vm.thaw then mixes the host's seed into the
 * generator, sets the clock (a restored guest's is as old as its snapshot), the hostname,
 * mounts the virtio-fs shares attached after the restore (waiting for their devices to
 * appear) and answers with the boot id it will use from now on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "error.h"
#include "rpc.h"

struct supervisor;

/* Redial delay while frozen, and the hello timeout then (a hello lost in a snapshot's
 * instant is asked again). */
#define SV_FROZEN_REDIAL_MS 20
#define SV_FROZEN_HELLO_TIMEOUT_MS 1000
/* A frozen supervisor whose channel is up (its hello answered, or the one vm.freeze came
 * on) drops it when no vm.thaw has come this long after: a snapshot taken before it saw
 * its host leave would otherwise give every copy a channel it believes up, which it
 * never dials again. */
#define SV_FROZEN_THAW_WAIT_MS 2000
/* How long vm.thaw waits for a share's device to appear. */
#define SV_THAW_MOUNT_TIMEOUT_MS 10000
#define SV_THAW_MOUNT_RETRY_MS 20

/* Method handlers for the channel's table (state READY). */
int sv_thaw_m_freeze(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err);
int sv_thaw_m_thaw(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err);
/* Before each hello: while frozen, reseed the generator (RDSEED/RDRAND where the CPU has
 * them) and take a new boot id. */
void sv_thaw_before_hello(struct supervisor *sv);
/* While frozen: the channel's hello was answered (or vm.freeze came on it). */
void sv_thaw_wait(struct supervisor *sv);
/* Ends a vm.thaw in progress (shutdown). */
void sv_thaw_stop(struct supervisor *sv);

/* Mixes seed (may be NULL, len 0) into the kernel's input pool, credited, and reseeds the
 * CRNG so that getrandom() output no longer follows from the state before. */
int sv_reseed(const void *seed, size_t len, struct orch_error *err);
