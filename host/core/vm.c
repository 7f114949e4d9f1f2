/* SPDX-License-Identifier: Apache-2.0 */
/* One VM as orchd sees it (vm.h): the supervisor channel (hello, heartbeats, task output
 * and exits), its agent slots, liveness and restarts. Everything the guest sends is
 * validated by proto/schema.c before it touches the store. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "orchd-fleet.h"
#include "orchd-metrics.h"
#include "orchd.h"
#include "output.h"
#include "slot.h"
#include "vm-thaw.h"

/* A VM up this long before it went down restarts without the accumulated backoff. */
#define VM_STABLE_MS 30000

static const char *const vm_state_names[] = {
	[VM_DOWN] = "down",
	[VM_STARTING] = "starting",
	[VM_READY] = "ready",
	[VM_STOPPED] = "stopped",
};

const char *vm_state_name(enum vm_state s)
{
	return vm_state_names[s];
}

const char *vm_class_name(const struct vm *vm)
{
	return vm->class_name ? vm->class_name : vm->cfg->name;
}

struct vm *orchd_find_vm(struct orchd *d, const char *name)
{
	for (size_t i = 0; i < d->n_vms; i++)
		if (strcmp(d->vms[i]->cfg->name, name) == 0)
			return d->vms[i];
	return NULL;
}

static char *task_str(int64_t id, char buf[static 24])
{
	snprintf(buf, 24, "%lld", (long long)id);
	return buf;
}

static void slot_release(struct slot *s)
{
	output_release(s);
	if (s->spool_fd >= 0)
		close(s->spool_fd);
	*s = (struct slot){.spool_fd = -1};
}

static struct slot *slot_by_wire(struct vm *vm, const char *wire)
{
	for (int64_t i = 0; i < vm->n_slots; i++)
		if (vm->slots[i].task && strcmp(vm->slots[i].wire_id, wire) == 0)
			return &vm->slots[i];
	return NULL;
}

/* The task in slot s was lost (channel gone, heartbeats missed, not in hello). */
static void slot_lost(struct vm *vm, struct slot *s, const char *reason)
{
	struct orch_error err = {0};
	char tb[24], why[300];
	bool requeued = false;
	int64_t task = s->task;

	snprintf(why, sizeof(why), "lost: %s", reason);
	output_flush(vm, s); /* what arrived before is kept */
	if (store_task_lost_attempt(vm->d->store, task, s->attempt, why, &requeued, &err) < 0 &&
	    store_away(vm->d, err.code)) {
		/* still this node's in the store, under its live lease: marked when it is back */
		orchd_fleet_defer_lost(vm->d, task, s->attempt, why);
		orch_log(ORCH_LOG_WARN, "vm", "task lost; the store is away: recorded later", "vm",
			 vm->cfg->name, "task", task_str(task, tb), "reason", reason, NULL);
	} else if (err.code) {
		orch_log(ORCH_LOG_WARN, "vm", "cannot mark task lost", "vm", vm->cfg->name, "task",
			 task_str(task, tb), "error", err.msg, NULL);
	} else {
		orchd_metrics_task_lost(vm->d);
		orch_log(ORCH_LOG_WARN, "vm", requeued ? "task lost, re-queued" : "task lost", "vm",
			 vm->cfg->name, "task", task_str(task, tb), "reason", reason, NULL);
	}
	slot_release(s);
	orchd_task_changed(vm->d, task);
	if (vm->owner)
		vm->owner->released(vm);
}

/* Records the VM's state in the store (vms table) and in memory. */
static void set_state(struct vm *vm, enum vm_state st)
{
	struct orch_error err = {0};

	vm->state = st;
	if (store_vm_update(vm->d->store, vm->cfg->name, vm->ops->name, vm->n_slots,
			    vm_state_name(st), vm->boot_id[0] ? vm->boot_id : NULL, &err) < 0)
		orch_log(ORCH_LOG_WARN, "store", "cannot record the vm state", "vm", vm->cfg->name,
			 "error", err.msg, NULL);
}

static void on_restart_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct vm *vm = data;

	if (vm->state == VM_DOWN && !vm->d->quitting)
		vm_start(vm);
}

