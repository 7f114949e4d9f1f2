/* SPDX-License-Identifier: Apache-2.0 */
/* Control socket methods (docs/CONTROL.md). Params are validated strictly: unknown
 * members, wrong types and out-of-range values are INVALID_PARAMS naming the member. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "config-util.h"
#include "control.h"
#include "log.h"
#include "orch-config.h"

#define LIST_MAX 10000

static int bad(struct orch_error *err, int r)
{
	/* config-util reports -EINVAL with the member named: make it a JSON-RPC error. */
	if (r == -EINVAL)
		err->code = ORCH_RPC_INVALID_PARAMS;
	return err->code;
}

static int need_object(json_t *params, const char *const *keys, struct orch_error *err)
{
	int r;

	if (!params)
		return 0;
	if (!json_is_object(params))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params: expected an object");
	r = cfg_check_keys(params, "params", keys, err);
	return r < 0 ? bad(err, r) : 0;
}

static int get_task_id(json_t *params, int64_t *ret, struct orch_error *err)
{
	int64_t id = 0;
	int r = cfg_int(params, "params", "id", 1, INT64_MAX, &id, err);

	if (r < 0)
		return bad(err, r);
	if (!id)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.id: required (a task id)");
	*ret = id;
	return 0;
}

static int m_get(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		 struct orch_error *err)
{
	static const char *const keys[] = {"id", NULL};
	struct orchd *d = control_orchd(rpc);
	struct task_row *t;
	int64_t id;
	json_t *res;
	int r;

	if ((r = need_object(params, keys, err)) < 0 || (r = get_task_id(params, &id, err)) < 0)
		return r;
	r = store_task_get(d->store, id, &t, err);
	if (r == -ENOENT)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no task %lld", (long long)id);
	if (r < 0)
		return r;
	res = task_row_to_json(t);
	orchd_services_task_json(d, t->id, res, true);
	task_row_free(t);
	return orch_rpc_reply(req, res);
}

static int m_list(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	static const char *const keys[] = {"state", "limit", NULL};
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *state = NULL;
	int64_t limit = 100;
	json_t *tasks;
	int r, st = -1;

	if ((r = need_object(params, keys, err)) < 0)
		return r;
	if ((r = cfg_string(params, "params", "state", 32, false, &state, err)) < 0 ||
	    (r = cfg_int(params, "params", "limit", 1, LIST_MAX, &limit, err)) < 0)
		return bad(err, r);
	if (state && (st = task_state_from_name(state)) < 0)
		return orch_err(
			err, ORCH_RPC_INVALID_PARAMS,
			"params.state: expected queued, leased, running, succeeded, failed, "
			"timed_out, cancelled or lost");
	r = store_task_list(d->store, st, limit, &tasks, err);
	if (r < 0)
		return r;
	size_t i;
	json_t *t;
	json_array_foreach(tasks, i, t)
		orchd_services_task_json(d, json_integer_value(json_object_get(t, "id")), t, false);
	return orch_rpc_reply(req, json_pack("{so}", "tasks", tasks));
}

static int wait_or_logs(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			enum waiter_kind kind, struct orch_error *err)
{
	static const char *const wkeys[] = {"id", NULL};
	static const char *const lkeys[] = {"id",      "from_seq",     "follow",
					    "attempt", "all_attempts", NULL};
	struct orchd *d = control_orchd(rpc);
	struct task_row *t;
	int64_t id, from = 0, attempt = 0;
	bool follow = false, all = false;
	int r;

	if ((r = need_object(params, kind == WAITER_WAIT ? wkeys : lkeys, err)) < 0 ||
	    (r = get_task_id(params, &id, err)) < 0)
		return r;
	if ((r = cfg_int(params, "params", "from_seq", 0, INT64_MAX, &from, err)) < 0 ||
	    (r = cfg_bool(params, "params", "follow", &follow, err)) < 0 ||
	    (r = cfg_int(params, "params", "attempt", 1, 1000, &attempt, err)) < 0 ||
	    (r = cfg_bool(params, "params", "all_attempts", &all, err)) < 0)
		return bad(err, r);
	if (attempt && all)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params: attempt and all_attempts exclude each other");
	r = store_task_get(d->store, id, &t, err);
	if (r == -ENOENT)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no task %lld", (long long)id);
	if (r < 0)
		return r;
	task_row_free(t);
	r = waiter_add(d, kind, id, from, follow, attempt, all, req);
	if (r < 0)
		return orch_err(err, r, "out of memory");
	return 0;
}

static int m_wait(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return wait_or_logs(rpc, req, params, WAITER_WAIT, err);
}

static int m_logs(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return wait_or_logs(rpc, req, params, WAITER_LOGS, err);
}

