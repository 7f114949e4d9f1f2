/* SPDX-License-Identifier: Apache-2.0 */
/* The in-jail LLM endpoints of orch-supervisor, the supervisor's side. Each agent slot
 * gets an HTTP listener on a socket the supervisor bound to 127.0.0.1:4000 inside the
 * agent's network namespace, so the caller's identity is the listener a request arrived
 * on. Each HTTP request becomes one llm.request to the host; llm.chunk / llm.done come
 * back and llm.cancel goes out when the agent hangs up.
 *
 * Privilege separation: the supervisor never parses HTTP. When an agent first connects
 * to a slot's listener, the supervisor starts that slot's endpoint process
 * (llm-helper.h: the same program executed again, running libmicrohttpd as a uid of its
 * own, chrooted to nothing, without privileges, behind a seccomp filter, in the slot's
 * network namespace) and hands it the listening socket and one end of a socketpair.
 * The endpoint process speaks llm.request / llm.cancel to the supervisor and gets
 * llm.chunk / llm.done back, the host's protocol (proto/schema.h), on that socketpair
 * only. The supervisor:
 *   - knows the slot from the socketpair a message came on, and puts the slot and the
 *     slot's running task into what it forwards, whatever the endpoint process said;
 *   - re-validates every message (lines of at most ORCH_PROTOCOL_MAX_LINE, strict
 *     JSON-RPC envelope, proto's strict schemas) and forwards rebuilt messages only;
 *   - gives each request a host id of its own (s<slot>-<n>, unique across slots) and
 *     routes the host's chunks, by that id, to the one endpoint process that owns it;
 *   - bounds each endpoint process: LLM_ENDPOINT_MAX_CONNS requests in flight, one
 *     request id each, 8 MiB of messages queued towards it.
 * An endpoint process that breaks any of this (a malformed or unknown message, a reused
 * id, too many requests, not reading) is killed; so is one that exits. Either way the
 * supervisor logs it once, cancels the slot's requests on the host (the agents' HTTP
 * connections end with the process) and starts a new process on the next connection
 * (at once after one that lived 5 s; else after 100 ms, doubling up to 5 s). Other slots
 * are not affected. The endpoint process's stderr is logged line by line, quoted.
 *
 * One struct llm_bridge per supervisor holds the channel to the host (an orch_rpc) and
 * the routing; one struct llm_endpoint per slot. Until a slot's first connection its
 * listening socket waits on the supervisor's loop (connections queue in its backlog), so
 * an idle supervisor runs no endpoint process and maps no libmicrohttpd at all. When the
 * process cannot be started, each waiting connection gets a fixed 503 (no parsing) and
 * the reason is logged once per slot; when it cannot load libmicrohttpd, it answers
 * every connection so itself. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"
#include "rpc.h"

struct llm_bridge;
struct llm_endpoint;

#define LLM_ENDPOINT_MAX_BODY (4u * 1024 * 1024)      /* request bodies; = ORCH_MAX_LLM_BODY */
#define LLM_ENDPOINT_MAX_BUFFERED (16u * 1024 * 1024) /* response bytes held per request */
#define LLM_ENDPOINT_MAX_CONNS 32		      /* per slot */

int llm_bridge_new(struct orch_loop *loop, struct llm_bridge **ret, struct orch_error *err);
/* Every endpoint must have been freed first. */
void llm_bridge_free(struct llm_bridge *b);
/* The channel to forward on (borrowed; NULL when it is gone: requests in flight end with
 * an error and new ones get 503 until a channel is set again). */
void llm_bridge_set_rpc(struct llm_bridge *b, struct orch_rpc *rpc);
/* The program the endpoint processes run (copied): NULL (default) is /proc/self/exe,
 * whose main() must hand LLM_HELPER_ARG over to llm_helper_main (llm-helper.h). */
int llm_bridge_set_helper(struct llm_bridge *b, const char *exe);

/* Handlers for llm.chunk / llm.done notifications arriving on the host channel. */
int llm_bridge_on_chunk(struct llm_bridge *b, json_t *params, struct orch_error *err);
int llm_bridge_on_done(struct llm_bridge *b, json_t *params, struct orch_error *err);
/* Ready-made method table entries whose rpc data (orch_rpc_get_data) is the bridge. */
extern const struct orch_rpc_method llm_bridge_methods[2];

/* The libmicrohttpd file the endpoint processes load (ORCH_MHD_LIBRARY, set at build
 * time), for packagers: orch-supervisor --dlopen-list prints it. */
const char *llm_endpoint_library(void);
/* Another file for the endpoint processes started from now on (tests). path is
 * borrowed. */
int llm_endpoint_set_library(const char *path);

struct llm_endpoint_opts {
	int64_t slot;	 /* 0..ORCH_MAX_SLOTS-1, one endpoint per slot */
	uid_t uid;	 /* the endpoint process's uid and gid (sv_privsep_uid: neither root */
	gid_t gid;	 /* nor an agent); when the supervisor is not root: its own */
	int netns_fd;	 /* the process lives in this network namespace (borrowed); < 0: ours */
	size_t max_body; /* 0: LLM_ENDPOINT_MAX_BODY */
	bool no_seccomp; /* --no-seccomp: the endpoint process goes without its filter too */
};

/* Serves the slot's listener; listen_fd (a listening TCP socket, CLOEXEC) is taken
 * over, also on failure. */
int llm_endpoint_new(struct llm_bridge *b, int listen_fd, const struct llm_endpoint_opts *o,
		     struct llm_endpoint **ret, struct orch_error *err);
/* The task now running in the slot (NULL: none); copied. Stamped on its requests. */
int llm_endpoint_set_task(struct llm_endpoint *ep, const char *task);
/* The running endpoint process (0: none), for status reports and tests. */
pid_t llm_endpoint_pid(const struct llm_endpoint *ep);
/* Stops the endpoint process (its requests are cancelled on the host), closes the
 * listener. */
void llm_endpoint_free(struct llm_endpoint *ep);