static void drop_channel(struct vm *vm)
{
	struct orch_rpc *rpc = vm->rpc;

	orchd_services_channel_down(vm); /* their lanes and their use of this channel */
	vm->rpc = NULL;
	orch_timer_free(vm->hb_timer);
	vm->hb_timer = NULL;
	if (rpc) {
		orch_rpc_set_close_cb(rpc, NULL);
		orch_rpc_close(rpc);
		orch_rpc_unref(rpc);
	}
}

void vm_gone(struct vm *vm, const char *reason)
{
	uint64_t backoff;

	if (vm->state == VM_DOWN || vm->state == VM_STOPPED)
		return;
	orch_log(ORCH_LOG_WARN, "vm", "vm down", "vm", vm->cfg->name, "reason", reason, NULL);
	/* The restart backoff starts over only after a VM that stayed up for a while: a guest
	 * that says hello and goes at once is restarted ever more slowly, not every second. */
	if (vm->ready_ms && orch_now_ms() - vm->ready_ms >= VM_STABLE_MS)
		vm->failures = 0;
	vm->ready_ms = 0;
	snprintf(vm->last_error, sizeof(vm->last_error), "%s", reason);
	drop_channel(vm);
	orch_timer_disarm(vm->hello_timer);
	vm->ops->stop(vm, true);
	set_state(vm, VM_DOWN);
	for (int64_t i = 0; i < vm->n_slots; i++)
		if (vm->slots[i].task)
			slot_lost(vm, &vm->slots[i], reason);
	if (vm->d->quitting)
		return;
	if (vm->owner) { /* a pooled VM is retired, not restarted */
		vm->owner->gone(vm, reason);
		return;
	}
	vm->failures++;
	backoff = vm->failures > 5 ? 30000 : 500ull << vm->failures;
	if (!vm->restart_timer)
		orch_timer_add(vm->d->loop, backoff, 0, on_restart_timer, vm, &vm->restart_timer);
	else
		orch_timer_rearm(vm->restart_timer, backoff);
}

void vm_stop(struct vm *vm, const char *reason, bool force)
{
	if (vm->state == VM_STOPPED)
		return;
	drop_channel(vm);
	orch_timer_disarm(vm->hello_timer);
	orch_timer_disarm(vm->restart_timer);
	vm->ops->stop(vm, force);
	for (int64_t i = 0; i < vm->n_slots; i++)
		if (vm->slots[i].task)
			slot_lost(vm, &vm->slots[i], reason);
	set_state(vm, VM_STOPPED);
}

static void on_hello_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct vm *vm = data;

	if (vm->state == VM_STARTING)
		vm_gone(vm, "no hello from the supervisor within boot_timeout_ms");
}

int vm_start(struct vm *vm)
{
	struct orch_error err = {0};
	uint64_t timeout = (uint64_t)vm->cfg->boot_timeout_ms;
	int r;

	vm->boot_id[0] = 0;
	vm->start_ms = orch_now_ms();
	set_state(vm, VM_STARTING);
	orch_timer_disarm(vm->hello_timer);
	r = vm->ops->start(vm, &err);
	if (r < 0) {
		orch_log(ORCH_LOG_ERROR, "vm", "cannot start vm", "vm", vm->cfg->name, "error",
			 err.msg, NULL);
		vm->state = VM_STARTING; /* so that vm_gone schedules a retry */
		vm_gone(vm, err.msg);
		return r;
	}
	/* The fallback when no hello comes: armed after start (which may take a while) and a
	 * little later than boot_timeout_ms, so that a backend's own boot timeout, which can
	 * say more (the console's tail), fires first. */
	if (vm->state == VM_STARTING) {
		timeout += 500;
		if (!vm->hello_timer)
			orch_timer_add(vm->d->loop, timeout, 0, on_hello_timer, vm,
				       &vm->hello_timer);
		else
			orch_timer_rearm(vm->hello_timer, timeout);
	}
	return r;
}

static void on_heartbeat_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct vm *vm = data;
	const struct orchd_scheduler_config *sc = &vm->d->cfg->scheduler;
	uint64_t limit = (uint64_t)(sc->heartbeat_ms * sc->heartbeat_misses);

	if (vm->state == VM_READY && orch_now_ms() - vm->last_heartbeat > limit + 50)
		vm_gone(vm, "missed heartbeats");
}

