/* SPDX-License-Identifier: Apache-2.0 */
/* Pools of VMs (pool.h). */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend-snapshot.h"
#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "orchd.h"
#include "pool-prune.h"
#include "pool.h"
#include "strv.h"

extern char **environ;

/* Workspaces removed by one child at most (the rest by the next). */
#define POOL_PRUNE_BATCH 256

/* Refills wait this long after VMs failed before their hello, doubled per failure. */
#define POOL_BACKOFF_MIN_MS 500
#define POOL_BACKOFF_MAX_MS 30000
/* A vm-per-task refill of the idle reserve (pool.ready) yields to the task that just took a
 * VM from it: it starts at that task's first output or end, or this long after the lease,
 * whichever comes first. Under TCG a restore beside a starting task doubles the task's
 * time to its first output (QEMU loading the image competes for the same cores). Tasks
 * waiting for the class are never held back by it. */
#define POOL_YIELD_MS 2000

struct pool_member {
	struct orch_pool *pool;
	struct vm *vm;
	struct orchd_vm_config cfg; /* the class's, with the VM's own name and workspace */
	char name[ORCHD_VM_NAME_MAX + 1];
	char *workspace;
	bool used;	/* vm-per-task: a task was leased to it */
	bool retiring;	/* retired at the next pass */
	bool was_ready; /* it said hello once */
	struct pool_member *next;
};

struct orch_pool {
	struct orch_pools *ps;
	const struct orchd_vm_config *cfg;
	struct pool_member *members;
	bool stopped;	     /* orch vm down CLASS (or not autostarted yet) */
	unsigned failures;   /* VMs gone before their hello, in a row */
	uint64_t not_before; /* no VM is made before (orch_now_ms) */
	char *profiles_json; /* the class's allowed profiles (NULL: all), for its demand */
	int64_t made, retired;
	char last_error[256];
	struct pool_member *yield_to; /* the refill waits for its task to start (POOL_YIELD_MS) */
	uint64_t yield_until;
	int prune_pidfd; /* the child removing retired workspaces, or -1 */
	struct orch_io *prune_io;
	bool prune_again; /* retired meanwhile: another pass when it is done */
};

struct orch_pools {
	struct orchd *d;
	struct orch_pool *pools;
	size_t n;
	struct orch_timer *timer; /* retires and refills, coalesced */
	bool started;
};

static void kick(struct orch_pools *ps, uint64_t delay_ms)
{
	if (ps->timer && ps->started && !ps->d->quitting)
		orch_timer_rearm(ps->timer, delay_ms);
}

static bool per_task(const struct orch_pool *p)
{
	return p->cfg->isolation == ORCHD_ISOLATION_VM_PER_TASK;
}

/* ---- the core's calls (vm_owner_ops) ---- */

/* The refill no longer waits for m's task. */
static void stop_yield(struct pool_member *m)
{
	if (m->pool->yield_to == m) {
		m->pool->yield_to = NULL;
		kick(m->pool->ps, 0);
	}
}

static void owner_gone(struct vm *vm, const char *reason)
{
	struct pool_member *m = vm->owner_data;

	stop_yield(m);
	if (!m->was_ready && !m->retiring) {
		m->pool->failures++;
		snprintf(m->pool->last_error, sizeof(m->pool->last_error), "%s: %.200s", m->name,
			 reason);
	}
	m->retiring = true;
	kick(m->pool->ps, 0);
}

static void owner_released(struct vm *vm)
{
	struct pool_member *m = vm->owner_data;

	stop_yield(m);
	if (per_task(m->pool)) /* its one task is over */
		m->retiring = true;
	kick(m->pool->ps, 0);
}

static bool owner_leasable(const struct vm *vm)
{
	const struct pool_member *m = vm->owner_data;
	return !m->retiring && !m->pool->stopped && !(per_task(m->pool) && m->used);
}

static void owner_leased(struct vm *vm, int64_t slot)
{
	struct pool_member *m = vm->owner_data;

	m->used = true;
	if (per_task(m->pool)) {
		m->pool->yield_to = m;
		m->pool->yield_until = orch_now_ms() + POOL_YIELD_MS;
	}
	kick(m->pool->ps, 0); /* keep pool.ready idle */
}

static void owner_printed(struct vm *vm)
{
	stop_yield(vm->owner_data);
}

static const struct vm_owner_ops owner_ops = {
	.gone = owner_gone,
	.released = owner_released,
	.leasable = owner_leasable,
	.leased = owner_leased,
	.printed = owner_printed,
};

