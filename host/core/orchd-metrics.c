/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "egress-serve.h"
#include "orch-config.h"
#include "orchd-metrics.h"
#include "orchd.h"
#include "store-config.h"

int orchd_metrics_new(struct orchd *d, struct orch_error *err)
{
	if (!(d->metrics = calloc(1, sizeof(*d->metrics))))
		return orch_err(err, -ENOMEM, "out of memory");
	return 0;
}

void orchd_metrics_free(struct orchd *d)
{
	free(d->metrics);
	d->metrics = NULL;
}

void orchd_metrics_observe(struct orchd *d, enum orchd_mx_hist h, double seconds)
{
	if (d->metrics && (unsigned)h < _ORCHD_MX_HIST_MAX)
		mx_observe(&d->metrics->hist[h], seconds);
}

void orchd_metrics_task_ended(struct orchd *d, int state)
{
	if (d->metrics && state >= 0 && state < (int)ELEMENTSOF(d->metrics->finished))
		d->metrics->finished[state]++;
}

void orchd_metrics_task_lost(struct orchd *d)
{
	if (d->metrics)
		d->metrics->lost++;
}

static void tasks(struct orchd *d, struct mx_text *t, const int64_t counts[])
{
	d->n_queued = counts[TASK_QUEUED];
	mx_family(t, "orch_queue_depth", "gauge", "Tasks queued, waiting for an agent slot.");
	mx_sample_int(t, "orch_queue_depth", NULL, counts[TASK_QUEUED]);
	mx_family(t, "orch_tasks", "gauge",
		  "Tasks in the store by state (with PostgreSQL: the whole cluster's).");
	for (int i = 0; i < _TASK_STATE_MAX; i++) {
		const char *l[] = {"state", task_state_name((enum task_state)i), NULL};
		mx_sample_int(t, "orch_tasks", l, counts[i]);
	}
}

static void node(struct orchd *d, struct mx_text *t)
{
	struct orchd_metrics *m = d->metrics;

	mx_family(t, "orch_tasks_finished_total", "counter",
		  "Tasks whose exit this orchd recorded, by final state.");
	for (int i = TASK_SUCCEEDED; i < _TASK_STATE_MAX; i++) {
		const char *l[] = {"state", task_state_name((enum task_state)i), NULL};
		mx_sample_int(t, "orch_tasks_finished_total", l, (int64_t)m->finished[i]);
	}
	mx_family(t, "orch_tasks_lost_total", "counter",
		  "Tasks this orchd lost (their VM or supervisor went away under them).");
	mx_sample_int(t, "orch_tasks_lost_total", NULL, (int64_t)m->lost);
	mx_family(t, "orch_task_lease_seconds", "histogram",
		  "From a task's submission to its first lease to an agent slot.");
	mx_histogram(t, "orch_task_lease_seconds", NULL, &m->hist[ORCHD_MX_LEASE]);
	mx_family(t, "orch_task_dispatch_seconds", "histogram",
		  "From a lease to the supervisor's acknowledgement of task.run.");
	mx_histogram(t, "orch_task_dispatch_seconds", NULL, &m->hist[ORCHD_MX_DISPATCH]);
	mx_family(t, "orch_vm_boot_seconds", "histogram",
		  "From a VM's start to its supervisor's hello, by backend.");
	{
		const char *l[] = {"backend", "local", NULL};
		const char *v[] = {"backend", "libvirt", NULL};
		mx_histogram(t, "orch_vm_boot_seconds", l, &m->hist[ORCHD_MX_BOOT_LOCAL]);
		mx_histogram(t, "orch_vm_boot_seconds", v, &m->hist[ORCHD_MX_BOOT_LIBVIRT]);
	}
}

static void vms(struct orchd *d, struct mx_text *t)
{
	int64_t by_state[VM_STOPPED + 1] = {0};

	mx_family(t, "orch_vms", "gauge", "This orchd's VMs by state.");
	for (size_t i = 0; i < d->n_vms; i++)
		by_state[d->vms[i]->state]++;
	for (int s = VM_DOWN; s <= VM_STOPPED; s++) {
		const char *l[] = {"state", vm_state_name((enum vm_state)s), NULL};
		mx_sample_int(t, "orch_vms", l, by_state[s]);
	}
	mx_family(t, "orch_vm_slots", "gauge", "Agent slots of each VM.");
	for (size_t i = 0; i < d->n_vms; i++) {
		const char *l[] = {"vm", d->vms[i]->cfg->name, NULL};
		mx_sample_int(t, "orch_vm_slots", l, d->vms[i]->n_slots);
	}
	mx_family(t, "orch_vm_slots_busy", "gauge", "Agent slots of each VM holding a task.");
	for (size_t i = 0; i < d->n_vms; i++) {
		const char *l[] = {"vm", d->vms[i]->cfg->name, NULL};
		int64_t busy = 0;
		for (int64_t j = 0; j < d->vms[i]->n_slots; j++)
			busy += vm_slot_task(d->vms[i], j) != 0;
		mx_sample_int(t, "orch_vm_slots_busy", l, busy);
	}
}

