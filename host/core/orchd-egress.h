/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's egress gateway service (host/egress/, docs/EGRESS.md). With an "egress"
 * section in the config, orchd_egress_new starts it on orchd's loop; orchd_egress_service
 * (service.h) then gives each VM a third channel to its supervisor, the egress lane (the
 * local backend: a third socketpair, the supervisor's fd 5, `--egress-connect fd:5`;
 * libvirt: the virtio-serial port org.orch.egress or vsock port vsock.egress_port), and
 * adds a task's connections to its detailed view. Without the section the lane is not
 * wanted and jails have no way out. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "service.h"

struct orchd;
struct vm;
struct orch_rpc;
struct orch_rpc_req;

int orchd_egress_new(struct orchd *d, struct orch_error *err);
void orchd_egress_free(struct orchd *d);
/* True when VMs should be given an egress lane. */
bool orchd_egress_enabled(const struct orchd *d);
/* task.submit's "egress": every name a set, allowed by the VM named (or by some VM when
 * none is) and by the config's profile when it lists sets. */
int orchd_egress_submit_check(struct orchd *d, const char *vm, const char *profile,
			      char *const *sets, struct orch_error *err);
/* Records the sets a new task asked for. */
int orchd_egress_task_sets(struct orchd *d, int64_t task, char *const *sets,
			   struct orch_error *err);
extern const struct orchd_service orchd_egress_service;