/* ---- members ---- */

static int vms_append(struct orchd *d, struct vm *vm)
{
	struct vm **v = realloc(d->vms, (d->n_vms + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->vms = v;
	d->vms[d->n_vms++] = vm;
	return 0;
}

static void vms_remove(struct orchd *d, struct vm *vm)
{
	for (size_t i = 0; i < d->n_vms; i++)
		if (d->vms[i] == vm) {
			memmove(&d->vms[i], &d->vms[i + 1], (d->n_vms - i - 1) * sizeof(*d->vms));
			d->n_vms--;
			return;
		}
}

static void member_free(struct pool_member *m)
{
	if (!m)
		return;
	free(m->workspace);
	free(m);
}

/* A VM of the class named name (seq 0) or <class>.<seq>, known to orchd (d->vms) and the
 * store, not started. */
static int member_new(struct orch_pool *p, const char *name, int64_t seq, struct pool_member **ret,
		      struct orch_error *err)
{
	struct orchd *d = p->ps->d;
	struct pool_member *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return orch_err(err, -ENOMEM, "out of memory");
	m->pool = p;
	if (name)
		snprintf(m->name, sizeof(m->name), "%s", name);
	else
		snprintf(m->name, sizeof(m->name), "%s.%lld", p->cfg->name, (long long)seq);
	if (asprintf(&m->workspace, "%s/%s", p->cfg->workspace, m->name) < 0) {
		m->workspace = NULL;
		member_free(m);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	m->cfg = *p->cfg; /* the class's strings, borrowed: the config outlives its VMs */
	m->cfg.name = m->name;
	m->cfg.workspace = m->workspace;
	if ((r = vm_new(d, &m->cfg, &m->vm, err)) < 0) {
		member_free(m);
		return r;
	}
	m->vm->owner = &owner_ops;
	m->vm->owner_data = m;
	m->vm->class_name = p->cfg->name;
	if ((r = store_pool_vm_add(d->store, m->name, p->cfg->name, m->vm->ops->name, m->cfg.slots,
				   err)) < 0 ||
	    (r = vms_append(d, m->vm)) < 0) {
		vm_free(m->vm);
		member_free(m);
		return r == -ENOMEM ? orch_err(err, r, "out of memory") : r;
	}
	m->next = p->members;
	p->members = m;
	*ret = m;
	return 0;
}

static void retire(struct orch_pool *p, struct pool_member *m)
{
	struct orchd *d = p->ps->d;
	struct orch_error err = {0};

	orch_log(ORCH_LOG_INFO, "pool", "vm retired", "vm", m->name, "class", p->cfg->name, NULL);
	if (p->yield_to == m)
		p->yield_to = NULL;
	vm_stop(m->vm, "its VM was retired", true);
	vms_remove(d, m->vm);
	vm_free(m->vm);
	if (store_vm_delete(d->store, m->name, &err) < 0)
		orch_log(ORCH_LOG_WARN, "pool", "cannot forget a retired vm", "vm", m->name,
			 "error", err.msg, NULL);
	for (struct pool_member **pp = &p->members; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	member_free(m);
	p->retired++;
}

/* Makes and starts one VM of the class. */
static void grow(struct orch_pool *p)
{
	struct orchd *d = p->ps->d;
	struct orch_error err = {0};
	struct pool_member *m;
	int64_t seq;

	if (store_pool_next_seq(d->store, p->cfg->name, &seq, &err) < 0 ||
	    member_new(p, NULL, seq, &m, &err) < 0) {
		orch_log(ORCH_LOG_ERROR, "pool", "cannot make a vm", "class", p->cfg->name, "error",
			 err.msg, NULL);
		snprintf(p->last_error, sizeof(p->last_error), "%.255s", err.msg);
		p->failures++;
		return;
	}
	p->made++;
	orch_log(ORCH_LOG_INFO, "pool", "vm made", "vm", m->name, "class", p->cfg->name, NULL);
	vm_start(m->vm); /* a failure comes back through owner_gone */
}

struct counts {
	int64_t total, idle, starting, busy;
};

static struct counts count(const struct orch_pool *p)
{
	struct counts c = {0};

	for (const struct pool_member *m = p->members; m; m = m->next) {
		const struct vm *vm = m->vm;
		bool task = false;
		if (m->retiring)
			continue;
		c.total++;
		for (int64_t i = 0; i < vm->n_slots; i++)
			task |= vm_slot_task(vm, i) != 0;
		if (vm->state == VM_STARTING || vm->state == VM_DOWN)
			c.starting++;
		else if (vm->state == VM_READY && !task && owner_leasable(vm))
			c.idle++;
		else
			c.busy++;
	}
	return c;
}

/* How many VMs to make now; *demand: how many of them tasks wait for. */
static int64_t wanted(struct orch_pool *p, int64_t *ret_demand)
{
	struct orchd *d = p->ps->d;
	struct orch_error err = {0};
	struct counts c = count(p);
	int64_t demand = 0, want;

	if (!per_task(p))
		return p->cfg->pool_ready - c.total;
	if (store_pool_demand(d->store, p->cfg->name, p->cfg->slots, p->profiles_json, &demand,
			      &err) < 0)
		orch_log(ORCH_LOG_WARN, "pool", "cannot count the queued tasks", "class",
			 p->cfg->name, "error", err.msg, NULL);
	*ret_demand = demand;
	want = p->cfg->pool_ready + demand - c.idle - c.starting;
	if (want > p->cfg->pool_max - c.total)
		want = p->cfg->pool_max - c.total;
	return want;
}

/* ---- retired workspaces (pool-prune.h) ---- */

static bool member_live(const char *name, void *data)
{
	const struct orch_pool *p = data;
	for (const struct pool_member *m = p->members; m; m = m->next)
		if (!strcmp(m->name, name))
			return true;
	return false;
}

static void prune(struct orch_pool *p);

static void on_prune_exit(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			  void *data)
{
	struct orch_pool *p = data;
	siginfo_t si = {0};

	if (waitid(P_PIDFD, (id_t)p->prune_pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0)
		return; /* not yet */
	orch_io_free(p->prune_io);
	p->prune_io = NULL;
	close(p->prune_pidfd);
	p->prune_pidfd = -1;
	if (si.si_code != CLD_EXITED || si.si_status != 0) /* the child said why on stderr */
		orch_log(ORCH_LOG_WARN, "pool", "some retired workspaces were not removed", "class",
			 p->cfg->name, NULL);
	if (p->prune_again) {
		p->prune_again = false;
		prune(p);
	}
}

/* Removes, in a child, the workspaces of retired VMs beyond pool.keep_workspaces. */
static void prune(struct orch_pool *p)
{
	struct orch_error err = {0};
	_cleanup_(orch_strv_freep) char **names = NULL, **argv = NULL;
	size_t n = 0, k = 2;
	pid_t pid;
	int rc;

	if (!per_task(p) || p->ps->d->quitting)
		return;
	if (p->prune_io) {
		p->prune_again = true;
		return;
	}
	if (pool_prune_candidates(p->cfg->workspace, p->cfg->name, p->cfg->pool_keep_workspaces,
				  member_live, p, &names, &n, &err) < 0) {
		orch_log(ORCH_LOG_WARN, "pool", "cannot list retired workspaces", "class",
			 p->cfg->name, "error", err.msg, NULL);
		return;
	}
	if (n == 0)
		return;
	if (!(argv = calloc((n < POOL_PRUNE_BATCH ? n : POOL_PRUNE_BATCH) + 3, sizeof(char *))) ||
	    !(argv[0] = strdup("orchd")) || !(argv[1] = strdup(POOL_PRUNE_ARG)))
		return;
	for (size_t i = 0; i < n && k < POOL_PRUNE_BATCH + 2; i++)
		if (asprintf(&argv[k++], "%s/%s", p->cfg->workspace, names[i]) < 0) {
			argv[--k] = NULL;
			return;
		}
	p->prune_again = n > POOL_PRUNE_BATCH;
	if ((rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ)) != 0) {
		orch_log(ORCH_LOG_WARN, "pool", "cannot start a child to remove retired workspaces",
			 "class", p->cfg->name, "error", strerror(rc), NULL);
		return;
	}
	p->prune_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (p->prune_pidfd < 0 || orch_io_add(p->ps->d->loop, p->prune_pidfd, EPOLLIN,
					      on_prune_exit, p, &p->prune_io) < 0) {
		(void)waitpid(pid, NULL, 0); /* it removes them all the same */
		if (p->prune_pidfd >= 0)
			close(p->prune_pidfd);
		p->prune_pidfd = -1;
		p->prune_io = NULL;
	}
	char c[24];
	snprintf(c, sizeof(c), "%zu", k - 2);
	orch_log(ORCH_LOG_INFO, "pool", "removing retired workspaces", "class", p->cfg->name,
		 "count", c, NULL);
}

/* One pass: retire what must go, note who came up, make at most one VM per pool (each
 * start may block the loop for a while; the next pass follows at once). */
static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orch_pools *ps = data;
	uint64_t now = orch_now_ms(), again = 0;
	bool more = false;

	if (ps->d->quitting)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		struct orch_pool *p = &ps->pools[i];
		bool retired = false;
		for (struct pool_member *m = p->members, *next; m; m = next) {
			next = m->next;
			if (m->retiring) {
				retire(p, m);
				retired = true;
			} else if (m->vm->state == VM_READY && !m->was_ready) {
				m->was_ready = true;
				p->failures = 0;
			}
		}
		if (retired)
			prune(p);
		if (p->stopped)
			continue;
		if (p->failures && !p->not_before) {
			uint64_t b = (uint64_t)POOL_BACKOFF_MIN_MS
				     << (p->failures < 7 ? p->failures : 7);
			p->not_before = now + (b < POOL_BACKOFF_MAX_MS ? b : POOL_BACKOFF_MAX_MS);
		}
		if (p->not_before > now) {
			uint64_t w = p->not_before - now;
			if (!again || w < again)
				again = w;
			continue;
		}
		p->not_before = 0;
		int64_t demand = 0;
		if (wanted(p, &demand) > 0) {
			if (p->yield_to && demand <= 0 && p->yield_until > now) {
				uint64_t w = p->yield_until - now; /* the reserve yields */
				if (!again || w < again)
					again = w;
				continue;
			}
			p->yield_to = NULL;
			grow(p);
			more = true;
		}
	}
	if (more)
		orch_timer_rearm(t, 0);
	else if (again)
		orch_timer_rearm(t, again);
}

/* ---- orchd's calls ---- */

static struct orch_pool *find_pool(struct orchd *d, const char *name)
{
	struct orch_pools *ps = d->pools;
	for (size_t i = 0; ps && i < ps->n; i++)
		if (!strcmp(ps->pools[i].cfg->name, name))
			return &ps->pools[i];
	return NULL;
}

bool pools_is_class(struct orchd *d, const char *name)
{
	return find_pool(d, name) != NULL;
}

int pools_new(struct orchd *d, struct orch_error *err)
{
	struct orch_pools *ps = calloc(1, sizeof(*ps));
	int r;

	if (!ps)
		return orch_err(err, -ENOMEM, "out of memory");
	ps->d = d;
	d->pools = ps;
	if (!(ps->pools = calloc(d->cfg->n_vms ? d->cfg->n_vms : 1, sizeof(*ps->pools))))
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = orch_timer_add(d->loop, 0, 0, on_timer, ps, &ps->timer)) < 0)
		return orch_errno(err, r, "pool timer");
	orch_timer_disarm(ps->timer);
	for (size_t i = 0; i < d->cfg->n_vms; i++) {
		const struct orchd_vm_config *c = &d->cfg->vms[i];
		_cleanup_free_ char **names = NULL;
		size_t n = 0;
		if (!c->pooled)
			continue;
		if (!store_db(d->store)) /* store-pool.c is SQLite's (store-schema.c, 8) */
			return orch_err(err, -EOPNOTSUPP,
					"vms.%s: pools keep their VMs in the SQLite store; with a "
					"postgresql store give the VM no pool and isolation "
					"\"shared\" (docs/FLEET.md)",
					c->name);
		struct orch_pool *p = &ps->pools[ps->n++];
		*p = (struct orch_pool){
			.ps = ps, .cfg = c, .stopped = !c->autostart, .prune_pidfd = -1};
		if (c->n_profiles) {
			json_t *a = json_array();
			for (size_t k = 0; k < c->n_profiles; k++)
				json_array_append_new(a, json_string(c->profiles[k]));
			p->profiles_json = json_dumps(a, JSON_COMPACT);
			json_decref(a);
			if (!p->profiles_json)
				return orch_err(err, -ENOMEM, "out of memory");
		}
		if ((r = store_pool_vms(d->store, c->name, &names, &n, err)) < 0)
			return r;
		for (size_t j = 0; j < n; j++) {
			struct pool_member *m = NULL;
			bool used = false;
			r = store_vm_used(d->store, names[j], &used, err);
			if (r >= 0)
				r = member_new(p, names[j], 0, &m, err);
			free(names[j]);
			if (r < 0) {
				for (size_t k = j + 1; k < n; k++)
					free(names[k]);
				return r;
			}
			m->used = used;
		}
	}
	return 0;
}

