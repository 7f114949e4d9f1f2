/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP server of one slot's LLM endpoint (internal to guest/llm/), run by the
 * unprivileged endpoint process (llm-helper.c), never by the supervisor.
 *
 * libmicrohttpd with an external event loop (MHD_USE_EPOLL, its epoll fd on the loop) on
 * the listening socket the supervisor made. Each HTTP request becomes one llm.request
 * on rpc, the connection to the supervisor; the reply's status and headers start the
 * HTTP response, llm.chunk bodies stream into it and llm.done ends it. When the agent
 * hangs up first, llm.cancel says so. The supervisor stamps the slot and the task
 * itself: what this side puts there is ignored. */
#pragma once

#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"
#include "rpc.h"

struct llm_http;

/* dlopen()s libmicrohttpd (RTLD_NOW) from path and resolves what the server uses. */
int llm_http_load(const char *path, struct orch_error *err);

/* Serves listen_fd (borrowed). Without a loaded library every connection gets a fixed
 * 503 JSON error and is closed (llm_refuse_waiting). max_body 0: LLM_ENDPOINT_MAX_BODY. */
int llm_http_new(struct orch_loop *loop, struct orch_rpc *rpc, int listen_fd, int64_t slot,
		 size_t max_body, struct llm_http **ret, struct orch_error *err);

/* llm.chunk / llm.done notifications from the supervisor. */
int llm_http_on_chunk(struct llm_http *h, json_t *params, struct orch_error *err);
int llm_http_on_done(struct llm_http *h, json_t *params, struct orch_error *err);

/* Accepts what waits on listen_fd (at most LLM_ENDPOINT_MAX_CONNS), answers each with a
 * fixed 503 JSON error without parsing the request, and closes it. */
void llm_refuse_waiting(int listen_fd);