static void on_channel_close(struct orch_rpc *rpc, int code, void *data)
{
	struct vm *vm = data;
	char why[128];

	snprintf(why, sizeof(why), "channel closed%s%s", code ? ": " : "",
		 code ? strerror(-code) : "");
	vm_gone(vm, why);
}

/* Reconciles the tasks orchd thinks run here with the ones the supervisor reports. */
static void reconcile(struct vm *vm, const struct orch_hello *h)
{
	for (int64_t i = 0; i < vm->n_slots; i++) {
		struct slot *s = &vm->slots[i];
		bool found = false;

		if (!s->task)
			continue;
		for (size_t j = 0; j < h->n_running; j++)
			if (strcmp(h->running[j].task, s->wire_id) == 0 && h->running[j].slot == i)
				found = true;
		if (found) {
			s->orphan = false;
			s->running = true;
		} else {
			slot_lost(vm, s, "the supervisor does not know it after reconnecting");
		}
	}
	for (size_t j = 0; j < h->n_running; j++)
		if (!slot_by_wire(vm, h->running[j].task)) {
			json_t *p = json_pack("{ss}", "task", h->running[j].task);
			if (p)
				orch_rpc_call(vm->rpc, "task.cancel", p, 0, NULL, NULL);
		}
}

static int m_hello(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	struct vm *vm = data;
	struct orch_hello h = {0};
	struct orch_hello_reply rep = {
		.protocol = ORCH_PROTOCOL_VERSION,
		.heartbeat_ms = vm->d->cfg->scheduler.heartbeat_ms,
		.name = vm->cfg->name,
	};
	int r;

	r = orch_hello_parse(params, &h, err);
	if (r < 0)
		return r;
	if (h.protocol != ORCH_PROTOCOL_VERSION || h.slots != vm->n_slots) {
		r = orch_err(err, ORCH_RPC_INVALID_PARAMS,
			     "hello: expected protocol %d and %lld slots, got %lld and %lld",
			     ORCH_PROTOCOL_VERSION, (long long)vm->n_slots, (long long)h.protocol,
			     (long long)h.slots);
		orch_hello_done(&h);
		return r;
	}
	snprintf(vm->boot_id, sizeof(vm->boot_id), "%s", h.boot_id);
	orch_rpc_reply(req, orch_hello_reply_build(&rep));
	orch_rpc_set_state(rpc, ORCH_STATE_READY);
	reconcile(vm, &h);
	r = vm_thaw_start(vm, json_is_true(json_object_get(h.capabilities, "frozen")), err);
	orch_hello_done(&h);
	if (r < 0) {
		vm_gone(vm, err->msg);
		return 0;
	}
	if (r == 0) /* else ready once thawed (vm-thaw.c) */
		vm_became_ready(vm);
	return 0;
}

void vm_became_ready(struct vm *vm)
{
	orch_timer_disarm(vm->hello_timer);
	set_state(vm, VM_READY);
	vm->ready_ms = orch_now_ms();
	orchd_metrics_observe(vm->d,
			      vm->ops == &orchd_backend_local ? ORCHD_MX_BOOT_LOCAL
							      : ORCHD_MX_BOOT_LIBVIRT,
			      (double)(vm->ready_ms - vm->start_ms) / 1e3);
	vm->last_error[0] = 0;
	vm->last_heartbeat = orch_now_ms();
	if (!vm->hb_timer)
		orch_timer_add(vm->d->loop, (uint64_t)vm->d->cfg->scheduler.heartbeat_ms,
			       (uint64_t)vm->d->cfg->scheduler.heartbeat_ms, on_heartbeat_timer, vm,
			       &vm->hb_timer);
	orch_log(ORCH_LOG_INFO, "vm", "supervisor ready", "vm", vm->cfg->name, "boot_id",
		 vm->boot_id, NULL);
	sched_kick(vm->d);
}

static int m_heartbeat(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	struct vm *vm = data;
	struct orch_heartbeat hb;
	int r = orch_heartbeat_parse(params, &hb, err);

	if (r < 0)
		return r;
	vm->last_heartbeat = orch_now_ms();
	return 0;
}

