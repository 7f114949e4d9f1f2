/* SPDX-License-Identifier: Apache-2.0 */
/* orchd with the LLM proxy (see orchd-llm.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "llm-config.h"
#include "llm-ledger.h"
#include "llm-proxy.h"
#include "llm-serve.h"
#include "log.h"
#include "orchd-llm.h"
#include "orchd.h"

static void drop_lane(struct vm *vm);
static void main_detach(struct vm *vm);

struct orchd_llm {
	struct llm_config *cfg; /* orchd's (config.h), with the keys loaded */
	struct llm_proxy *proxy;
};

int orchd_llm_new(struct orchd *d, struct orch_error *err)
{
	struct orchd_llm *l;
	int r;

	if (d->cfg->llm.n_upstreams == 0)
		return 0;
	l = calloc(1, sizeof(*l));
	if (!l)
		return orch_err(err, -ENOMEM, "out of memory");
	d->llm = l;
	l->cfg = &d->cfg->llm;
	if ((r = llm_config_load_keys(l->cfg, err)) < 0)
		return r;
	r = store_llm_settle_stale(d->store, err);
	if (r < 0)
		return orch_err_prefix(err, "llm ledger");
	if (r > 0)
		orch_logf(ORCH_LOG_WARN, "llm", "%d reservation(s) left by a previous run charged",
			  r);
	r = llm_proxy_new(d->loop, store_db(d->store), l->cfg, &l->proxy, err);
	if (r < 0)
		return r;
	llm_proxy_use_store(l->proxy, d->store); /* the ledger of either store */
	orch_logf(ORCH_LOG_INFO, "llm", "LLM proxy ready: %zu upstream(s), %zu model(s)",
		  l->cfg->n_upstreams, l->cfg->n_models);
	return 0;
}

void orchd_llm_free(struct orchd *d)
{
	struct orchd_llm *l = d->llm;

	if (!l)
		return;
	/* Every serve goes before the proxy: its calls hold exchanges. */
	for (size_t i = 0; i < d->n_vms; i++) {
		drop_lane(d->vms[i]);
		main_detach(d->vms[i]);
	}
	if (l->proxy)
		llm_proxy_free(l->proxy);
	free(l);
	d->llm = NULL;
}

bool orchd_llm_enabled(const struct orchd *d)
{
	return d->llm && d->llm->proxy;
}

/* slot -> the id of the task running in it (the budget scope "task"). */
static int resolve_slot(void *data, int64_t slot, const char **ret_task)
{
	struct vm *vm = data;

	if (slot < 0 || slot >= vm->n_slots)
		return -ENOENT;
	*ret_task = vm_slot_task_str(vm, slot);
	return 0;
}

/* The LLM channel's data is its VM (as the main channel's): its serve is vm->llm_serve,
 * NULL once the channel is dropped. */
static int chan_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			   void *data, struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_serve)
		return orch_err(err, ORCH_RPC_CLOSED, "the LLM channel is closing");
	return llm_serve_request(vm->llm_serve, req, params, err);
}

static int chan_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			  void *data, struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_serve)
		return 0;
	return llm_serve_cancel(vm->llm_serve, params, err);
}

static const struct orch_rpc_method llm_methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, 0, chan_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, 0, chan_on_cancel},
};

static void on_chan_drain(struct orch_rpc *rpc, void *data)
{
	struct vm *vm = data;

	if (vm->llm_serve)
		llm_serve_drained(vm->llm_serve);
}

/* The guest closed its LLM channel (or it failed): its calls are detached (drained and
 * billed) and freed with the serve, and the channel is released; the guest may connect
 * again (vm_attach_llm_channel). This runs inside the rpc's close, which holds a reference
 * of its own: dropping orchd's here is safe. */
static void on_chan_close(struct orch_rpc *rpc, int code, void *data)
{
	struct vm *vm = data;
	unsigned calls = vm->llm_serve ? llm_serve_inflight(vm->llm_serve) : 0;
	char n[16];

	if (vm->llm_rpc != rpc)
		return;
	snprintf(n, sizeof(n), "%u", calls);
	orch_log(ORCH_LOG_INFO, "llm", "LLM channel closed", "vm", vm->cfg->name, "calls_detached",
		 n, "error", code < 0 ? strerror(-code) : "none", NULL);
	drop_lane(vm);
}

static void on_main_drain(struct orch_rpc *rpc, void *data)
{
	struct vm *vm = data;

	if (vm->llm_main)
		llm_serve_drained(vm->llm_main);
}

static int main_attach(struct vm *vm, struct orch_error *err)
{
	int r;

	main_detach(vm);
	if (!orchd_llm_enabled(vm->d) || !vm->rpc)
		return 0;
	r = llm_serve_new(vm->d->llm->proxy, vm->rpc, vm_class_name(vm), resolve_slot, vm,
			  &vm->llm_main);
	if (r < 0)
		return orch_errno(err, r, "vm %s: LLM requests", vm->cfg->name);
	/* llm_serve_new took the drain callback expecting the serve as the rpc's data; the
	 * main channel's data is the VM, so drain through it. */
	orch_rpc_set_drain_cb(vm->rpc, on_main_drain);
	return 0;
}

