/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's runtime state: one struct orchd passed everywhere (no globals), its VMs with
 * their agent slots, and the clients waiting on tasks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "loop.h"
#include "rpc.h"
#include "schema.h"
#include "store.h"

struct orchd_backend_ops;
struct control;
struct orchd_llm;
struct llm_serve;
struct orch_profiles;
struct lv_lanes;
struct shell_relay;
struct egress_host;
struct egress_serve;
struct orchd_metrics;
struct orchd_fleet;

enum vm_state {
	VM_DOWN = 0, /* not running; restarts after backoff unless stopped on purpose */
	VM_STARTING, /* backend started, waiting for the supervisor's hello */
	VM_READY,    /* hello done: tasks may be leased */
	VM_STOPPED,  /* stopped on purpose (orch vm down / shutdown) */
};
const char *vm_state_name(enum vm_state s);

/* Output received for a slot's task and not yet spooled (output.c). */
#define OUTPUT_BUF_MAX (128 * 1024)
#define OUTPUT_MAX_SEGS 64
struct output_pending {
	unsigned char *buf; /* OUTPUT_BUF_MAX bytes once used */
	size_t len;
	struct output_seg segs[OUTPUT_MAX_SEGS];
	unsigned n_segs;
	uint64_t since; /* orch_now_ms of the batch's first bytes */
};

/* Shared store only: runs in the spool that the store has not taken yet (output.c). */
struct output_backlog {
	int64_t first_seq; /* the seq of rows[0] */
	int64_t offset;	   /* its bytes' place in the spool; the others follow */
	struct output_seg *rows;
	size_t n, cap;
};

struct slot {
	int64_t task; /* 0: free */
	int64_t attempt;
	char wire_id[ORCH_MAX_ID_LEN + 1]; /* "<task>.<attempt>" on the guest channel */
	bool running;			   /* task.run acknowledged */
	bool orphan;			   /* from before an orchd restart: wait for hello */
	bool cancel_sent;
	int spool_fd;
	int64_t spool_off;
	int64_t next_guest_seq;
	int64_t next_store_seq;
	bool output_capped; /* max_output reached: further output is dropped */
	char task_str[24];  /* the task id as text, for the LLM proxy's resolver */
	struct output_pending out;
	struct output_backlog backlog;
};

struct vm {
	struct orchd *d;
	const struct orchd_vm_config *cfg;
	const struct orchd_backend_ops *ops;
	void *backend; /* the backend's own state */
	enum vm_state state;
	struct orch_rpc *rpc;	  /* the supervisor channel, NULL when none */
	struct orch_rpc *llm_rpc; /* its LLM channel (orchd-llm.c), NULL when none */
	struct llm_serve *llm_serve;
	struct llm_serve *llm_main;  /* llm.request on the main channel (orchd-llm.c) */
	struct egress_serve *egress; /* its egress lane (orchd-egress.c), NULL when none */
	struct slot *slots;
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
};

enum waiter_kind { WAITER_WAIT, WAITER_LOGS };

/* A control client waiting for a task to finish (task.wait) or following its output
 * (task.logs). */
struct waiter {
	struct waiter *prev, *next;
	enum waiter_kind kind;
	int64_t task;
	struct orch_rpc_req *req; /* reply when done */
	struct orch_rpc *rpc;	  /* the client (not referenced: dropped on close) */
	int64_t next_seq;
	int64_t attempt; /* WAITER_LOGS: this attempt's output; 0: the task's latest */
	bool all;	 /* WAITER_LOGS: every attempt's */
	bool follow;
	bool blocked; /* output queue full: resume on drain */
	bool dead;    /* its client closed: removed at the next safe point */
};

