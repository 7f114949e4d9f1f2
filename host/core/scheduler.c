/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler: queued tasks go to free agent slots of ready VMs, priority first, then
 * FIFO (the store's ORDER BY), honouring a task's named VM and/or slot. A lease becomes
 * "running" when the supervisor acknowledges task.run; an unacknowledged lease is
 * re-queued after lease_timeout_ms. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "orchd-metrics.h"
#include "orchd.h"

struct run_ctx {
	struct vm *vm;
	int64_t slot, task, attempt;
	uint64_t sent_ms; /* orch_now_ms when task.run went out */
};

static void on_run_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *rerr,
			 json_t *err_data, void *data)
{
	_cleanup_free_ struct run_ctx *c = data;
	struct orchd *d = c->vm->d;
	struct orch_error err = {0};
	char tb[24];

	snprintf(tb, sizeof(tb), "%lld", (long long)c->task);
	if (!vm_slot_holds(c->vm, c->slot, c->task, c->attempt))
		return; /* settled meanwhile (exit arrived first, or the VM went away) */
	if (!rerr) {
		vm_slot_acked(c->vm, c->slot);
		orchd_metrics_observe(d, ORCHD_MX_DISPATCH,
				      (double)(orch_now_ms() - c->sent_ms) / 1e3);
		if (store_task_running_attempt(d->store, c->task, c->attempt, &err) < 0 &&
		    err.code != -ESTALE)
			orch_log(ORCH_LOG_ERROR, "sched", "cannot mark running", "task", tb,
				 "error", err.msg, NULL);
		orch_log(ORCH_LOG_DEBUG, "sched", "task running", "task", tb, "vm",
			 c->vm->cfg->name, NULL);
		return;
	}
	if (rerr->code == ORCH_RPC_CLOSED)
		return; /* vm_gone handles the slot */
	if (rerr->code == ORCH_RPC_TIMEOUT) {
		/* The supervisor may or may not run it: the channel cannot be trusted any more.
		 * vm_gone makes the task lost (retried per policy) and restarts the VM. */
		vm_gone(c->vm, "task.run not acknowledged in time");
		return;
	}
	if (rerr->code == ORCH_RPC_BUSY) {
		orch_log(ORCH_LOG_WARN, "sched", "task.run refused, re-queued", "task", tb, "error",
			 rerr->msg, NULL);
		vm_slot_run_failed(c->vm, c->slot, NULL);
		return;
	}
	struct task_result res = {
		.state = TASK_FAILED, .exit_code = -1, .reason = rerr->msg, .attempt = c->attempt};
	orch_log(ORCH_LOG_WARN, "sched", "task.run failed", "task", tb, "error", rerr->msg, NULL);
	vm_slot_run_failed(c->vm, c->slot, &res);
}

static int64_t pick(int64_t a, int64_t b)
{
	return a ? a : b;
}

static void merge_limits(struct orchd_limits *l, const struct orchd_limits *o)
{
	l->timeout_ms = pick(l->timeout_ms, o->timeout_ms);
	l->memory_mib = pick(l->memory_mib, o->memory_mib);
	l->pids = pick(l->pids, o->pids);
	l->cpu_percent = pick(l->cpu_percent, o->cpu_percent);
	l->nofile = pick(l->nofile, o->nofile);
	l->fsize_mib = pick(l->fsize_mib, o->fsize_mib);
}

static const char **strv_from_json(const char *text, size_t *ret_n, json_t **keep)
{
	json_t *a = json_loads(text, 0, NULL), *v;
	const char **out;
	size_t i;

	if (!json_is_array(a)) {
		json_decref(a);
		return NULL;
	}
	out = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!out) {
		json_decref(a);
		return NULL;
	}
	json_array_foreach(a, i, v) out[i] = json_string_value(v);
	*ret_n = json_array_size(a);
	*keep = a;
	return out;
}

