/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's hook for the LLM proxy (host/llm/, docs/LLM.md). When orchd is built with
 * host/llm and the config has llm.upstreams, orchd_llm_new loads the proxy's config and
 * keys, migrates the ledger into orchd's store and starts the proxy on orchd's loop. Each
 * VM then gets a second channel to its supervisor that carries llm.request / llm.cancel
 * (for the local backend: a second socketpair, the supervisor's fd 4, passed as
 * `--llm-connect fd:4`). Without host/llm (orchd-llm-none.c) all of this is a no-op. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

struct orchd;
struct vm;
struct orch_rpc;
struct orch_rpc_req;

int orchd_llm_new(struct orchd *d, struct orch_error *err);
void orchd_llm_free(struct orchd *d);
/* True when VMs should be given an LLM channel. */
bool orchd_llm_enabled(const struct orchd *d);
/* llm.request / llm.cancel arriving on the VM's main channel (the supervisor multiplexes
 * them there): attach when the channel is set up, detach before it goes. */
int vm_llm_main_attach(struct vm *vm, struct orch_error *err);
void vm_llm_main_detach(struct vm *vm);
int vm_llm_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err);
int vm_llm_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err);
/* Serves llm.request on a separate channel fd (taken) for vm. */
int vm_attach_llm_channel(struct vm *vm, int fd, struct orch_error *err);
void vm_drop_llm_channel(struct vm *vm);
/* Control methods budget.show / budget.set (docs/CONTROL.md); without the proxy they
 * answer that it is not configured. */
int control_budget_show(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err);
int control_budget_set(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err);

/* A pruned task's budget row goes too (its spend records stay). */
void orchd_llm_task_pruned(struct orchd *d, int64_t task);
/* Copies the task's LLM spend from the ledger into its task row (after it finished). */
void orchd_llm_task_done(struct orchd *d, int64_t task);
/* Sets a task object's spend_usd / spend_tokens (and reserved_usd) from the ledger: the
 * ledger knows streams settled after the task ended (the agent hung up, a timeout, a
 * cancel) and the spend of lost tasks, which the row's copy made at exit does not. */
void orchd_llm_task_json(struct orchd *d, int64_t task, json_t *obj);
