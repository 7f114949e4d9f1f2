/* SPDX-License-Identifier: Apache-2.0 */
/* A channel to the host that is dialled again, with backoff, whenever it drops: the
 * supervisor's control channel and its LLM channel (and any lane of its own) use one.
 *
 * The dialer dials at once when created; after orch_dialer_closed() (or a failed dial)
 * it dials again at once, then after 100 ms, doubled per attempt up to max_ms. The backoff starts over when the owner says the
 * channel works (orch_dialer_ready: e.g. hello was accepted), or when a connection that
 * ends had lasted max_ms: a peer that accepts and hangs up at once (a virtio-serial port
 * nobody holds on the host side opens fine and reads EOF) keeps it growing. An fd:N
 * address is an inherited connection: it is "dialled" once, and when it ends the owner's
 * gone() callback is told there is nothing to dial again. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "loop.h"
#include "transport.h"

struct orch_dialer;

struct orch_dialer_ops {
	/* A connection exists (fd taken, non-blocking). Returns < 0 (fd closed by the
	 * callee) when the owner cannot use it: dialled again after the backoff. */
	int (*connected)(void *data, int fd, struct orch_error *err);
	/* A dial or connected() failed (for the owner's log); a retry is scheduled. */
	void (*failed)(void *data, const struct orch_error *err);
	/* An fd:N connection ended: nothing can be dialled again. May be NULL. */
	void (*gone)(void *data);
};

struct orch_dialer_opts {
	uint64_t min_ms;     /* 0: 100 */
	uint64_t max_ms;     /* 0: 5000 */
	int dial_timeout_ms; /* 0: 2000 */
};

/* addr is copied. The first dial happens from the loop, soon. */
int orch_dialer_new(struct orch_loop *loop, const struct orch_addr *addr,
		    const struct orch_dialer_opts *opts, const struct orch_dialer_ops *ops,
		    void *data, struct orch_dialer **ret);
/* Stops dialling; a connection the owner holds stays the owner's. NULL is a no-op. */
void orch_dialer_free(struct orch_dialer *d);
/* The connection made by connected() ended: dial again after the backoff. */
void orch_dialer_closed(struct orch_dialer *d);
/* The connection works: the next drop starts the backoff over. */
void orch_dialer_ready(struct orch_dialer *d);
/* Without a connection now: dial at once, the backoff starting over (a guest restored from
 * a snapshot, whose host is back). */
void orch_dialer_now(struct orch_dialer *d);
/* fixed_ms > 0: every redial waits fixed_ms, no backoff, until set back to 0 (a frozen
 * supervisor, docs/PROTOCOL.md "Snapshots"). */
void orch_dialer_set_fixed(struct orch_dialer *d, uint64_t fixed_ms);
/* The delay before the next dial (tests, logs). */
uint64_t orch_dialer_backoff(const struct orch_dialer *d);
