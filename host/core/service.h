/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's services: the parts beside the core that serve VMs and tasks, the LLM proxy
 * (host/core/orchd-llm.c), the egress gateway (host/core/orchd-egress.c) and the
 * debug-shell relay (host/control/shell-relay.c). The core calls them through this table
 * and includes none of their headers; orchd's main adds each service once, before any VM
 * starts. Every callback may be NULL. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "rpc.h"

struct orchd;
struct vm;

/* The channels to a VM's supervisor besides its control channel. A backend opens each
 * one that orchd_lane_wanted() asks for and hands it over with vm_lane_attach(). */
enum orchd_lane {
	ORCHD_LANE_NONE = 0,
	ORCHD_LANE_LLM,	   /* llm.request / llm.cancel (docs/LLM.md) */
	ORCHD_LANE_EGRESS, /* the egress gateway's frames (docs/EGRESS.md) */
};

struct orchd_service {
	const char *name;
	/* Its lane (ORCHD_LANE_NONE, the default: none): whether VMs should have it now, and taking /
	 * dropping one VM's (attach takes fd, also on failure; drop is a no-op without one). */
	enum orchd_lane lane;
	bool (*lane_wanted)(const struct orchd *d);
	int (*lane_attach)(struct vm *vm, int fd, struct orch_error *err);
	void (*lane_drop)(struct vm *vm);
	/* Methods it serves on every VM's control channel (their data is the VM). */
	const struct orch_rpc_method *methods;
	size_t n_methods;
	/* A VM's control channel came up / goes (before the rpc is closed). */
	int (*channel_up)(struct vm *vm, struct orch_error *err);
	void (*channel_down)(struct vm *vm);
	/* Adds to a VM's status object. */
	void (*vm_json)(const struct vm *vm, json_t *obj);
	/* A task reached a final state from its VM (task.exit). */
	void (*task_done)(struct orchd *d, int64_t task);
	/* A finished task was pruned from the store. */
	void (*task_pruned)(struct orchd *d, int64_t task);
	/* Adds to a task's object; detail: a view of one task (orch result), not a list. */
	void (*task_json)(struct orchd *d, int64_t task, json_t *obj, bool detail);
	/* The scheduler ran a pass: tasks it could not place may wait for VMs (pools). */
	void (*sched_pass)(struct orchd *d);
	/* A task was just leased to vm/slot (vm_slot_lease done), before task.run. Returns
	 * 1 when the service prepares something first and then sends task.run itself
	 * (sched_send_run) or ends the task (vm_slot_run_failed); 0 when the task is none of
	 * its business; < 0 fails the task with err. At most one service takes a task. */
	int (*task_leased)(struct orchd *d, struct vm *vm, int64_t slot, int64_t task,
			   struct orch_error *err);
	/* Any change of a task's state (final, lost and re-queued, cancelled while queued). */
	void (*task_changed)(struct orchd *d, int64_t task);
	/* Whether the service is done with a final task: task.wait answers only then. */
	bool (*task_settled)(struct orchd *d, int64_t task);
};

#define ORCHD_MAX_SERVICES 8

/* Adds a service (s must outlive orchd). Only before the first VM starts. */
int orchd_service_add(struct orchd *d, const struct orchd_service *s, struct orch_error *err);
/* Whether a backend should open this lane for its VMs now. */
bool orchd_lane_wanted(const struct orchd *d, enum orchd_lane lane);
/* Hands a VM's lane (fd taken) to its service. */
int vm_lane_attach(struct vm *vm, enum orchd_lane lane, int fd, struct orch_error *err);

/* The core's calls into every service (service.c). */
int orchd_services_channel_up(struct vm *vm, struct orch_error *err);
void orchd_services_channel_down(struct vm *vm); /* and drops the VM's lanes */
void orchd_services_vm_json(const struct vm *vm, json_t *obj);
void orchd_services_task_done(struct orchd *d, int64_t task);
void orchd_services_task_pruned(struct orchd *d, int64_t task);
void orchd_services_task_json(struct orchd *d, int64_t task, json_t *obj, bool detail);
void orchd_services_sched_pass(struct orchd *d);
int orchd_services_task_leased(struct orchd *d, struct vm *vm, int64_t slot, int64_t task,
			       struct orch_error *err);
void orchd_services_task_changed(struct orchd *d, int64_t task);
bool orchd_services_task_settled(struct orchd *d, int64_t task);
/* The methods of a VM's control channel: the core's, then every service's. */
const struct orch_rpc_method *orchd_vm_methods(struct orchd *d, size_t *ret_n);