static int m_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	static const char *const keys[] = {"id", NULL};
	struct orchd *d = control_orchd(rpc);
	struct task_row *t;
	int64_t id;
	int r;

	if ((r = need_object(params, keys, err)) < 0 || (r = get_task_id(params, &id, err)) < 0)
		return r;
	r = store_task_get(d->store, id, &t, err);
	if (r == -ENOENT)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no task %lld", (long long)id);
	if (r < 0)
		return r;
	if (task_state_final(t->state)) {
		r = orch_err(err, ORCH_RPC_CONFLICT, "task %lld already finished (%s)",
			     (long long)id, task_state_name(t->state));
	} else if (t->state == TASK_QUEUED) {
		struct task_result res = {.state = TASK_CANCELLED,
					  .exit_code = -1,
					  .reason = "cancelled before it started"};
		r = store_task_finish(d->store, id, &res, err);
		if (r >= 0)
			orchd_task_changed(d, id);
	} else {
		struct vm *vm = t->vm ? orchd_find_vm(d, t->vm) : NULL;
		r = store_task_set_cancel(d->store, id, err);
		if (r >= 0 && vm)
			vm_cancel_task(vm, id);
	}
	task_row_free(t);
	if (r < 0)
		return r;
	return orch_rpc_reply(req, json_pack("{sIsb}", "id", (json_int_t)id, "cancelling", 1));
}

static int m_status(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	static const char *const keys[] = {NULL};
	struct orchd *d = control_orchd(rpc);
	int64_t counts[_TASK_STATE_MAX];
	json_t *res, *vms, *tasks, *backends;
	int r;

	if ((r = need_object(params, keys, err)) < 0)
		return r;
	if ((r = store_task_counts(d->store, counts, err)) < 0)
		return r;
	d->n_queued = counts[TASK_QUEUED];
	vms = json_array();
	for (size_t i = 0; i < d->n_vms; i++)
		json_array_append_new(vms, vm_to_json(d->vms[i]));
	tasks = json_object();
	for (int i = 0; i < _TASK_STATE_MAX; i++)
		json_object_set_new(tasks, task_state_name((enum task_state)i),
				    json_integer(counts[i]));
	backends = json_array();
	json_array_append_new(backends, json_string("local"));
	if (orchd_backend_find("libvirt"))
		json_array_append_new(backends, json_string("libvirt"));
	res = json_pack("{sssIsIsssssIsoso}", "version", ORCH_VERSION, "pid", (json_int_t)getpid(),
			"uptime_ms", (json_int_t)(orch_now_ms() - d->started_ms), "state_dir",
			d->cfg->state_dir, "socket", d->cfg->socket, "queue_depth",
			(json_int_t)counts[TASK_QUEUED], "tasks", tasks, "vms", vms);
	if (res)
		json_object_set_new(res, "backends", backends);
	else
		json_decref(backends);
	return orch_rpc_reply(req, res);
}

const struct orch_rpc_method control_methods[] = {
	{"task.submit", ORCH_RPC_M_REQUEST, 0, control_task_submit},
	{"task.get", ORCH_RPC_M_REQUEST, 0, m_get},
	{"task.list", ORCH_RPC_M_REQUEST, 0, m_list},
	{"task.wait", ORCH_RPC_M_REQUEST, 0, m_wait},
	{"task.logs", ORCH_RPC_M_REQUEST, 0, m_logs},
	{"task.cancel", ORCH_RPC_M_REQUEST, 0, m_cancel},
	{"status", ORCH_RPC_M_REQUEST, 0, m_status},
	{"vm.list", ORCH_RPC_M_REQUEST, 0, control_vm_list},
	{"vm.up", ORCH_RPC_M_REQUEST, 0, control_vm_up},
	{"vm.down", ORCH_RPC_M_REQUEST, 0, control_vm_down},
	{"vm.restart", ORCH_RPC_M_REQUEST, 0, control_vm_restart},
	{"vm.console", ORCH_RPC_M_REQUEST, 0, control_vm_console},
	{"budget.show", ORCH_RPC_M_REQUEST, 0, control_budget_show},
	{"budget.set", ORCH_RPC_M_REQUEST, 0, control_budget_set},
	{"egress.log", ORCH_RPC_M_REQUEST, 0, control_egress_log},
	{"task.diff", ORCH_RPC_M_REQUEST, 0, control_task_diff},
	{"task.bundle", ORCH_RPC_M_REQUEST, 0, control_task_bundle},
	{"task.push", ORCH_RPC_M_REQUEST, 0, control_task_push},
	{"workspaces.list", ORCH_RPC_M_REQUEST, 0, control_workspaces_list},
	{"workspaces.rm", ORCH_RPC_M_REQUEST, 0, control_workspaces_rm},
};

const size_t control_n_methods = ELEMENTSOF(control_methods);
