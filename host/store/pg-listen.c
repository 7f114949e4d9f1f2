/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "pg-conn.h"
#include "pg-listen.h"

#define PG_LISTEN_RETRY_MS 200

struct pg_listen {
	struct orch_loop *loop;
	struct pg_conn conn;
	struct orch_io *io;
	struct orch_timer *retry;
	pg_listen_cb cb;
	void *data;
};

static void on_io(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data);

static void lost(struct pg_listen *l)
{
	const char *m = l->conn.c ? PQerrorMessage(l->conn.c) : "";

	/* the message belongs to the connection: logged before it goes */
	orch_logf(ORCH_LOG_WARN, "store", "lost the notification connection (%.*s); dialling again",
		  (int)strcspn(m, "\n"), m);
	orch_io_free(l->io);
	l->io = NULL;
	if (l->conn.c) {
		PQfinish(l->conn.c);
		l->conn.c = NULL;
	}
	orch_timer_rearm(l->retry, PG_LISTEN_RETRY_MS);
}

/* LISTEN on a fresh connection and watch its socket. */
static int arm(struct pg_listen *l, struct orch_error *err)
{
	int r;

	r = pg_exec(&l->conn,
		    "LISTEN orch_tasks; LISTEN orch_done; LISTEN orch_output; LISTEN orch_cancel",
		    err);
	if (r < 0)
		return r;
	if (PQsetnonblocking(l->conn.c, 1) != 0)
		return orch_err(err, -EIO,
				"store: cannot make the notification connection "
				"non-blocking");
	r = orch_io_add(l->loop, PQsocket(l->conn.c), EPOLLIN, on_io, l, &l->io);
	if (r < 0)
		return orch_errno(err, r, "store: cannot watch the notification connection");
	return 0;
}

static void on_retry(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct pg_listen *l = data;
	struct orch_error err = {0};

	if (l->io)
		return;
	if (pg_conn_ensure(&l->conn, &err) < 0 || arm(l, &err) < 0) {
		orch_io_free(l->io);
		l->io = NULL;
		orch_timer_rearm(l->retry, PG_LISTEN_RETRY_MS);
		return;
	}
	orch_log(ORCH_LOG_INFO, "store", "notification connection back", NULL);
	l->cb(l->data, PG_EV_RECONNECT, 0);
}

static void on_io(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct pg_listen *l = data;
	PGnotify *n;

	if (!PQconsumeInput(l->conn.c) || PQstatus(l->conn.c) != CONNECTION_OK) {
		lost(l);
		return;
	}
	while (l->io && (n = PQnotifies(l->conn.c))) {
		enum pg_event ev = PG_EV_RECONNECT;
		int64_t task = strtoll(n->extra ? n->extra : "0", NULL, 10);

		if (!strcmp(n->relname, "orch_tasks"))
			ev = PG_EV_TASKS;
		else if (!strcmp(n->relname, "orch_done"))
			ev = PG_EV_DONE;
		else if (!strcmp(n->relname, "orch_output"))
			ev = PG_EV_OUTPUT;
		else if (!strcmp(n->relname, "orch_cancel"))
			ev = PG_EV_CANCEL;
		PQfreemem(n);
		if (ev != PG_EV_RECONNECT && (ev == PG_EV_TASKS || task > 0))
			l->cb(l->data, ev, task);
	}
}

int pg_listen_new(struct orch_loop *loop, const struct store_config *cfg, const char *app,
		  pg_listen_cb cb, void *data, struct pg_listen **ret, struct orch_error *err)
{
	struct pg_listen *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return orch_err(err, -ENOMEM, "out of memory");
	l->loop = loop;
	l->cb = cb;
	l->data = data;
	r = orch_timer_add(loop, PG_LISTEN_RETRY_MS, 0, on_retry, l, &l->retry);
	if (r < 0) {
		free(l);
		return orch_errno(err, r, "store: timer");
	}
	orch_timer_disarm(l->retry);
	r = pg_conn_init(&l->conn, cfg, app, err);
	if (r >= 0)
		r = arm(l, err);
	if (r < 0) {
		pg_listen_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void pg_listen_free(struct pg_listen *l)
{
	if (!l)
		return;
	orch_io_free(l->io);
	orch_timer_free(l->retry);
	pg_conn_done(&l->conn);
	free(l);
}

bool pg_listen_up(const struct pg_listen *l)
{
	return l && l->io;
}