/* Sends task.run for a freshly leased task (workspace: its own, NULL: agent-N). */
static int send_run(struct vm *vm, int64_t slot, struct task_row *t, const char *wire_id,
		    const char *workspace, struct orch_error *err)
{
	_cleanup_json_ json_t *argv_j = NULL, *env_j = NULL, *ro_j = NULL;
	_cleanup_free_ const char **argv = NULL, **env = NULL, **ro = NULL;
	struct orchd_limits lim = t->limits;
	struct orch_task_run run = {0};
	struct run_ctx *c;
	json_t *params;
	int r;

	merge_limits(&lim, &vm->cfg->limits);
	merge_limits(&lim, &vm->d->cfg->limits);
	argv = strv_from_json(t->argv_json, &run.argc, &argv_j);
	env = strv_from_json(t->env_json, &run.n_env, &env_j);
	ro = strv_from_json(t->ro_paths_json, &run.n_ro_paths, &ro_j);
	if (!argv || !env || !ro || run.argc == 0)
		return orch_err(err, -EINVAL, "task %lld: bad argv/env/ro_paths in the store",
				(long long)t->id);
	run.task = wire_id;
	run.slot = slot;
	run.argv = argv;
	run.env = env;
	run.cwd = t->cwd;
	run.ro_paths = ro;
	run.workspace = workspace;
	run.timeout_ms = lim.timeout_ms;
	run.limits = (struct orch_limits){
		.memory_bytes = lim.memory_mib * 1024 * 1024,
		.pids = lim.pids,
		.cpu_percent = lim.cpu_percent,
		.nofile = lim.nofile,
		.fsize_bytes = lim.fsize_mib * 1024 * 1024,
	};
	params = orch_task_run_build(&run);
	if (!params)
		return orch_err(err, -ENOMEM, "cannot build task.run");
	c = malloc(sizeof(*c));
	if (!c) {
		json_decref(params);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	*c = (struct run_ctx){vm, slot, t->id, t->attempts, orch_now_ms()};
	r = orch_rpc_call(vm->rpc, "task.run", params,
			  (uint64_t)vm->d->cfg->scheduler.lease_timeout_ms, on_run_reply, c);
	if (r < 0) {
		free(c);
		return orch_errno(err, r, "cannot send task.run");
	}
	return 0;
}

/* Leases one task to vm/slot; returns 1 when one was leased, 0 when none is queued. */
static int lease_one(struct vm *vm, int64_t slot, struct orch_error *err)
{
	struct orchd *d = vm->d;
	struct task_row *t = NULL;
	const char *wire_id = NULL;
	int64_t id;
	char tb[24];
	int r;

	r = store_task_lease_next(d->store, vm_class_name(vm), vm->cfg->name, slot,
				  vm->profiles_json, &t, err);
	if (r < 0 || !t)
		return r;
	id = t->id;
	if (t->attempts == 1)
		orchd_metrics_observe(d, ORCHD_MX_LEASE,
				      (double)(store_now_ms() - t->created_at) / 1e3);
	r = vm_slot_lease(vm, slot, t, &wire_id, err);
	/* The backend may ready the VM first (memory hot-plug) and go on later
	 * (sched_lease_ready). */
	if (r >= 0 && vm->ops->task_leased && vm->ops->task_leased(vm, slot, id, t->attempts) > 0) {
		if (vm->owner)
			vm->owner->leased(vm, slot);
		snprintf(tb, sizeof(tb), "%lld", (long long)id);
		orch_log(ORCH_LOG_DEBUG, "sched", "task leased; its VM gets ready first", "task",
			 tb, "vm", vm->cfg->name, NULL);
		task_row_free(t);
		return 1;
	}
	/* A service may prepare something first (a repository task's workspace, host/git)
	 * and send task.run itself (sched_send_run). */
	if (r >= 0 && (r = orchd_services_task_leased(d, vm, slot, id, err)) > 0) {
		task_row_free(t);
		return 1;
	}
	if (r >= 0)
		r = send_run(vm, slot, t, wire_id, NULL, err);
	snprintf(tb, sizeof(tb), "%lld", (long long)id);
	if (r < 0 && !vm_slot_holds(vm, slot, id, t->attempts)) {
		/* sending failed and closed the channel: vm_gone already settled the slot */
		task_row_free(t);
		return 1;
	}
	if (r < 0) {
		struct task_result res = {.state = TASK_FAILED,
					  .exit_code = -1,
					  .reason = err->msg,
					  .attempt = t->attempts};

		orch_log(ORCH_LOG_ERROR, "sched", "cannot start task", "task", tb, "error",
			 err->msg, NULL);
		vm_slot_run_failed(vm, slot, &res);
		task_row_free(t);
		return 1;
	}
	if (vm->owner)
		vm->owner->leased(vm, slot);
	if (t->cancel_requested)
		vm_cancel_task(vm, id);
	orch_log(ORCH_LOG_DEBUG, "sched", "task leased", "task", tb, "vm", vm->cfg->name, NULL);
	task_row_free(t);
	return 1;
}

int sched_send_run(struct vm *vm, int64_t slot, int64_t task, int64_t attempt,
		   const char *workspace, struct orch_error *err)
{
	struct task_row *t = NULL;
	char wire_id[ORCH_MAX_ID_LEN + 1];
	int r;

	if (!vm_slot_holds(vm, slot, task, attempt))
		return orch_err(err, -ESTALE, "task %lld is no longer in its slot",
				(long long)task);
	if ((r = store_task_get(vm->d->store, task, &t, err)) < 0)
		return r;
	if (t->cancel_requested) {
		struct task_result res = {.state = TASK_CANCELLED,
					  .exit_code = -1,
					  .reason = "cancelled before it started"};
		task_row_free(t);
		vm_slot_run_failed(vm, slot, &res);
		return 0;
	}
	snprintf(wire_id, sizeof(wire_id), "%s", vm_slot_wire_id(vm, slot));
	r = send_run(vm, slot, t, wire_id, workspace, err);
	task_row_free(t);
	return r;
}

void sched_lease_ready(struct vm *vm, int64_t slot, int64_t task, int64_t attempt)
{
	struct orch_error err = {0};
	char tb[24];
	int r;

	if (!vm_slot_holds(vm, slot, task, attempt))
		return;
	r = orchd_services_task_leased(vm->d, vm, slot, task, &err);
	if (r == 0)
		r = sched_send_run(vm, slot, task, attempt, NULL, &err);
	if (r >= 0 || !vm_slot_holds(vm, slot, task, attempt))
		return; /* sent, deferred again, or settled (a send that closed the channel) */
	struct task_result res = {
		.state = TASK_FAILED, .exit_code = -1, .reason = err.msg, .attempt = attempt};
	snprintf(tb, sizeof(tb), "%lld", (long long)task);
	orch_log(ORCH_LOG_ERROR, "sched", "cannot start task", "task", tb, "error", err.msg, NULL);
	vm_slot_run_failed(vm, slot, &res);
}

int sched_run(struct orchd *d)
{
	struct orch_error err = {0};
	int r;

	if (d->quitting)
		return 0;
	for (size_t i = 0; i < d->n_vms; i++) {
		struct vm *vm = d->vms[i];
		if (vm->state != VM_READY || !vm->rpc || (vm->owner && !vm->owner->leasable(vm)))
			continue;
		for (int64_t j = 0; j < vm->n_slots; j++) {
			if (vm_slot_task(vm, j))
				continue;
			r = lease_one(vm, j, &err);
			if (r < 0 && store_away(d, r))
				return r; /* tried again when the store is back */
			if (r < 0) {
				orch_log(ORCH_LOG_ERROR, "sched", "scheduling failed", "error",
					 err.msg, NULL);
				return r;
			}
			if (vm->state != VM_READY)
				break;
		}
	}
	orchd_services_sched_pass(d);
	return 0;
}

static void on_sched_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orchd *d = data;

	d->sched_pending = false;
	sched_run(d);
}

void sched_kick(struct orchd *d)
{
	if (d->sched_pending || d->quitting)
		return;
	d->sched_pending = true;
	if (!d->sched_timer)
		orch_timer_add(d->loop, 0, 0, on_sched_timer, d, &d->sched_timer);
	else
		orch_timer_rearm(d->sched_timer, 0);
}

void orchd_task_changed(struct orchd *d, int64_t task)
{
	orchd_services_task_changed(d, task); /* e.g. a repository task's result is recorded */
	waiters_finished(d, task);
	sched_kick(d);
}
