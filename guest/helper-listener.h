/* SPDX-License-Identifier: Apache-2.0 */
/* A helper process that serves a listening socket, started on the socket's first
 * connection and again after it stops (the in-jail LLM endpoint's, the egress proxy's;
 * privsep.h). While none runs, the listener is watched; a connection starts one
 * (ops->start spawns it into proc and sets up the owner's channel to it). When that
 * fails, the waiting connections get ops->refuse and the next start waits
 * sv_helper_backoff (the failure logged once). Once it runs, its exit (ops->exited: the
 * owner stops it with its reason) and its stderr (logged quoted) are watched; after it
 * stops, the next start waits sv_helper_restart_wait, or comes at once after a helper
 * that ran long enough. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "loop.h"
#include "privsep.h"

struct sv_listener_ops {
	int (*start)(void *data, struct orch_error *err); /* spawn into the listener's proc */
	void (*exited)(void *data);			  /* its pidfd is readable */
	void (*refuse)(int listen_fd);			  /* answer what waits, fixed */
};

struct sv_listener {
	struct orch_loop *loop;
	const struct sv_listener_ops *ops;
	void *data;
	const char *comp;	 /* log component ("llm", "egress") */
	const char *name;	 /* in the log: "<name> started", "<name> stopped" */
	const char *unavailable; /* the log message when it cannot start */
	unsigned slot;
	int listen_fd;
	struct orch_io *listen_io; /* while no helper serves the socket */
	struct orch_io *pid_io, *log_io;
	struct orch_timer *restart;
	uint64_t backoff_ms, refuse_until_ms, started_ms;
	bool warned;
	struct sv_helper proc; /* pid 0: none */
	struct sv_helper_log log;
};

/* Sets l up (its loop, ops, data, comp, name, unavailable and slot filled in by the
 * caller) on listen_fd, which it takes on success. */
int sv_listener_init(struct sv_listener *l, int listen_fd, struct orch_error *err);
/* Stops the helper (sv_listener_stop without restart) and closes the listener. */
void sv_listener_free(struct sv_listener *l);
/* After ops->start spawned it: watches its exit and stderr, stops watching the listener
 * (the helper accepts now), logs it. < 0: it cannot be watched (stop it). */
int sv_listener_started(struct sv_listener *l);
/* Logs why (NULL: a deliberate stop, not logged), logs what is left of its stderr, kills
 * and reaps it; restart: the listener is watched again, at once or after the wait. */
void sv_listener_stop(struct sv_listener *l, const char *why, bool restart);
