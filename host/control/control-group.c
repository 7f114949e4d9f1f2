/* SPDX-License-Identifier: Apache-2.0 */
/* The group commit of task submissions (control-group.h). */
#include <errno.h>
#include <stdlib.h>

#include "control-group.h"
#include "log.h"

/* At most this many members: a bounded transaction, a bounded pause of the loop. */
#define GROUP_MAX 128

struct control_group {
	struct orchd *d;
	struct orch_timer *timer; /* zero-delay: the end of this turn of the loop */
	size_t n, n_specs;
	bool failing; /* the last group with tasks stored none of them */
	struct group_entry *e[GROUP_MAX];
	struct task_insert t[GROUP_MAX];
};

static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	control_group_commit(data);
}

int control_group_new(struct orchd *d, struct control_group **ret, struct orch_error *err)
{
	struct control_group *g = calloc(1, sizeof(*g));

	if (!g)
		return orch_err(err, -ENOMEM, "out of memory");
	g->d = d;
	*ret = g;
	return 0;
}

void control_group_free(struct control_group *g)
{
	if (!g)
		return;
	control_group_commit(g);
	orch_timer_free(g->timer);
	free(g);
}

size_t control_group_pending(const struct control_group *g)
{
	return g->n_specs;
}

bool control_group_holds(const struct control_group *g, const struct orch_rpc *rpc)
{
	for (size_t i = 0; i < g->n; i++)
		if (orch_rpc_req_rpc(g->e[i]->req) == rpc)
			return true;
	return false;
}

void control_group_add(struct control_group *g, struct group_entry *e)
{
	struct orch_rpc *rpc = orch_rpc_req_rpc(e->req);

	orch_rpc_req_ref(e->req);
	e->id = 0;
	g->e[g->n++] = e;
	if (e->spec)
		g->n_specs++;
	/* full, or its connection's next request would be refused as one too many in
	 * flight: now, not at the end of the turn */
	if (g->n == GROUP_MAX || orch_rpc_inflight_full(rpc)) {
		control_group_commit(g);
		return;
	}
	if (g->n > 1)
		return;
	if (g->timer)
		orch_timer_rearm(g->timer, 0);
	else if (orch_timer_add(g->d->loop, 0, 0, on_timer, g, &g->timer) < 0)
		control_group_commit(g); /* no timer: a group of one */
}

void control_group_commit(struct control_group *g)
{
	struct group_entry *e[GROUP_MAX];
	size_t n = g->n, k = 0, stored;

	if (n == 0)
		return;
	/* taken out first: the group is empty (and may fill again) while members answer */
	for (size_t i = 0; i < n; i++)
		e[i] = g->e[i];
	g->n = g->n_specs = 0;
	if (g->timer)
		orch_timer_disarm(g->timer);
	for (size_t i = 0; i < n; i++)
		if (e[i]->spec)
			g->t[k++] = (struct task_insert){.spec = e[i]->spec};
	stored = store_task_insert_many(g->d->store, g->t, k);
	/* a store that is away is said once, not per group; a task failing alone each time */
	for (size_t i = 0; stored < k && i < k; i++)
		if (!g->t[i].id) {
			if (stored || !g->failing)
				orch_log(ORCH_LOG_WARN, "control", "submissions not stored",
					 "error", g->t[i].err.msg, NULL);
			break;
		}
	if (k && !stored)
		g->failing = true;
	else if (stored && g->failing) {
		orch_log(ORCH_LOG_INFO, "control", "submissions stored again", NULL);
		g->failing = false;
	}
	k = 0;
	for (size_t i = 0; i < n; i++) {
		struct orch_rpc_req *req = e[i]->req;

		if (e[i]->spec) {
			e[i]->id = g->t[k].id;
			if (!e[i]->id) {
				e[i]->err = g->t[k].err;
				orch_err_prefix(&e[i]->err, "the task was not stored");
			}
			k++;
		}
		e[i]->done(g->d, e[i]);
		orch_rpc_req_unref(req);
	}
	if (stored)
		sched_kick(g->d);
}