struct orchd {
	struct orch_loop *loop;
	struct orchd_config *cfg;
	struct store *store;
	char *supervisor_path;
	bool supervisor_llm;	/* it takes --llm-connect */
	bool supervisor_egress; /* it takes --egress-connect */
	char *spool_dir;
	struct vm **vms;
	size_t n_vms;
	struct control *control;
	struct orchd_llm *llm;		/* NULL: no LLM proxy */
	struct egress_host *egress;	/* NULL: no egress gateway (orchd-egress.c) */
	struct orch_profiles *profiles; /* profiles-ops.c; NULL with profiles-config.c */
	struct lv_lanes *lv_lanes;	/* the libvirt backend's vsock listeners, or NULL */
	struct shell_relay *shells;	/* debug shells through orchd (shell-relay.c) */
	struct orchd_metrics *metrics;	/* host/metrics/orchd-metrics.c */
	struct orchd_fleet *fleet;	/* host/store/orchd-fleet.c: NULL unless store_shared */
	struct waiter *waiters;
	struct orch_timer *sched_timer;
	struct orch_timer *prune_timer;
	bool sched_pending;
	bool quitting;
	uint64_t started_ms;
	int64_t n_queued; /* cached count of queued tasks for max_queue */
};

/* vm.c: the supervisor channel of one VM. */
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
/* Puts a task left leased/running by a previous orchd into its slot until hello. */
void vm_adopt_orphan(struct vm *vm, int64_t slot, int64_t task, int64_t attempt,
		     int64_t output_seq);
/* Empties a slot: its spool closed, pending output dropped (output_flush first to keep
 * it). */
void vm_slot_release(struct slot *s);
/* Sends task.cancel for a task running in this VM. */
int vm_cancel_task(struct vm *vm, int64_t task);
/* JSON view for status. */
json_t *vm_to_json(const struct vm *vm);

/* sched.c */
void sched_kick(struct orchd *d); /* run the scheduler soon (coalesced) */
int sched_run(struct orchd *d);	  /* lease queued tasks to free slots now */
/* A task changed state (finished, lost, requeued): wake waiters and the scheduler. */
void orchd_task_changed(struct orchd *d, int64_t task);

/* A store call failed with code: true when the store is away (PostgreSQL restarting,
 * unreachable): the caller keeps what it has and tries again later (orchd-fleet.c). */
bool store_away(struct orchd *d, int code);

/* waiters.c */
/* Every waiter looks at its task again (a shared store: after lost notifications). */
void waiters_poll(struct orchd *d);
void waiters_output(struct orchd *d, int64_t task);
void waiters_finished(struct orchd *d, int64_t task);
void waiters_drop_client(struct orchd *d, struct orch_rpc *rpc);
void waiters_drain(struct orchd *d, struct orch_rpc *rpc);
/* attempt / all: which output a WAITER_LOGS replays (see struct waiter). */
int waiter_add(struct orchd *d, enum waiter_kind kind, int64_t task, int64_t from_seq, bool follow,
	       int64_t attempt, bool all, struct orch_rpc_req *req);
void waiters_free_all(struct orchd *d);

/* output.c: task.output from the guest, coalesced into the spool and the store. */
void output_take(struct vm *vm, struct slot *s, int stream, const void *data, size_t len);
/* Writes what a slot holds now (before its task's state changes). */
void output_flush(struct vm *vm, struct slot *s);
/* Frees the slot's buffer (the slot is cleared). */
void output_release(struct slot *s);
/* Shared store: stores what waits in the slot's backlog. 0 when nothing waits any more,
 * -EAGAIN while the store is away. */
int output_store_backlog(struct vm *vm, struct slot *s);

/* spool.c: task output files under <state_dir>/spool/<task>.out */
int spool_open(struct orchd *d, int64_t task, int64_t *ret_size, struct orch_error *err);
/* Removes a task's spool file (pruning); ENOENT is not an error. */
void spool_remove(struct orchd *d, int64_t task);
int spool_read(struct orchd *d, int64_t task, int64_t offset, int64_t len, void **ret,
	       struct orch_error *err);