static int m_output(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct vm *vm = data;
	struct orch_task_output o = {0};
	struct slot *s;
	int r;

	r = orch_task_output_parse(params, &o, err);
	if (r < 0)
		return r;
	vm->last_heartbeat = orch_now_ms();
	s = slot_by_wire(vm, o.task);
	if (!s || o.seq < s->next_guest_seq) { /* stale attempt or a duplicate */
		orch_task_output_done(&o);
		return 0;
	}
	if (o.seq > s->next_guest_seq)
		orch_logf(ORCH_LOG_WARN, "vm", "task %s: output seq %lld, expected %lld",
			  s->wire_id, (long long)o.seq, (long long)s->next_guest_seq);
	/* o.seq <= ORCH_MAX_SEQ (the schema), so this cannot overflow; a guest that jumped
	 * to the end has no further seq left, which harms only its own task's output. */
	bool first = s->next_guest_seq == 0;
	s->next_guest_seq = o.seq + 1;
	output_take(vm, s, (int)o.stream, o.data, o.len);
	orch_task_output_done(&o);
	if (first && vm->owner && vm->owner->printed)
		vm->owner->printed(vm);
	return 0;
}

static enum task_state exit_state(const struct orch_task_exit *e)
{
	switch (e->status) {
	case ORCH_EXIT_EXITED:
		return e->exit_code == 0 ? TASK_SUCCEEDED : TASK_FAILED;
	case ORCH_EXIT_TIMED_OUT:
		return TASK_TIMED_OUT;
	case ORCH_EXIT_CANCELLED:
		return TASK_CANCELLED;
	case ORCH_EXIT_SIGNALED:
	case ORCH_EXIT_FAILED:
	default:
		return TASK_FAILED;
	}
}

static int m_exit(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	struct vm *vm = data;
	struct orch_task_exit e = {0};
	struct orch_error serr = {0};
	struct task_result res;
	struct slot *s;
	int64_t task;
	char tb[24];
	int r;

	r = orch_task_exit_parse(params, &e, err);
	if (r < 0)
		return r;
	s = slot_by_wire(vm, e.task);
	if (!s) /* already settled (a re-sent exit) or from a stale attempt: acknowledge */
		return orch_rpc_reply(req, json_object());
	res = (struct task_result){
		.state = exit_state(&e),
		.exit_code = e.status == ORCH_EXIT_EXITED ? e.exit_code : -1,
		.signal = e.signal,
		.duration_ms = e.duration_ms,
		.utime_ms = e.rusage.utime_ms,
		.stime_ms = e.rusage.stime_ms,
		.maxrss_kb = e.rusage.maxrss_kb,
		.reason = e.reason,
		.attempt = s->attempt,
	};
	task = s->task;
	output_flush(vm, s); /* the output is complete before the task is final */
	r = s->backlog.n && output_store_backlog(vm, s) < 0 ? -ENOTCONN : 0;
	if (r >= 0)
		r = store_task_finish(vm->d->store, task, &res, &serr);
	if (r < 0 && store_away(vm->d, r))
		/* Not acknowledged: the supervisor keeps the exit and sends it again with its
		 * next heartbeat (a timeout's code), by when the store may be back. */
		return orch_err(err, ORCH_RPC_TIMEOUT, "the store is unavailable; send it again");
	if (r < 0 && r != -ESTALE) {
		orch_log(ORCH_LOG_ERROR, "store", "cannot record exit", "task", task_str(task, tb),
			 "error", serr.msg, NULL);
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "cannot record the exit");
	}
	if (r >= 0)
		orchd_metrics_task_ended(vm->d, (int)res.state);
	orch_log(ORCH_LOG_INFO, "vm", "task finished", "vm", vm->cfg->name, "task",
		 task_str(task, tb), "state", task_state_name(res.state), NULL);
	slot_release(s);
	orch_rpc_reply(req, json_object());
	orchd_services_task_done(vm->d, task);
	orchd_task_changed(vm->d, task);
	if (vm->owner)
		vm->owner->released(vm);
	return 0;
}

