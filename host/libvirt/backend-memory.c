/* SPDX-License-Identifier: Apache-2.0 */
/* Memory hot-plug (docs/VM.md "Memory hot-plug"): the guest of a class with
 * boot_memory_mib boots with that much; the rest of its memory_mib is a virtio-mem device
 * (domain-xml.h), plugged when a task is leased to the VM and unplugged once the VM has
 * run no task for its class's unplug_idle_ms. A leased task starts once the guest holds all of it
 * (libvirt's live XML says what it holds), or after LVB_PLUG_WAIT_MS with what it holds
 * then. An idle VM thus holds what a guest of boot_memory_mib holds, the struct pages of
 * memory_mib included, which every kernel writes at boot. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend-libvirt.h"
#include "domain.h"
#include "log.h"
#include "orchd.h"
#include "scheduler.h"
#include "vm.h"

struct mem_wait {
	int64_t slot, task, attempt;
};

struct lvb_memory {
	uint64_t size_kib;    /* the device's: memory_mib - boot_memory_mib */
	uint64_t plugged_kib; /* what the guest held when last seen */
	uint64_t asked_kib;   /* what orchd last asked for */
	struct orch_timer *timer;
	uint64_t plug_start, wait_until; /* orch_now_ms */
	uint64_t idle_since;		 /* orch_now_ms; 0: a task runs */
	unsigned unplug_polls;		 /* since the unplug was asked for */
	struct mem_wait waiting[ORCH_MAX_SLOTS];
	size_t n_waiting;
};

static bool vm_busy(const struct vm *vm)
{
	for (int64_t i = 0; i < vm->n_slots; i++)
		if (vm_slot_task(vm, i))
			return true;
	return false;
}

static void mem_log(struct lvb *l, enum orch_log_level lvl, const char *msg, const char *error)
{
	char plugged[24], size[24];
	snprintf(plugged, sizeof(plugged), "%llu", (unsigned long long)l->mem->plugged_kib / 1024);
	snprintf(size, sizeof(size), "%llu", (unsigned long long)l->mem->size_kib / 1024);
	orch_log(lvl, "libvirt", msg, "vm", l->vm->cfg->name, "plugged_mib", plugged, "hotplug_mib",
		 size, error ? "error" : NULL, error, NULL);
}

static int ask(struct lvb *l, uint64_t kib)
{
	struct orch_error err = {0};
	if (lv_domain_memory_request(l->dom, kib / 1024, &err) < 0) {
		mem_log(l, ORCH_LOG_WARN, "cannot change the hot-plugged memory", err.msg);
		return -EIO;
	}
	l->mem->asked_kib = kib;
	return 0;
}

/* Polls the plug while tasks wait; then watches for the VM going idle, and follows an
 * unplug for a while (what `orch status` shows). One-shot: each run arms the next. */
static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct lvb *l = data;
	struct lvb_memory *m = l->mem;
	uint64_t now = orch_now_ms(), cur = 0, req = 0;

	if (!l->dom) /* never so: drop_domain frees m with it */
		return;
	if (!m->n_waiting && !m->asked_kib) {
		if (lv_domain_memory_state(l->dom, &cur, &req) == 0)
			m->plugged_kib = cur;
		if (m->plugged_kib && ++m->unplug_polls < LVB_UNPLUG_POLLS)
			orch_timer_rearm(t, LVB_IDLE_POLL_MS);
		return;
	}
	if (!m->n_waiting) {
		if (vm_busy(l->vm))
			m->idle_since = 0;
		else if (!m->idle_since)
			m->idle_since = now;
		if (!m->idle_since || now - m->idle_since < (uint64_t)l->vm->cfg->unplug_idle_ms) {
			orch_timer_rearm(t, LVB_IDLE_POLL_MS);
			return;
		}
		/* What it cannot give back (kernel memory in a block) it keeps. */
		if (ask(l, 0) == 0) {
			mem_log(l, ORCH_LOG_INFO, "unplugging the hot-plugged memory: idle", NULL);
			m->unplug_polls = 0;
			orch_timer_rearm(t, LVB_IDLE_POLL_MS);
		}
		return;
	}
	if (lv_domain_memory_state(l->dom, &cur, &req) == 0)
		m->plugged_kib = cur;
	if (m->plugged_kib < m->size_kib && now < m->wait_until) {
		orch_timer_rearm(t, LVB_PLUG_POLL_MS);
		return;
	}
	char ms[24];
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(now - m->plug_start));
	if (m->plugged_kib < m->size_kib)
		mem_log(l, ORCH_LOG_WARN,
			"hot-plugged memory not all there in time: the tasks start with what the "
			"guest holds",
			NULL);
	else
		orch_log(ORCH_LOG_INFO, "libvirt", "memory plugged", "vm", l->vm->cfg->name, "ms",
			 ms, NULL);
	struct mem_wait w[ORCH_MAX_SLOTS];
	size_t n = m->n_waiting;
	memcpy(w, m->waiting, n * sizeof(w[0]));
	m->n_waiting = 0;
	m->idle_since = 0;
	orch_timer_rearm(t, LVB_IDLE_POLL_MS);
	/* Each may stop the VM (a send that fails closes its channel), which frees m: only
	 * the copies are used from here. */
	struct vm *vm = l->vm;
	for (size_t i = 0; i < n; i++)
		sched_lease_ready(vm, w[i].slot, w[i].task, w[i].attempt);
	(void)loop;
}

