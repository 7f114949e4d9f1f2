/* SPDX-License-Identifier: Apache-2.0 */
/* The in-jail LLM endpoint of orch-supervisor. Each agent slot gets an HTTP listener
 * (libmicrohttpd on the supervisor's loop, on a socket the supervisor bound to
 * 127.0.0.1:4000 inside the agent's network namespace), so the caller's identity is the
 * listener a request arrived on. Each HTTP request becomes one llm.request to the host;
 * the reply's status and headers start the HTTP response, llm.chunk bodies stream into it
 * and llm.done ends it. When the agent hangs up first, llm.cancel tells the host.
 *
 * One struct llm_bridge per supervisor holds the LLM channel (an orch_rpc) and routes
 * llm.chunk / llm.done by request id to the endpoint connections.
 *
 * libmicrohttpd is loaded (dlopen) when an agent first connects to any endpoint; until
 * then the listening sockets wait on the supervisor's loop. If it cannot be loaded, each
 * connection gets a fixed 503 answer and the reason is logged once per endpoint. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
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

/* Handlers for llm.chunk / llm.done notifications arriving on the channel. */
int llm_bridge_on_chunk(struct llm_bridge *b, json_t *params, struct orch_error *err);
int llm_bridge_on_done(struct llm_bridge *b, json_t *params, struct orch_error *err);
/* Ready-made method table entries whose rpc data (orch_rpc_get_data) is the bridge. */
extern const struct orch_rpc_method llm_bridge_methods[2];

/* The libmicrohttpd file the endpoints load (ORCH_MHD_LIBRARY, set at build time), for
 * packagers: orch-supervisor --dlopen-list prints it. */
const char *llm_endpoint_library(void);
/* Another file to load instead (tests); -EBUSY once loading was tried. path is borrowed. */
int llm_endpoint_set_library(const char *path);
bool llm_endpoint_library_loaded(void);

/* Serves slot's listener; listen_fd (a listening TCP socket, CLOEXEC) is taken over, also
 * on failure. max_body 0: LLM_ENDPOINT_MAX_BODY. */
int llm_endpoint_new(struct llm_bridge *b, int listen_fd, int64_t slot, size_t max_body,
		     struct llm_endpoint **ret, struct orch_error *err);
/* The task now running in the slot (NULL: none); copied. Informational for the host. */
int llm_endpoint_set_task(struct llm_endpoint *ep, const char *task);
/* Ends every connection of the endpoint (their host calls are cancelled). */
void llm_endpoint_free(struct llm_endpoint *ep);
