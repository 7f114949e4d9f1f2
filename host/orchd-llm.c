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

struct orchd_llm {
	struct llm_config cfg;
	struct llm_proxy *proxy;
};

int orchd_llm_new(struct orchd *d, struct orch_error *err)
{
	struct orchd_llm *l;
	int r;

	if (!d->cfg->llm_json || d->cfg->llm.n_upstreams == 0)
		return 0;
	l = calloc(1, sizeof(*l));
	if (!l)
		return orch_err(err, -ENOMEM, "out of memory");
	d->llm = l;
	if ((r = llm_config_init(&l->cfg)) < 0)
		return orch_errno(err, r, "llm: config");
	if ((r = llm_config_parse(d->cfg->llm_json, &l->cfg, err)) < 0 ||
	    (r = llm_config_load_keys(&l->cfg, err)) < 0)
		return r;
	if ((r = llm_ledger_migrate(store_db(d->store), err)) < 0)
		return orch_err_prefix(err, "llm ledger");
	r = llm_ledger_settle_stale(store_db(d->store), err);
	if (r < 0)
		return orch_err_prefix(err, "llm ledger");
	if (r > 0)
		orch_logf(ORCH_LOG_WARN, "llm", "%d reservation(s) left by a previous run charged",
			  r);
	r = llm_proxy_new(d->loop, store_db(d->store), &l->cfg, &l->proxy, err);
	if (r < 0)
		return r;
	orch_logf(ORCH_LOG_INFO, "llm", "LLM proxy ready: %zu upstream(s), %zu model(s)",
		  l->cfg.n_upstreams, l->cfg.n_models);
	return 0;
}

void orchd_llm_free(struct orchd *d)
{
	struct orchd_llm *l = d->llm;

	if (!l)
		return;
	for (size_t i = 0; i < d->n_vms; i++)
		vm_drop_llm_channel(d->vms[i]);
	if (l->proxy)
		llm_proxy_free(l->proxy);
	llm_config_done(&l->cfg);
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
	if (!vm->slots[slot].task) {
		*ret_task = NULL;
		return 0;
	}
	snprintf(vm->slots[slot].task_str, sizeof(vm->slots[slot].task_str), "%lld",
		 (long long)vm->slots[slot].task);
	*ret_task = vm->slots[slot].task_str;
	return 0;
}

static const struct orch_rpc_method llm_methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, 0, llm_serve_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, 0, llm_serve_on_cancel},
};

void vm_drop_llm_channel(struct vm *vm)
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

int vm_attach_llm_channel(struct vm *vm, int fd, struct orch_error *err)
{
	struct orch_rpc_opts opts = {
		.max_line = 4 * 1024 * 1024,
		.max_queued = 4 * 1024 * 1024,
		.max_inflight = LLM_SERVE_MAX_INFLIGHT,
		.name = vm->cfg->name,
	};
	struct orchd *d = vm->d;
	int r;

	vm_drop_llm_channel(vm);
	if (!orchd_llm_enabled(d)) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP, "no LLM upstreams are configured");
	}
	r = orch_rpc_new(d->loop, fd, llm_methods, ELEMENTSOF(llm_methods), &opts, NULL,
			 &vm->llm_rpc);
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "vm %s: LLM channel", vm->cfg->name);
	}
	orch_rpc_set_state(vm->llm_rpc, ORCH_STATE_READY);
	r = llm_serve_new(d->llm->proxy, vm->llm_rpc, vm->cfg->name, resolve_slot, vm,
			  &vm->llm_serve);
	if (r < 0) {
		orch_rpc_unref(vm->llm_rpc);
		vm->llm_rpc = NULL;
		return orch_errno(err, r, "vm %s: LLM channel", vm->cfg->name);
	}
	/* The serve's handlers and drain callback expect it as the rpc's data. A closed LLM
	 * channel is released with the VM's main channel (vm_gone -> vm_drop_llm_channel). */
	orch_rpc_set_data(vm->llm_rpc, vm->llm_serve);
	return 0;
}

void orchd_llm_task_done(struct orchd *d, int64_t task)
{
	struct orch_error err = {0};
	struct llm_budget b;
	char id[24];

	if (!orchd_llm_enabled(d))
		return;
	snprintf(id, sizeof(id), "%lld", (long long)task);
	if (llm_ledger_get(store_db(d->store), "task", id, &b, &err) < 0)
		return; /* never called the LLM */
	if (store_task_set_spend(d->store, task, (double)b.spent_micro / 1e6, b.spent_tokens,
				 &err) < 0)
		orch_log(ORCH_LOG_WARN, "llm", "cannot record the task's spend", "task", id,
			 "error", err.msg, NULL);
}