const struct orch_rpc_method vm_core_methods[] = {
	{"hello", ORCH_RPC_M_REQUEST, ORCH_STATE_NEW, m_hello},
	{"heartbeat", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, m_heartbeat},
	{"task.output", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, m_output},
	{"task.exit", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, m_exit},
};
const size_t vm_n_core_methods = ELEMENTSOF(vm_core_methods);

int vm_attach_channel(struct vm *vm, int fd, struct orch_error *err)
{
	struct orch_rpc_opts opts = {
		/* a supervisor without an LLM channel of its own sends llm.request here */
		.max_line = ORCH_PROTOCOL_MAX_LINE,
		.max_inflight = 256,
		.name = vm->cfg->name,
	};
	size_t n = 0;
	const struct orch_rpc_method *methods = orchd_vm_methods(vm->d, &n);
	int r;

	drop_channel(vm);
	r = methods ? orch_rpc_new(vm->d->loop, fd, methods, n, &opts, vm, &vm->rpc) : -ENOMEM;
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "vm %s: cannot set up the channel", vm->cfg->name);
	}
	orch_rpc_set_close_cb(vm->rpc, on_channel_close);
	return orchd_services_channel_up(vm, err);
}

void vm_adopt_orphan(struct vm *vm, int64_t slot, int64_t task, int64_t attempt, int64_t output_seq)
{
	struct orch_error err = {0};
	struct slot *s;
	int64_t size = 0;
	int fd;

	if (slot < 0 || slot >= vm->n_slots)
		return;
	s = &vm->slots[slot];
	slot_release(s);
	s->task = task;
	s->attempt = attempt;
	s->orphan = true;
	s->running = true;
	s->next_store_seq = output_seq;
	/* The guest's own seq is unknown after a restart: accept from 0 on. */
	fd = spool_open(vm->d, task, &size, &err);
	if (fd >= 0) {
		s->spool_fd = fd;
		s->spool_off = size;
	} else {
		orch_log(ORCH_LOG_WARN, "spool", "cannot reopen the spool", "error", err.msg, NULL);
	}
	snprintf(s->wire_id, sizeof(s->wire_id), "%lld.%lld", (long long)task, (long long)attempt);
}

int64_t vm_slot_task(const struct vm *vm, int64_t slot)
{
	return slot >= 0 && slot < vm->n_slots ? vm->slots[slot].task : 0;
}

const char *vm_slot_task_str(struct vm *vm, int64_t slot)
{
	if (!vm_slot_task(vm, slot))
		return NULL;
	struct slot *s = &vm->slots[slot];
	snprintf(s->task_str, sizeof(s->task_str), "%lld", (long long)s->task);
	return s->task_str;
}

int vm_slot_lease(struct vm *vm, int64_t slot, const struct task_row *t, const char **ret_wire_id,
		  struct orch_error *err)
{
	struct slot *s = &vm->slots[slot];
	int64_t size = 0;
	int r;

	slot_release(s);
	s->task = t->id;
	s->attempt = t->attempts;
	s->next_store_seq = t->output_seq;
	snprintf(s->wire_id, sizeof(s->wire_id), "%lld.%lld", (long long)t->id,
		 (long long)t->attempts);
	*ret_wire_id = s->wire_id;
	r = spool_open(vm->d, t->id, &size, err);
	if (r < 0)
		return r; /* the slot holds the lease: vm_slot_run_failed settles it */
	s->spool_fd = r;
	s->spool_off = size;
	return 0;
}

int64_t vm_slot_attempt(const struct vm *vm, int64_t slot)
{
	return slot >= 0 && slot < vm->n_slots && vm->slots[slot].task ? vm->slots[slot].attempt
								       : 0;
}

const char *vm_slot_wire_id(const struct vm *vm, int64_t slot)
{
	return slot >= 0 && slot < vm->n_slots && vm->slots[slot].task ? vm->slots[slot].wire_id
								       : NULL;
}

bool vm_slot_holds(const struct vm *vm, int64_t slot, int64_t task, int64_t attempt)
{
	return slot >= 0 && slot < vm->n_slots && vm->slots[slot].task == task &&
	       vm->slots[slot].attempt == attempt;
}