void pools_start(struct orchd *d)
{
	struct orch_pools *ps = d->pools;

	if (!ps)
		return;
	ps->started = true;
	for (size_t i = 0; i < ps->n; i++) {
		struct orch_pool *p = &ps->pools[i];
		for (struct pool_member *m = p->members; m; m = m->next) {
			bool task = vm_slot_task(m->vm, 0) != 0;
			for (int64_t s = 1; s < m->vm->n_slots; s++)
				task |= vm_slot_task(m->vm, s) != 0;
			/* A vm-per-task VM whose task ended while orchd was away is done with;
			 * one whose task still runs is adopted to see it end. */
			if (p->stopped || (per_task(p) && m->used && !task))
				m->retiring = true;
			else
				vm_start(m->vm);
		}
		prune(p); /* what earlier orchds retired */
	}
	kick(ps, 0);
}

void pools_free(struct orchd *d)
{
	struct orch_pools *ps = d->pools;

	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		while (ps->pools[i].members) {
			struct pool_member *m = ps->pools[i].members;
			ps->pools[i].members = m->next;
			member_free(m);
		}
		free(ps->pools[i].profiles_json);
		orch_io_free(ps->pools[i].prune_io); /* the child finishes on its own */
		if (ps->pools[i].prune_pidfd >= 0)
			close(ps->pools[i].prune_pidfd);
	}
	orch_timer_free(ps->timer);
	free(ps->pools);
	free(ps);
	d->pools = NULL;
}

