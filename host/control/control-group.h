/* SPDX-License-Identifier: Apache-2.0 */
/* The group commit of task submissions (docs/ARCHITECTURE.md, "Submissions: group
 * commit"). A task.submit is validated at once and joins the pending group; the group is
 * inserted in ONE store transaction (store_task_insert_many) at the end of the loop's
 * turn (a zero-delay timer: every request read in this turn of the loop has joined it),
 * or at once when it is full or its connection could take no further request in flight.
 * Only after the commit are the replies sent, in the order the requests arrived: a reply
 * "queued" never precedes its commit; a failed commit answers every member with an error.
 * A submission refused by validation waits in the group too (its error is its answer), so
 * it never overtakes an earlier submission of its connection; and before any other method
 * runs for a connection with members in the group, the group is committed (control.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "orchd.h"
#include "rpc.h"

struct control_group;

/* One member, embedded in its owner's struct. */
struct group_entry {
	struct orch_rpc_req *req;     /* the group holds a reference */
	const struct task_spec *spec; /* NULL: refused before the store (err says why) */
	int64_t id;		      /* after the commit: the task's id; 0: not stored (err) */
	struct orch_error err;
	/* After the commit: answers req, frees the entry (the group drops its reference to
	 * req afterwards). It must not add to the group or commit it (replies only). */
	void (*done)(struct orchd *d, struct group_entry *e);
};

int control_group_new(struct orchd *d, struct control_group **ret, struct orch_error *err);
/* Commits what is pending, then frees the group. */
void control_group_free(struct control_group *g);
/* Takes e (and a reference to e->req). May commit at once (e included). */
void control_group_add(struct control_group *g, struct group_entry *e);
void control_group_commit(struct control_group *g);
/* Members that will be inserted (have a spec). */
size_t control_group_pending(const struct control_group *g);
/* True when a member came on this connection. */
bool control_group_holds(const struct control_group *g, const struct orch_rpc *rpc);
