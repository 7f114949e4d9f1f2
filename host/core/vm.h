/* SPDX-License-Identifier: Apache-2.0 */
/* One VM as orchd sees it (vm.c): its backend, the channel to its supervisor, liveness
 * and restarts, and its agent slots. vm.c is the only writer of a slot: the scheduler
 * leases through vm_slot_lease, the guest's messages settle slots in vm.c, and everyone
 * else reads them through the vm_slot_* calls below. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"
#include "loop.h"
#include "rpc.h"
#include "schema.h"
#include "service.h"
#include "store.h"

struct orchd;
struct orchd_backend_ops;
struct slot;
struct llm_serve;
struct egress_serve;

enum vm_state {
	VM_DOWN = 0, /* not running; restarts after backoff unless stopped on purpose */
	VM_STARTING, /* backend started, waiting for the supervisor's hello */
	VM_READY,    /* hello done: tasks may be leased */
	VM_STOPPED,  /* stopped on purpose (orch vm down / shutdown) */
};
const char *vm_state_name(enum vm_state s);

/* Who made a VM that is not one of the config's: a pool (host/pool/) makes and retires
 * its class's VMs. The core tells it what happens to the VM and asks it before leasing. */
struct vm_owner_ops {
	/* The VM went down (not on purpose): its tasks are lost already. Instead of the
	 * core's restart with backoff, the owner decides. */
	void (*gone)(struct vm *vm, const char *reason);
	/* A slot's task ended (exit, a run that failed or was refused, or lost). */
	void (*released)(struct vm *vm);
	/* May the scheduler lease to it now; and it just did (to slot). */
	bool (*leasable)(const struct vm *vm);
	void (*leased)(struct vm *vm, int64_t slot);
	/* A slot's task sent its first output (may be NULL). */
	void (*printed)(struct vm *vm);
};

struct vm {
	struct orchd *d;
	const struct orchd_vm_config *cfg;
	const struct orchd_backend_ops *ops;
	void *backend; /* the backend's own state */
	enum vm_state state;
	struct orch_rpc *rpc; /* the supervisor channel, NULL when none */
	/* The services' state for this VM (service.h), NULL when none. */
	struct orch_rpc *llm_rpc;    /* its LLM lane (host/core/orchd-llm.c) */
	struct llm_serve *llm_serve; /* llm.request on the LLM lane */
	struct llm_serve *llm_main;  /* llm.request on the control channel */
	struct egress_serve *egress; /* its egress lane (host/core/orchd-egress.c) */
	struct slot *slots;	     /* n_slots of them; vm.c's (slot.h) */
	int64_t n_slots;
	char boot_id[ORCH_MAX_ID_LEN + 1];
	uint64_t last_heartbeat; /* orch_now_ms */
	struct orch_timer *hb_timer;
	struct orch_timer *restart_timer;
	struct orch_timer *hello_timer; /* boot_timeout_ms from start to hello */
	unsigned failures;		/* consecutive, for the restart backoff */
	uint64_t ready_ms;		/* orch_now_ms of the last hello, 0 when down */
	uint64_t start_ms;		/* orch_now_ms of the last vm_start (boot metrics) */
	struct orch_timer *out_timer;	/* output.c: flushes the slots' pending output */
	uint64_t out_due;		/* when it fires, 0: not armed */
	char *profiles_json;		/* JSON array of allowed profiles, NULL: all */
	char last_error[256];
	/* A pooled VM's (host/pool/): its owner and class (the config's name that tasks
	 * ask for, and that budgets and egress sets are kept under). NULL: the config's. */
	const struct vm_owner_ops *owner;
	void *owner_data;
	const char *class_name;
};
/* The name tasks ask for: the class of a pooled VM, else its own. */
const char *vm_class_name(const struct vm *vm);

int vm_new(struct orchd *d, const struct orchd_vm_config *cfg, struct vm **ret,
	   struct orch_error *err);
void vm_free(struct vm *vm);
/* Starts the VM through its backend (state -> STARTING). */
int vm_start(struct vm *vm);
/* Stops it on purpose (state -> STOPPED); running tasks become lost (and are retried
 * elsewhere/later). force: at once (so that vm_start may follow immediately). */
void vm_stop(struct vm *vm, const char *reason, bool force);
/* Backends call these: a channel to the supervisor is up (fd is taken) / the VM is gone. */
int vm_attach_channel(struct vm *vm, int fd, struct orch_error *err);
void vm_gone(struct vm *vm, const char *reason);
struct vm *orchd_find_vm(struct orchd *d, const char *name);
/* Sends task.cancel for a task running in this VM. */
int vm_cancel_task(struct vm *vm, int64_t task);
/* JSON view for status. */
json_t *vm_to_json(const struct vm *vm);
/* The core's methods of a VM's control channel (service.c adds the services'). */
extern const struct orch_rpc_method vm_core_methods[];
extern const size_t vm_n_core_methods;

/* --- agent slots --- */
/* The task in the slot (0: free; slot out of range: 0). */
int64_t vm_slot_task(const struct vm *vm, int64_t slot);
/* The same as text, in a buffer of the slot's (valid until the slot changes); NULL when
 * free or out of range. */
const char *vm_slot_task_str(struct vm *vm, int64_t slot);
/* Leases the slot to attempt `attempt` of task t (the store's lease is taken already):
 * opens its spool and sets the slot up for task.run, whose wire id it returns in
 * *ret_wire_id (valid while the slot holds this attempt). */
int vm_slot_lease(struct vm *vm, int64_t slot, const struct task_row *t, const char **ret_wire_id,
		  struct orch_error *err);
/* The attempt of the task in the slot (0: free), and its wire id "<task>.<attempt>"
 * (NULL: free; valid while the slot holds that attempt). */
int64_t vm_slot_attempt(const struct vm *vm, int64_t slot);
const char *vm_slot_wire_id(const struct vm *vm, int64_t slot);
/* The lease of task/attempt in slot, if the slot still holds it. */
bool vm_slot_holds(const struct vm *vm, int64_t slot, int64_t task, int64_t attempt);
/* The supervisor acknowledged task.run for what the slot holds: it is running. */
void vm_slot_acked(struct vm *vm, int64_t slot);
/* task.run failed for what the slot holds: its output so far is kept, the store row
 * settled with res (or re-queued when res is NULL: the run was refused, not failed), and
 * the slot freed; waiters and the scheduler are told. */
void vm_slot_run_failed(struct vm *vm, int64_t slot, const struct task_result *res);
/* A shared store took this node's tasks away (its lease expired: they run elsewhere):
 * asks the supervisor to kill each and frees the slots, the store untouched. Returns how
 * many. */
unsigned vm_slots_drop(struct vm *vm);
/* A shared store came back: stores the output the slots kept meanwhile (output.c). */
void vm_output_retry(struct vm *vm);
/* Puts a task left leased/running by a previous orchd into its slot until hello. */
void vm_adopt_orphan(struct vm *vm, int64_t slot, int64_t task, int64_t attempt,
		     int64_t output_seq);
