/* SPDX-License-Identifier: Apache-2.0 */
/* The LLM channel of its own (--llm-connect ADDR): a second connection to the host that
 * carries only llm.request / llm.cancel (guest -> host) and llm.chunk / llm.done
 * (host -> guest), so that a long stream never delays task.run, task.output or the
 * heartbeats on the main channel. No hello: the host knows the VM from the connection.
 * Dialled again with backoff when it drops, like the main channel (an fd:N address
 * cannot be: then the endpoints answer 503 until the supervisor restarts). Without
 * --llm-connect none of this runs and the LLM traffic stays on the main channel. */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "supervisor.h"

/* Starts dialling cfg->llm_connect (when set and the LLM endpoint exists). */
int sv_llm_channel_start(struct supervisor *sv, struct orch_error *err);
/* Closes the channel; the bridge is left without one. Safe when never started. */
void sv_llm_channel_stop(struct supervisor *sv);
/* Connected now. */
bool sv_llm_channel_connected(const struct supervisor *sv);
/* While disconnected: dial again now instead of after the backoff (a guest restored from
 * a snapshot, whose host is back at once). */
void sv_llm_channel_redial(struct supervisor *sv);
