/* SPDX-License-Identifier: Apache-2.0 */
/* A private network namespace for one agent slot, holding only `lo` (brought up through
 * libnl-3 route). The supervisor keeps it as an fd: children join it with setns() before
 * exec'ing bwrap, and the supervisor itself can open sockets inside it (the agent's
 * 127.0.0.1:4000 LLM endpoint) with sv_netns_socket(). */
#pragma once

#include "error.h"

/* Returns a CLOEXEC fd of a new network namespace with lo up. Needs CAP_SYS_ADMIN. */
int sv_netns_new(struct orch_error *err);

/* socket(domain, type, 0) created inside the namespace netns_fd (the calling thread
 * returns to its own namespace before this returns). */
int sv_netns_socket(int netns_fd, int domain, int type, struct orch_error *err);

/* Brings `lo` up in the current network namespace. */
int sv_netns_lo_up(struct orch_error *err);
