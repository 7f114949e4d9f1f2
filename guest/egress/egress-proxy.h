/* SPDX-License-Identifier: Apache-2.0 */
/* The in-jail egress proxy, the supervisor's side (docs/EGRESS.md). Every agent slot gets
 * a listener on 127.0.0.1:<egress_port> (3128) in its own network namespace, bound by the
 * supervisor, so the slot is known from the socket. The jail's HTTP_PROXY/HTTPS_PROXY
 * point there.
 *
 * Privilege separation: the supervisor never parses the agents' bytes. On a slot's
 * first connection it starts the slot's egress helper (egress-helper.h: the same
 * program executed again, unprivileged, chrooted to nothing, behind seccomp) with the
 * listening socket; the helper reads and checks each request head and hands the
 * supervisor the parsed request plus the connection itself. The supervisor re-validates
 * the message (strict schema, the socket really a TCP connection to its own port) and
 * stamps the slot and the slot's task itself.
 *
 * Each connection then becomes an egress.open on the egress lane to orchd, which
 * decides; on its verdict the supervisor answers the agent (200 for a tunnel, the
 * refusal's status and reason otherwise) and relays the bytes both ways as DATA frames
 * within the lane's per-connection windows, never interpreting them. The lane is dialled
 * like the LLM channel (--egress-connect ADDR, again with backoff when it drops); while
 * it is down new connections get 503. */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "loop.h"

struct egress_bridge;

struct egress_bridge_opts {
	const char *connect; /* the lane's address (proto/transport.h syntax) */
	unsigned port;	     /* in-jail port (3128) */
	unsigned slots;
	uid_t uid_base; /* the helpers' uids: sv_privsep_uid(uid_base, SV_PRIVSEP_EGRESS, slot) */
	const int *netns_fds; /* per slot (copied; the fds stay the caller's); NULL: the
			       * caller's namespace (tests) */
	bool no_seccomp;
};

int egress_bridge_new(struct orch_loop *loop, const struct egress_bridge_opts *o,
		      struct egress_bridge **ret, struct orch_error *err);
void egress_bridge_free(struct egress_bridge *b);
/* The task now running in slot (NULL: none); copied, stamped on its connections. */
void egress_bridge_set_task(struct egress_bridge *b, unsigned slot, const char *task);
/* The jail's extra environment ("K=V", NULL-terminated, owned by the bridge): the proxy
 * variables, and the CA variables once orchd sent a CA. */
const char *const *egress_bridge_env(const struct egress_bridge *b);
/* Read-only binds for the jail (source, destination pairs, NULL-terminated): the CA
 * files, once orchd sent a CA. */
const char *const *egress_bridge_binds(const struct egress_bridge *b);
/* The program the helpers run (copied; NULL: /proc/self/exe, whose main() hands
 * EGRESS_HELPER_ARG to egress_helper_main). */
int egress_bridge_set_helper(struct egress_bridge *b, const char *exe);
/* Connected to orchd now. */
bool egress_bridge_connected(const struct egress_bridge *b);
/* While disconnected: dial again now instead of after the backoff (a guest restored from
 * a snapshot, whose host is back at once). */
void egress_bridge_redial(struct egress_bridge *b);
/* The pid of slot's helper (0: none), for tests. */
pid_t egress_bridge_helper_pid(const struct egress_bridge *b, unsigned slot);