int pools_up(struct orchd *d, const char *class_name, struct orch_error *err)
{
	struct orch_pool *p = find_pool(d, class_name);

	if (!p)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no pool named \"%s\"", class_name);
	p->stopped = false;
	p->failures = 0;
	p->not_before = 0;
	kick(d->pools, 0);
	return 0;
}

int pools_down(struct orchd *d, const char *class_name, struct orch_error *err)
{
	struct orch_pool *p = find_pool(d, class_name);

	if (!p)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no pool named \"%s\"", class_name);
	p->stopped = true;
	for (struct pool_member *m = p->members; m; m = m->next)
		m->retiring = true;
	kick(d->pools, 0);
	return 0;
}

int pools_retire(struct orchd *d, const char *vm_name, struct orch_error *err)
{
	struct vm *vm = orchd_find_vm(d, vm_name);

	if (!vm || vm->owner != &owner_ops)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no pooled VM named \"%s\"", vm_name);
	((struct pool_member *)vm->owner_data)->retiring = true;
	kick(d->pools, 0);
	return 0;
}

json_t *pools_json(struct orchd *d)
{
	struct orch_pools *ps = d->pools;
	json_t *a = json_array();

	for (size_t i = 0; ps && i < ps->n; i++) {
		struct orch_pool *p = &ps->pools[i];
		struct counts c = count(p);
		json_t *o = json_pack(
			"{s:s, s:s, s:I, s:I, s:s, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:o}", "class",
			p->cfg->name, "isolation", orchd_isolation_name(p->cfg->isolation), "ready",
			(json_int_t)p->cfg->pool_ready, "max", (json_int_t)p->cfg->pool_max,
			"state", p->stopped ? "stopped" : "running", "vms", "idle",
			(json_int_t)c.idle, "busy", (json_int_t)c.busy, "starting",
			(json_int_t)c.starting, "made", (json_int_t)p->made, "retired",
			(json_int_t)p->retired, "failures", (json_int_t)p->failures, "last_error",
			p->last_error[0] ? json_string(p->last_error) : json_null());
		if (!o)
			continue;
		if (p->cfg->snapshot)
			lvb_snapshot_describe(d, p->cfg, o);
		json_array_append_new(a, o);
	}
	return a;
}

static void pool_vm_json(const struct vm *vm, json_t *obj)
{
	const struct pool_member *m;

	if (vm->owner != &owner_ops)
		return;
	m = vm->owner_data;
	json_object_set_new(obj, "pool",
			    json_pack("{s:s, s:b, s:b}", "isolation",
				      orchd_isolation_name(m->pool->cfg->isolation), "used",
				      m->used, "retiring", m->retiring));
}

static void sched_pass(struct orchd *d)
{
	/* Tasks that found no VM may be waiting for one this pool should make. */
	if (d->pools)
		kick(d->pools, 0);
}

const struct orchd_service orchd_pool_service = {
	.name = "pools",
	.vm_json = pool_vm_json,
	.sched_pass = sched_pass,
};
