/* SPDX-License-Identifier: Apache-2.0 */
/* Pools (docs/VM.md, "Pools"): the VMs of a pooled class (vms.<name>.pool, isolation
 * "vm-per-task") are made, counted and retired here.
 *
 * A class's VMs are named <class>.<n>, n from the store and never used twice, each with a
 * workspace of its own, <class's workspace>/<class>.<n>, and the class's uids, limits,
 * profiles and egress sets; tasks ask for the class (`orch dispatch --vm CLASS`). A shared
 * pool keeps pool.ready VMs up. A vm-per-task pool keeps pool.ready VMs booted and idle,
 * boots more while tasks wait (at most pool.max VMs at once), leases each VM one task and
 * retires it when that task ends: its workspace, the task's, stays on the host. A pooled
 * VM that goes down is retired (its tasks lost, retried per policy), never restarted in
 * place: the pool makes another, backing off while new VMs keep failing before their
 * hello. With vms.<name>.snapshot, the libvirt backend starts them from a snapshot.
 *
 * The core knows a pooled VM by its owner (vm.h: vm_owner_ops); the pool runs its retires
 * and refills from one timer, never inside the core's callbacks. */
#pragma once

#include <stdbool.h>
#include <jansson.h>

#include "error.h"
#include "service.h"

struct orchd;
struct orch_pools;

/* The pools of the config's pooled classes, with the VMs the store knows of them (an
 * earlier orchd's: their tasks are reconciled like any VM's). Before reconciliation. */
int pools_new(struct orchd *d, struct orch_error *err);
/* Starts the known VMs of autostarted classes (a running domain is adopted), retires
 * vm-per-task VMs whose task is over, and fills the pools. After the debug-shell relay. */
void pools_start(struct orchd *d);
/* After orchd freed every VM (theirs too). */
void pools_free(struct orchd *d);

/* The service: refills after scheduler passes (tasks wait), a pooled VM's pool state. */
extern const struct orchd_service orchd_pool_service;

/* Whether name is a pooled class. */
bool pools_is_class(struct orchd *d, const char *name);
/* orch vm up/down CLASS: the pool fills again / its VMs are retired and it makes none. */
int pools_up(struct orchd *d, const char *class_name, struct orch_error *err);
int pools_down(struct orchd *d, const char *class_name, struct orch_error *err);
/* orch vm down/restart of one pooled VM: retired (the pool makes another). */
int pools_retire(struct orchd *d, const char *vm_name, struct orch_error *err);
/* The pools for vm.list: class, isolation, targets, VMs by state, snapshot. */
json_t *pools_json(struct orchd *d);
