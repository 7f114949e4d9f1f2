/* SPDX-License-Identifier: Apache-2.0 */
/* The nodes of a cluster and their leases (docs/FLEET.md, "Nodes and leases"). A node
 * holds a lease it renews every heartbeat_ms (heartbeat_at = the server's now(): the
 * nodes' own clocks do not matter). A node whose lease is older than node_lease_ms is
 * declared dead by whichever node sees it first (never within a lease of the server's own
 * start: after a restart every node first gets the time to renew), in one transaction
 * that also makes its
 * leased and running tasks lost (re-queued under the usual retry rule) and charges its LLM
 * reservations at their worst case. Its incarnation then no longer matches: its next
 * heartbeat learns it was fenced, and every message of its old attempts is refused by the
 * attempt and node conditions of the task statements. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "orch-config.h"
#include "store-pg.h"

struct register_ctx {
	struct store_pg *p;
	const char *token, *socket;
	bool restart;
	struct orch_error *err;
};

static int requeue_node(struct store_pg *p, const char *node, struct orch_error *err);

static int register_in(void *data)
{
	struct register_ctx *c = data;
	struct store_pg *p = c->p;
	char b[PG_INT_BUF];
	const char *sel[] = {p->node, pg_int(b, p->node_lease_ms)};
	const char *up[] = {p->node, c->token, c->socket, ORCH_VERSION};
	_cleanup_free_ char *token = NULL;
	bool alive = false, found;
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_NODE_STALE,
		   "SELECT token, state = 'up' AND heartbeat_at >= now() - $2 * interval '1 ms'"
		   " FROM nodes WHERE name = $1 FOR UPDATE",
		   2, sel, &res, c->err);
	if (r < 0)
		return r;
	found = PQntuples(res) == 1;
	if (found) {
		token = pg_col_str(res, 0, 0);
		alive = PQgetvalue(res, 0, 1)[0] == 't';
	}
	PQclear(res);
	if (found && !token)
		return orch_err(c->err, -ENOMEM, "out of memory");
	c->restart = found && strcmp(token, c->token) == 0;
	if (found && !c->restart && alive)
		return orch_err(
			c->err, -EEXIST,
			"store: node name %s is held by another orchd whose lease is alive; "
			"give this one another store.postgresql.node",
			p->node);
	if (found && !c->restart && (r = requeue_node(p, p->node, c->err)) < 0)
		return r; /* someone else's old tasks under this name are not ours to adopt */
	r = pg_run(&p->conn, PGS_NODE_REGISTER,
		   "INSERT INTO nodes (name, token, state, socket, version) VALUES ($1, $2, 'up', "
		   "$3, $4)"
		   " ON CONFLICT (name) DO UPDATE SET incarnation = nodes.incarnation + 1,"
		   " token = $2, state = 'up', socket = $3, version = $4, started_at = now(),"
		   " heartbeat_at = now() RETURNING incarnation",
		   4, up, &res, c->err);
	if (r < 0)
		return r;
	p->incarnation = pg_col_int(res, 0, 0, 1);
	PQclear(res);
	return 0;
}

int store_node_register(struct store *s, const char *token, const char *socket, bool *ret_restart,
			struct orch_error *err)
{
	struct register_ctx c = {store_pg(s), token, socket, false, err};
	int r = pg_transaction(&c.p->conn, register_in, &c, err);

	if (r >= 0 && ret_restart)
		*ret_restart = c.restart;
	return r;
}

int store_node_heartbeat(struct store *s, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF];
	const char *v[] = {p->node, pg_int(b, p->incarnation)};
	PGresult *res = NULL;
	int r, n;

	r = pg_run(&p->conn, PGS_NODE_HEARTBEAT,
		   "UPDATE nodes SET heartbeat_at = now()"
		   " WHERE name = $1 AND incarnation = $2 AND state = 'up' RETURNING 1",
		   2, v, &res, err);
	if (r < 0)
		return r;
	n = PQntuples(res);
	PQclear(res);
	if (n == 0)
		return orch_err(err, -ESTALE,
				"store: this node's lease was taken away (another node declared "
				"it dead and re-queued its tasks)");
	return 0;
}