static void main_detach(struct vm *vm)
{
	if (!vm->llm_main)
		return;
	llm_serve_free(vm->llm_main);
	vm->llm_main = NULL;
}

static int main_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			   void *data, struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_main)
		return orch_err(err, ORCH_RPC_NOT_FOUND,
				"the LLM proxy is not configured (no llm.upstreams in orchd's "
				"config)");
	return llm_serve_request(vm->llm_main, req, params, err);
}

static int main_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			  void *data, struct orch_error *err)
{
	struct vm *vm = data;

	if (!vm->llm_main)
		return 0;
	return llm_serve_cancel(vm->llm_main, params, err);
}

static void drop_lane(struct vm *vm)
{
	struct orch_rpc *rpc = vm->llm_rpc;

	if (!rpc)
		return;
	vm->llm_rpc = NULL;
	llm_serve_free(vm->llm_serve);
	vm->llm_serve = NULL;
	orch_rpc_set_close_cb(rpc, NULL);
	orch_rpc_close(rpc);
	orch_rpc_unref(rpc);
}

static int attach_lane(struct vm *vm, int fd, struct orch_error *err)
{
	struct orch_rpc_opts opts = {
		/* an llm.request carries a body of up to ORCH_MAX_LLM_BODY, base64-encoded */
		.max_line = ORCH_PROTOCOL_MAX_LINE,
		.max_queued = 2 * ORCH_PROTOCOL_MAX_LINE,
		.max_inflight = LLM_SERVE_MAX_INFLIGHT,
		.name = vm->cfg->name,
	};
	struct orchd *d = vm->d;
	int r;

	drop_lane(vm);
	if (!orchd_llm_enabled(d)) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP, "no LLM upstreams are configured");
	}
	r = orch_rpc_new(d->loop, fd, llm_methods, ELEMENTSOF(llm_methods), &opts, vm,
			 &vm->llm_rpc);
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "vm %s: LLM channel", vm->cfg->name);
	}
	orch_rpc_set_state(vm->llm_rpc, ORCH_STATE_READY);
	r = llm_serve_new(d->llm->proxy, vm->llm_rpc, vm_class_name(vm), resolve_slot, vm,
			  &vm->llm_serve);
	if (r < 0) {
		orch_rpc_unref(vm->llm_rpc);
		vm->llm_rpc = NULL;
		return orch_errno(err, r, "vm %s: LLM channel", vm->cfg->name);
	}
	/* llm_serve_new took the drain callback expecting the serve as the rpc's data; this
	 * channel's data is the VM, so drain through it. */
	orch_rpc_set_drain_cb(vm->llm_rpc, on_chan_drain);
	orch_rpc_set_close_cb(vm->llm_rpc, on_chan_close);
	return 0;
}

static void task_done(struct orchd *d, int64_t task)
{
	struct orch_error err = {0};
	struct llm_budget b;
	char id[24];

	if (!orchd_llm_enabled(d))
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	if (store_llm_get(d->store, "task", id, &b, &err) < 0)
		return; /* never called the LLM */
	if (store_task_set_spend(d->store, task, (double)b.spent_micro / 1e6, b.spent_tokens,
				 &err) < 0)
		orch_log(ORCH_LOG_WARN, "llm", "cannot record the task's spend", "task", id,
			 "error", err.msg, NULL);
}

static void task_json(struct orchd *d, int64_t task, json_t *obj, bool detail)
{
	struct llm_budget b;
	char id[24];

	if (!orchd_llm_enabled(d) || !obj)
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	if (store_llm_get(d->store, "task", id, &b, NULL) < 0)
		return; /* never called the LLM: the row's figure (0) stands */
	json_object_set_new(obj, "spend_usd", json_real((double)b.spent_micro / 1e6));
	json_object_set_new(obj, "spend_tokens", json_integer(b.spent_tokens));
	json_object_set_new(obj, "reserved_usd", json_real((double)b.reserved_micro / 1e6));
}

static void task_pruned(struct orchd *d, int64_t task)
{
	char id[24];

	if (!orchd_llm_enabled(d))
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	(void)store_llm_drop(d->store, "task", id, NULL);
}

static const struct orch_rpc_method main_methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, main_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, main_on_cancel},
};

static bool lane_wanted(const struct orchd *d)
{
	return orchd_llm_enabled(d);
}

const struct orchd_service orchd_llm_service = {
	.name = "llm",
	.lane = ORCHD_LANE_LLM,
	.lane_wanted = lane_wanted,
	.lane_attach = attach_lane,
	.lane_drop = drop_lane,
	.methods = main_methods,
	.n_methods = ELEMENTSOF(main_methods),
	.channel_up = main_attach,
	.channel_down = main_detach,
	.task_done = task_done,
	.task_pruned = task_pruned,
	.task_json = task_json,
};
