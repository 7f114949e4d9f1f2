/* SPDX-License-Identifier: Apache-2.0 */
/* The per-slot services of the supervisor around the jails: the in-jail LLM endpoints
 * (guest/llm/) and the per-agent debug shells (guest/shell/), their helper processes,
 * what they add to hello's capabilities and to the channel's method table. */
#pragma once

#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

#include "error.h"
#include "rpc.h"
#include "supervisor.h"

/* The hidden modes of orch-supervisor: when argv[1] names one of the helper processes
 * the supervisor starts (guest/privsep.h), runs it and never returns; else returns. */
void sv_extras_helper_main(int argc, char **argv);
/* Per slot: the LLM listener on 127.0.0.1:<llm_port> in the slot's network namespace and
 * the debug shell listener (when --shell-listen is set). */
int sv_extras_start(struct supervisor *sv, struct orch_error *err);
void sv_extras_stop(struct supervisor *sv);
/* The host channel for llm.request (NULL while disconnected). */
void sv_extras_set_rpc(struct supervisor *sv, struct orch_rpc *rpc);
/* Channels of the extras that are down (the egress lane) are dialled again now. */
void sv_extras_redial(struct supervisor *sv);
/* The task now running in slot (NULL: none). */
void sv_extras_set_task(struct supervisor *sv, struct sv_slot *slot, const char *task);
/* Environment entries for a task ("K=V", owned by the supervisor), NULL-terminated. */
const char *const *sv_extras_env(struct supervisor *sv);
/* Extra read-only binds for a task's jail: source, destination pairs, NULL-terminated
 * (the egress CA files). */
const char *const *sv_extras_binds(const struct supervisor *sv);
/* The shared libraries the extras load with dlopen (the LLM endpoint's libmicrohttpd,
 * on first use), one path per line: what an image of the guest must contain besides
 * the supervisor's own DT_NEEDED libraries. */
void sv_extras_print_dlopen(FILE *f);
/* Adds "llm" / "shell" members to the hello capabilities. */
void sv_extras_capabilities(const struct supervisor *sv, json_t *caps);

/* Host -> guest methods of the extras (llm.chunk, llm.done), for the channel's table. */
extern const struct orch_rpc_method sv_extras_methods[];
extern const size_t sv_extras_n_methods;
