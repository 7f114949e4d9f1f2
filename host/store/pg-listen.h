/* SPDX-License-Identifier: Apache-2.0 */
/* Wake-ups from the other nodes of a cluster: a second connection to PostgreSQL that
 * LISTENs on orch_tasks, orch_done, orch_output and orch_cancel, its socket watched on
 * orchd's loop (non-blocking: a notification costs a read, never a wait). When the
 * connection breaks it is dialled again with backoff; what was sent meanwhile is lost, so
 * a reconnect is reported as PG_EV_RECONNECT ("anything may have happened"), and orchd's
 * fallback poll (store.postgresql.poll_ms) covers notifications lost otherwise. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct orch_loop;
struct store_config;
struct pg_listen;

enum pg_event {
	PG_EV_RECONNECT, /* the connection came back: re-check everything */
	PG_EV_TASKS,	 /* the queue changed: lease */
	PG_EV_DONE,	 /* task ended (or was lost) */
	PG_EV_OUTPUT,	 /* task has new output */
	PG_EV_CANCEL,	 /* task is to be cancelled where it runs */
};

typedef void (*pg_listen_cb)(void *data, enum pg_event ev, int64_t task);

int pg_listen_new(struct orch_loop *loop, const struct store_config *cfg, const char *app,
		  pg_listen_cb cb, void *data, struct pg_listen **ret, struct orch_error *err);
void pg_listen_free(struct pg_listen *l);
bool pg_listen_up(const struct pg_listen *l);