int lvb_task_leased(struct vm *vm, int64_t slot, int64_t task, int64_t attempt)
{
	struct lvb *l = vm->backend;
	uint64_t cur = 0, req = 0;

	if (!l || !l->dom || vm->cfg->boot_memory_mib <= 0)
		return 0;
	struct lvb_memory *m = l->mem;
	if (!m) {
		if (!(m = calloc(1, sizeof(*m))))
			return 0;
		m->size_kib = (uint64_t)(vm->cfg->memory_mib - vm->cfg->boot_memory_mib) * 1024;
		if (orch_timer_add(vm->d->loop, LVB_IDLE_POLL_MS, 0, on_timer, l, &m->timer) < 0) {
			free(m);
			return 0;
		}
		l->mem = m;
	}
	m->idle_since = 0;
	if (m->n_waiting) /* a plug under way: this task waits for it too */
		goto wait;
	/* What the guest holds (a VM adopted from an earlier orchd, or still unplugging). */
	if (lv_domain_memory_state(l->dom, &cur, &req) < 0) {
		mem_log(l, ORCH_LOG_WARN, "cannot read the hot-plugged memory", lv_last_error());
		return 0;
	}
	m->plugged_kib = cur;
	m->asked_kib = req;
	if (req == m->size_kib && cur == m->size_kib) {
		orch_timer_rearm(m->timer, LVB_IDLE_POLL_MS);
		return 0;
	}
	if (req != m->size_kib && ask(l, m->size_kib) < 0)
		return 0; /* the task runs in the boot memory */
	m->plug_start = orch_now_ms();
	m->wait_until = m->plug_start + LVB_PLUG_WAIT_MS;
	orch_timer_rearm(m->timer, LVB_PLUG_POLL_MS);
	mem_log(l, ORCH_LOG_INFO, "plugging memory for a task", NULL);
wait:
	if (m->n_waiting >= ORCH_MAX_SLOTS)
		return 0;
	m->waiting[m->n_waiting++] = (struct mem_wait){slot, task, attempt};
	return 1;
}

void lvb_memory_free(struct lvb *l)
{
	if (!l->mem)
		return;
	orch_timer_free(l->mem->timer);
	free(l->mem);
	l->mem = NULL;
}

void lvb_memory_describe(const struct lvb *l, json_t *obj)
{
	const struct vm *vm = l->vm;
	if (vm->cfg->boot_memory_mib <= 0)
		return;
	json_t *m =
		json_pack("{sIsI}", "boot_mib", (json_int_t)vm->cfg->boot_memory_mib, "hotplug_mib",
			  (json_int_t)(vm->cfg->memory_mib - vm->cfg->boot_memory_mib));
	if (m && l->mem) {
		json_object_set_new(m, "plugged_mib",
				    json_integer((json_int_t)(l->mem->plugged_kib / 1024)));
		json_object_set_new(m, "asked_mib",
				    json_integer((json_int_t)(l->mem->asked_kib / 1024)));
	}
	if (m)
		json_object_set_new(obj, "memory", m);
}
