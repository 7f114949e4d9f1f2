/* SPDX-License-Identifier: Apache-2.0 */
/* orchd as one node of a cluster sharing a PostgreSQL store (docs/FLEET.md). With a shared
 * store orchd_fleet_new registers this node (its name and a token kept in state_dir, so
 * that a restart is told apart from a second orchd under the same name), claims its VMs'
 * names, and then on its loop:
 *
 *  - renews the node's lease every heartbeat_ms; when the lease was taken away (it was
 *    declared dead: its tasks were re-queued on the others) it drops what its slots hold,
 *    asks the supervisors to kill those tasks, and registers again as a new incarnation;
 *  - declares nodes whose lease expired dead (store_node_reap), but only after it has
 *    itself been connected for a whole lease: after the database was away every node first
 *    gets the time to renew its own lease;
 *  - turns notifications (pg-listen.c) into wake-ups: the scheduler, waiters of a task on
 *    any node, a cancel of a task running here; and every poll_ms does all of that anyway
 *    (notifications lost while a connection was down);
 *  - while the store is away, keeps what could not be stored: output in the spool
 *    (output.c's backlog), tasks to be marked lost (below), exits (the supervisor sends
 *    them again: vm.c), and retries each poll. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "backend.h"
#include "log.h"
#include "orch-config.h"
#include "orchd-fleet.h"
#include "orchd.h"
#include "pg-listen.h"
#include "store-pg.h"

#define FLEET_MAX_DEFERRED 4096

struct deferred_lost {
	int64_t task, attempt;
	char reason[200];
};

struct orchd_fleet {
	struct orchd *d;
	struct pg_listen *listen;
	struct orch_timer *hb, *poll;
	char token[40];
	uint64_t connected_since; /* orch_now_ms of the first good heartbeat in a row, 0: none */
	bool away;		  /* the last store call failed: the store is away */
	struct deferred_lost *lost;
	size_t n_lost;
};

bool store_away(struct orchd *d, int code)
{
	if (!d->fleet)
		return false;
	if (code == -ENOTCONN || code == -ETIMEDOUT || code == -EAGAIN) {
		d->fleet->away = true;
		return true;
	}
	return false;
}

int orchd_fleet_node_name(const struct orchd_config *cfg, char *buf, size_t len)
{
	char host[256] = "";

	if (cfg->store->node) {
		snprintf(buf, len, "%s", cfg->store->node);
		return 0;
	}
	if (gethostname(host, sizeof(host) - 1) < 0 || !store_node_name_valid(host))
		return -EINVAL;
	snprintf(buf, len, "%s", host);
	return 0;
}

/* <state_dir>/node-token: made once, 0600; tells this node's restarts from an impostor. */
static int node_token(struct orchd *d, char *buf, size_t len, struct orch_error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	unsigned char raw[16];
	ssize_t n;

	if (asprintf(&path, "%s/node-token", d->cfg->state_dir) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		if (n == 32) {
			buf[n] = 0;
			return 0;
		}
		close(fd);
		fd = -1;
	}
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw))
		return orch_errno(err, -EIO, "cannot read /dev/urandom");
	close(fd);
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, buf, 32) != 32)
		return orch_errno(err, -errno, "cannot write %s", path);
	return 0;
}

