/* SPDX-License-Identifier: Apache-2.0 */
/* The egress helper of one slot (see egress-proxy.h): orch-supervisor executed again as
 * `orch-supervisor --egress-helper --slot N --uid U --gid G [--no-seccomp]` with the
 * slot's listening socket (127.0.0.1:3128 in the slot's network namespace) as fd 3 and a
 * SOCK_SEQPACKET socket to the supervisor as fd 4. It gives up everything
 * (guest/privsep.h), then accepts the agents' connections and reads each one's request
 * head (and nothing after it: the head's end is found with MSG_PEEK, then exactly the
 * head is consumed), with bounds (ORCH_HTTP_MAX_LINE, ORCH_HTTP_MAX_HEAD, at most
 * EGRESS_HELPER_MAX_PENDING connections reading their head) and a deadline
 * (EGRESS_HEAD_TIMEOUT_MS, against slowloris). A bad head gets a 400 (a late one 408)
 * from the helper itself. A good one is handed to the supervisor as one message: the
 * parsed request as an egress open (proto/egress.h, without task) and the connection
 * itself (SCM_RIGHTS); the helper then forgets it. The supervisor relays the bytes that
 * follow without parsing them. */
#pragma once

#include "egress.h"

#define EGRESS_HELPER_ARG "--egress-helper"
#define EGRESS_HEAD_TIMEOUT_MS 10000
#define EGRESS_HELPER_MAX_PENDING 64
/* New connections an agent may open per second (a token bucket of this many, refilled
 * continuously); more wait in the listen backlog. One agent's connection flood thus
 * costs the supervisor and orchd a bounded amount of work, whatever it tries. */
#define EGRESS_HELPER_RATE 100
/* One message helper -> supervisor: the open JSON (at most this many bytes) + one fd. */
#define EGRESS_HELPER_MAX_MSG ORCH_EGRESS_MAX_PAYLOAD

_Noreturn void egress_helper_main(int argc, char **argv);