void vm_slot_acked(struct vm *vm, int64_t slot)
{
	vm->slots[slot].running = true;
}

void vm_slot_run_failed(struct vm *vm, int64_t slot, const struct task_result *res)
{
	struct slot *s = &vm->slots[slot];
	struct orch_error err = {0};
	int64_t task = s->task;
	char tb[24];

	if (!task)
		return;
	output_flush(vm, s); /* what it printed before failing */
	if ((res ? store_task_finish(vm->d->store, task, res, &err)
		 : store_task_unlease_attempt(vm->d->store, task, s->attempt, &err)) < 0 &&
	    err.code != -ESTALE)
		orch_log(ORCH_LOG_ERROR, "store", "cannot settle a task that did not start", "task",
			 task_str(task, tb), "error", err.msg, NULL);
	slot_release(s);
	orchd_task_changed(vm->d, task);
	if (vm->owner)
		vm->owner->released(vm);
}

unsigned vm_slots_drop(struct vm *vm)
{
	unsigned n = 0;

	for (int64_t i = 0; i < vm->n_slots; i++) {
		struct slot *s = &vm->slots[i];
		if (!s->task)
			continue;
		(void)vm_cancel_task(vm, s->task);
		slot_release(s);
		n++;
	}
	return n;
}

void vm_output_retry(struct vm *vm)
{
	for (int64_t i = 0; i < vm->n_slots; i++)
		if (vm->slots[i].task && vm->slots[i].backlog.n)
			(void)output_store_backlog(vm, &vm->slots[i]);
}

int vm_cancel_task(struct vm *vm, int64_t task)
{
	for (int64_t i = 0; i < vm->n_slots; i++) {
		struct slot *s = &vm->slots[i];
		if (s->task != task)
			continue;
		if (!vm->rpc || vm->state != VM_READY)
			return -ENOTCONN;
		s->cancel_sent = true;
		return orch_rpc_call(
			vm->rpc, "task.cancel",
			json_pack("{sssI}", "task", s->wire_id, "grace_ms", (json_int_t)2000), 0,
			NULL, NULL);
	}
	return -ENOENT;
}

int vm_new(struct orchd *d, const struct orchd_vm_config *cfg, struct vm **ret,
	   struct orch_error *err)
{
	struct vm *vm;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return orch_err(err, -ENOMEM, "out of memory");
	vm->d = d;
	vm->cfg = cfg;
	vm->ops = orchd_backend_find(orchd_backend_name(cfg->backend));
	if (!vm->ops) {
		free(vm);
		return orch_err(err, -EOPNOTSUPP,
				"vms.%s.backend: the %s backend is not built into this orchd",
				cfg->name, orchd_backend_name(cfg->backend));
	}
	vm->n_slots = cfg->slots;
	vm->slots = calloc((size_t)cfg->slots, sizeof(*vm->slots));
	if (!vm->slots) {
		free(vm);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	for (int64_t i = 0; i < vm->n_slots; i++)
		vm->slots[i].spool_fd = -1;
	if (cfg->n_profiles) {
		json_t *a = json_array();
		for (size_t i = 0; i < cfg->n_profiles; i++)
			json_array_append_new(a, json_string(cfg->profiles[i]));
		vm->profiles_json = json_dumps(a, JSON_COMPACT);
		json_decref(a);
		if (!vm->profiles_json) {
			free(vm->slots);
			free(vm);
			return orch_err(err, -ENOMEM, "out of memory");
		}
	}
	vm->state = VM_STOPPED;
	*ret = vm;
	return 0;
}

void vm_free(struct vm *vm)
{
	if (!vm)
		return;
	drop_channel(vm);
	if (vm->ops->free)
		vm->ops->free(vm);
	orch_timer_free(vm->restart_timer);
	orch_timer_free(vm->hello_timer);
	orch_timer_free(vm->hb_timer);
	for (int64_t i = 0; i < vm->n_slots; i++) {
		if (vm->slots[i].task)
			output_flush(vm, &vm->slots[i]);
		slot_release(&vm->slots[i]);
	}
	orch_timer_free(vm->out_timer);
	free(vm->slots);
	free(vm->profiles_json);
	free(vm);
}
