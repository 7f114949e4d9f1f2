/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's LLM proxy service (host/llm/, docs/LLM.md). When the config has llm.upstreams,
 * orchd_llm_new loads the proxy's config and keys, migrates the ledger into orchd's store
 * and starts the proxy on orchd's loop. orchd_llm_service (service.h) then gives each VM
 * an LLM lane to its supervisor that carries llm.request / llm.cancel (for the local
 * backend: a second socketpair, the supervisor's fd 4, passed as `--llm-connect fd:4`),
 * serves the same methods on a VM's control channel for supervisors without the lane,
 * and adds each task's spend from the ledger to its views. Without upstreams the lane is
 * not wanted and llm.request is answered "not configured". */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "service.h"

struct orchd;

int orchd_llm_new(struct orchd *d, struct orch_error *err);
void orchd_llm_free(struct orchd *d);
/* True when the proxy runs (llm.upstreams configured). */
bool orchd_llm_enabled(const struct orchd *d);
extern const struct orchd_service orchd_llm_service;