static void egress(struct orchd *d, struct mx_text *t)
{
	struct egress_totals e;

	if (!d->egress)
		return;
	egress_host_totals(d->egress, &e);
	mx_family(t, "orch_egress_connections_total", "counter",
		  "Agents' egress connections that ended, by verdict.");
	mx_sample_int(t, "orch_egress_connections_total",
		      (const char *const[]){"verdict", "allowed", NULL}, (int64_t)e.allowed);
	mx_sample_int(t, "orch_egress_connections_total",
		      (const char *const[]){"verdict", "denied", NULL}, (int64_t)e.denied);
	mx_family(t, "orch_egress_bytes_total", "counter",
		  "Bytes of agents' egress connections that ended, by direction.");
	mx_sample_int(t, "orch_egress_bytes_total", (const char *const[]){"direction", "up", NULL},
		      (int64_t)e.bytes_up);
	mx_sample_int(t, "orch_egress_bytes_total",
		      (const char *const[]){"direction", "down", NULL}, (int64_t)e.bytes_down);
}

struct llm_ctx {
	struct mx_text *t;
	int pass;
};

static int llm_total(const struct store_llm_total *x, void *data)
{
	struct llm_ctx *c = data;
	const char *l[] = {"model", x->model, NULL};

	switch (c->pass) {
	case 0:
		mx_sample_int(c->t, "orch_llm_requests_total", l, x->requests);
		break;
	case 1: {
		const char *kinds[] = {"input", "output", "cache_write", "cache_read"};
		int64_t v[] = {x->input, x->output, x->cache_write, x->cache_read};
		for (int k = 0; k < 4; k++) {
			const char *lk[] = {"model", x->model, "kind", kinds[k], NULL};
			mx_sample_int(c->t, "orch_llm_tokens_total", lk, v[k]);
		}
		break;
	}
	default:
		mx_sample(c->t, "orch_llm_spend_usd_total", l, (double)x->micro / 1e6);
	}
	return 0;
}

/* The ledger's spend by this orchd (with PostgreSQL: this node), per model. */
static void llm(struct orchd *d, struct mx_text *t)
{
	static const char *const fam[][3] = {
		{"orch_llm_requests_total", "counter", "LLM requests settled, by model."},
		{"orch_llm_tokens_total", "counter", "LLM tokens settled, by model and kind."},
		{"orch_llm_spend_usd_total", "counter", "LLM spend settled in USD, by model."},
	};
	struct llm_ctx c = {t, 0};

	for (c.pass = 0; c.pass < 3; c.pass++) {
		mx_family(t, fam[c.pass][0], fam[c.pass][1], fam[c.pass][2]);
		if (store_llm_totals(d->store, llm_total, &c, NULL) < 0)
			break;
	}
}

char *orchd_metrics_render(struct orchd *d, size_t *ret_len)
{
	struct mx_text t = {0};
	int64_t counts[_TASK_STATE_MAX];
	struct orch_error err = {0};
	bool store_ok;
	const char *info[] = {"version", ORCH_VERSION, "store",
			      d->cfg->store->kind == STORE_POSTGRESQL ? "postgresql" : "sqlite",
			      NULL};

	if (!d->metrics)
		return NULL;
	mx_family(&t, "orch_info", "gauge", "orchd's version and store (always 1).");
	mx_sample_int(&t, "orch_info", info, 1);
	mx_family(&t, "orch_uptime_seconds", "gauge", "Time since orchd started.");
	mx_sample(&t, "orch_uptime_seconds", NULL, (double)(orch_now_ms() - d->started_ms) / 1e3);
	store_ok = store_task_counts(d->store, counts, &err) >= 0;
	mx_family(&t, "orch_store_up", "gauge", "1 while the store answers, 0 while it is away.");
	mx_sample_int(&t, "orch_store_up", NULL, store_ok);
	if (store_ok)
		tasks(d, &t, counts);
	node(d, &t);
	vms(d, &t);
	if (store_ok)
		llm(d, &t);
	egress(d, &t);
	return mx_text_take(&t, ret_len);
}