/* Every VM name this node runs is its own in the cluster. */
static int claim_vms(struct orchd *d, struct orch_error *err)
{
	for (size_t i = 0; i < d->n_vms; i++) {
		struct vm *vm = d->vms[i];
		int r = store_vm_update(d->store, vm->cfg->name, vm->ops->name, vm->n_slots,
					vm_state_name(vm->state), NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* This node was declared dead: its tasks run elsewhere now. */
static void fenced(struct orchd_fleet *f)
{
	struct orchd *d = f->d;
	struct orch_error err = {0};
	bool restart;
	unsigned n = 0;

	for (size_t i = 0; i < d->n_vms; i++)
		n += vm_slots_drop(d->vms[i]);
	f->n_lost = 0;
	orch_logf(ORCH_LOG_ERROR, "fleet",
		  "this node's lease was taken away; dropped %u task(s) now run elsewhere", n);
	if (store_node_register(d->store, f->token, d->cfg->socket, &restart, &err) < 0 ||
	    claim_vms(d, &err) < 0)
		orch_log(ORCH_LOG_ERROR, "fleet", "cannot register again", "error", err.msg, NULL);
	sched_kick(d);
}

static void retry_deferred(struct orchd_fleet *f)
{
	struct orchd *d = f->d;
	struct orch_error err = {0};
	size_t k = 0;

	for (size_t i = 0; i < f->n_lost; i++) {
		struct deferred_lost *l = &f->lost[i];
		bool requeued = false;
		int r = store_task_lost_attempt(d->store, l->task, l->attempt, l->reason, &requeued,
						&err);
		if (r < 0 && store_away(d, r)) {
			f->lost[k++] = *l;
			continue;
		}
		orchd_task_changed(d, l->task);
	}
	f->n_lost = k;
	for (size_t i = 0; i < d->n_vms; i++)
		vm_output_retry(d->vms[i]);
}

void orchd_fleet_defer_lost(struct orchd *d, int64_t task, int64_t attempt, const char *reason)
{
	struct orchd_fleet *f = d->fleet;
	struct deferred_lost *l;

	if (!f || f->n_lost >= FLEET_MAX_DEFERRED)
		return; /* past the bound: the lease's expiry makes it lost on another node */
	l = &f->lost[f->n_lost++];
	l->task = task;
	l->attempt = attempt;
	snprintf(l->reason, sizeof(l->reason), "%s", reason);
}

static void on_heartbeat(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orchd_fleet *f = data;
	struct orchd *d = f->d;
	struct orch_error err = {0};
	uint64_t now = orch_now_ms();
	int r;

	r = store_node_heartbeat(d->store, &err);
	if (r == -ESTALE) {
		f->connected_since = 0;
		fenced(f);
		return;
	}
	if (r < 0) {
		if (f->connected_since)
			orch_log(ORCH_LOG_WARN, "fleet", "cannot renew the node's lease", "error",
				 err.msg, NULL);
		f->connected_since = 0;
		f->away = true;
		return;
	}
	if (!f->connected_since) {
		f->connected_since = now;
		if (f->away)
			orch_log(ORCH_LOG_INFO, "fleet", "the store is back", NULL);
	}
	if (f->away || f->n_lost) {
		f->away = false;
		retry_deferred(f);
		sched_kick(d);
		waiters_poll(d);
	}
	if (now - f->connected_since < (uint64_t)d->cfg->store->node_lease_ms)
		return;
	r = store_node_reap(d->store, &err);
	if (r > 0) {
		orch_logf(ORCH_LOG_WARN, "fleet",
			  "%d node(s) stopped renewing their lease: their tasks were re-queued", r);
		sched_kick(d);
	} else if (r < 0) {
		orch_log(ORCH_LOG_WARN, "fleet", "cannot reap nodes", "error", err.msg, NULL);
	}
}

static void on_poll(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orchd_fleet *f = data;

	if (f->n_lost)
		retry_deferred(f);
	sched_kick(f->d);
	waiters_poll(f->d);
}

static void on_event(void *data, enum pg_event ev, int64_t task)
{
	struct orchd_fleet *f = data;
	struct orchd *d = f->d;

	switch (ev) {
	case PG_EV_TASKS:
		sched_kick(d);
		break;
	case PG_EV_DONE:
		waiters_finished(d, task);
		sched_kick(d);
		break;
	case PG_EV_OUTPUT:
		waiters_output(d, task);
		break;
	case PG_EV_CANCEL:
		for (size_t i = 0; i < d->n_vms; i++)
			(void)vm_cancel_task(d->vms[i], task);
		break;
	case PG_EV_RECONNECT:
		on_poll(NULL, NULL, f);
		break;
	}
}

int orchd_fleet_new(struct orchd *d, struct orch_error *err)
{
	const struct store_config *sc = d->cfg->store;
	struct orchd_fleet *f;
	char app[96];
	bool restart = false;
	int r;

	if (!store_shared(d->store))
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->lost = calloc(FLEET_MAX_DEFERRED, sizeof(*f->lost)))) {
		free(f);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	f->d = d;
	d->fleet = f;
	if ((r = node_token(d, f->token, sizeof(f->token), err)) < 0 ||
	    (r = store_node_register(d->store, f->token, d->cfg->socket, &restart, err)) < 0 ||
	    (r = claim_vms(d, err)) < 0)
		return r;
	snprintf(app, sizeof(app), "orchd %s listen", d->store->node);
	if ((r = pg_listen_new(d->loop, sc, app, on_event, f, &f->listen, err)) < 0)
		return r;
	if ((r = orch_timer_add(d->loop, (uint64_t)sc->heartbeat_ms, (uint64_t)sc->heartbeat_ms,
				on_heartbeat, f, &f->hb)) < 0 ||
	    (r = orch_timer_add(d->loop, (uint64_t)sc->poll_ms, (uint64_t)sc->poll_ms, on_poll, f,
				&f->poll)) < 0)
		return orch_errno(err, r, "fleet timers");
	f->connected_since = orch_now_ms();
	orch_log(ORCH_LOG_INFO, "fleet", restart ? "node registered again" : "node registered",
		 "node", d->store->node, NULL);
	return 0;
}

void orchd_fleet_free(struct orchd *d)
{
	struct orchd_fleet *f = d->fleet;

	if (!f)
		return;
	orch_timer_free(f->hb);
	orch_timer_free(f->poll);
	pg_listen_free(f->listen);
	free(f->lost);
	free(f);
	d->fleet = NULL;
}