/* Inside a transaction: node's leased and running tasks become lost. */
static int requeue_node(struct store_pg *p, const char *node, struct orch_error *err)
{
	char b[PG_INT_BUF], why[160];
	const char *v[] = {node, pg_int(b, store_now_ms()), why};
	int r;

	snprintf(why, sizeof(why), "lost: node %s stopped renewing its lease", node);
	r = pg_run(
		&p->conn, PGS_NODE_REQUEUE,
		"WITH u AS (UPDATE tasks SET"
		" state = CASE WHEN retries_left > 0 AND NOT cancel_requested"
		"   THEN 'queued' ELSE 'lost' END,"
		" finished_at = CASE WHEN retries_left > 0 AND NOT cancel_requested"
		"   THEN NULL ELSE $2::bigint END,"
		" vm = CASE WHEN retries_left > 0 AND NOT cancel_requested THEN NULL ELSE vm END,"
		" slot = CASE WHEN retries_left > 0 AND NOT cancel_requested"
		"   THEN NULL ELSE slot END,"
		" node = CASE WHEN retries_left > 0 AND NOT cancel_requested"
		"   THEN NULL ELSE node END,"
		" retries_left = GREATEST(retries_left - 1, 0), lost_count = lost_count + 1,"
		" reason = $3"
		" WHERE node = $1 AND state IN ('leased', 'running') RETURNING id)"
		" SELECT pg_notify('orch_done', id::text), pg_notify('orch_tasks', '') FROM u",
		3, v, NULL, err);
	if (r < 0)
		return r;
	return pg_llm_settle_node(p, node, err);
}

struct reap_ctx {
	struct store_pg *p;
	int n;
	struct orch_error *err;
};

static int reap_in(void *data)
{
	struct reap_ctx *c = data;
	struct store_pg *p = c->p;
	char b[PG_INT_BUF];
	const char *v[] = {p->node, pg_int(b, p->node_lease_ms)};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_NODE_DEAD,
		   "UPDATE nodes SET state = 'dead' WHERE state = 'up' AND name <> $1"
		   " AND heartbeat_at < now() - $2 * interval '1 ms'"
		   /* a server that (re)started less than a lease ago: every node first gets
		    * the time to come back */
		   " AND pg_postmaster_start_time() < now() - $2 * interval '1 ms'"
		   " RETURNING name",
		   2, v, &res, c->err);
	if (r < 0)
		return r;
	c->n = PQntuples(res);
	for (int i = 0; r >= 0 && i < c->n; i++)
		r = requeue_node(p, PQgetvalue(res, i, 0), c->err);
	PQclear(res);
	return r;
}

int store_node_reap(struct store *s, struct orch_error *err)
{
	struct reap_ctx c = {store_pg(s), 0, err};
	int r = pg_transaction(&c.p->conn, reap_in, &c, err);

	return r < 0 ? r : c.n;
}

int store_node_leave(struct store *s, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	char b[PG_INT_BUF];
	const char *v[] = {p->node, pg_int(b, p->incarnation)};

	return pg_run(&p->conn, PGS_NODE_LEAVE,
		      "UPDATE nodes SET state = 'left' WHERE name = $1 AND incarnation = $2", 2, v,
		      NULL, err);
}

int store_nodes_json(struct store *s, json_t **ret, struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	json_error_t jerr;
	PGresult *res = NULL;
	json_t *a;
	int r;

	r = pg_run(
		&p->conn, PGS_NODES,
		"SELECT coalesce(json_agg(json_build_object('name', n.name, 'state', n.state,"
		" 'incarnation', n.incarnation,"
		" 'heartbeat_age_ms', (extract(epoch FROM now() - n.heartbeat_at) * 1000)::bigint,"
		" 'started_at', (extract(epoch FROM n.started_at) * 1000)::bigint,"
		" 'socket', n.socket, 'version', n.version,"
		" 'vms', coalesce((SELECT json_agg(json_build_object('name', v.name,"
		"   'backend', v.backend, 'slots', v.slots, 'state', v.state,"
		"   'busy', (SELECT count(*) FROM tasks t WHERE t.vm = v.name AND t.node = n.name"
		"     AND t.state IN ('leased', 'running'))) ORDER BY v.name)"
		"   FROM vms v WHERE v.node = n.name), '[]'::json)) ORDER BY n.name), '[]'::json)"
		" FROM nodes n",
		0, NULL, &res, err);
	if (r < 0)
		return r;
	a = json_loads(PQgetvalue(res, 0, 0), JSON_REJECT_DUPLICATES, &jerr);
	PQclear(res);
	if (!json_is_array(a)) {
		json_decref(a);
		return orch_err(err, -EIO, "store: nodes: %s", jerr.text);
	}
	*ret = a;
	return 0;
}

int store_vm_find(struct store *s, const char *vm, char **ret_node, int64_t *ret_slots,
		  struct orch_error *err)
{
	struct store_pg *p = store_pg(s);
	const char *v[] = {vm};
	PGresult *res = NULL;
	int r;

	r = pg_run(&p->conn, PGS_VM_FIND, "SELECT node, slots FROM vms WHERE name = $1", 1, v, &res,
		   err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return orch_err(err, -ENOENT, "no VM named %s in the cluster", vm);
	}
	if (ret_node && !(*ret_node = pg_col_str(res, 0, 0)))
		r = orch_err(err, -ENOMEM, "out of memory");
	if (ret_slots)
		*ret_slots = pg_col_int(res, 0, 1, 0);
	PQclear(res);
	return r;
}
