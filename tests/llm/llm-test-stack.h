/* SPDX-License-Identifier: Apache-2.0 */
/* The whole LLM path in one process, for tests and the benchmark:
 *   HTTP client -> llm_endpoint (guest library, 127.0.0.1:port) -> llm.request over an
 *   AF_UNIX socketpair (orch_rpc both ends) -> llm_serve + llm_proxy (host library) ->
 *   libcurl -> the fake upstream (a child process).
 * The endpoints run their endpoint processes (guest/llm/llm-endpoint.h) as the real
 * supervisor does, with this program as the helper (its main() hands LLM_HELPER_ARG
 * to llm_helper_main).
 * Agent slot 3 of VM "vm" runs task "t-e2e"; slot 4 (a second endpoint, port2) runs
 * "t-e2e-4"; the host also accepts slot 5, running "t-e2e-5" (tests may add an endpoint for
 * it). The host refuses requests of a slot without a task (test-llm-serve covers that). */
#pragma once

#include <sys/types.h>
#include <sqlite3.h>

#include "loop.h"
#include "rpc.h"
#include "llm-config.h"
#include "llm-endpoint.h"
#include "llm-helper.h"
#include "llm-proxy.h"
#include "llm-serve.h"

#define LLM_STACK_SLOT 3
#define LLM_STACK_TASK "t-e2e"

struct llm_stack {
	char tmpdir[64], keypath[128], recpath[128], dbpath[128];
	pid_t fake_pid;
	unsigned fake_port; /* the upstream, for direct baselines */
	unsigned port;	    /* the in-jail endpoint of slot 3 */
	unsigned port2;	    /* the endpoint of slot 4 */
	struct orch_loop *loop;
	sqlite3 *db;
	struct llm_config cfg;
	struct llm_proxy *proxy;
	struct orch_rpc *host_rpc, *guest_rpc;
	struct llm_serve *serve;
	struct llm_bridge *bridge;
	struct llm_endpoint *ep, *ep2;
};

/* Options of a test endpoint for slot: the endpoint process as a uid of this test
 * process's own range (see llm-test-stack.c), no network namespace. */
struct llm_endpoint_opts llm_stack_opts(int64_t slot);
/* Programs using the stack begin main() with LLM_HELPER_ARG's hand-over (llm-helper.h):
 * the endpoint processes are the program itself, executed again.
 * fake_args: extra arguments of the fake upstream (NULL-terminated, may be NULL). */
int llm_stack_start(struct llm_stack *s, const char *fake_path, const char *const *fake_args);
void llm_stack_stop(struct llm_stack *s);
