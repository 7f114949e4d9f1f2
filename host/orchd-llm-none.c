/* SPDX-License-Identifier: Apache-2.0 */
/* orchd built without host/llm: no LLM proxy, no LLM channels. */
#include <errno.h>
#include <unistd.h>

#include "orchd-llm.h"
#include "rpc.h"

int orchd_llm_new(struct orchd *d, struct orch_error *err)
{
	return 0;
}

void orchd_llm_free(struct orchd *d)
{
}

bool orchd_llm_enabled(const struct orchd *d)
{
	return false;
}

int vm_attach_llm_channel(struct vm *vm, int fd, struct orch_error *err)
{
	close(fd);
	return orch_err(err, -EOPNOTSUPP, "this orchd was built without the LLM proxy");
}

void vm_drop_llm_channel(struct vm *vm)
{
}

void orchd_llm_task_done(struct orchd *d, int64_t task)
{
}

void orchd_llm_task_pruned(struct orchd *d, int64_t task)
{
}

void orchd_llm_task_json(struct orchd *d, int64_t task, json_t *obj)
{
}

int control_budget_show(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	return orch_err(err, ORCH_RPC_NOT_FOUND, "this orchd was built without the LLM proxy");
}

int control_budget_set(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	return orch_err(err, ORCH_RPC_NOT_FOUND, "this orchd was built without the LLM proxy");
}

int vm_llm_main_attach(struct vm *vm, struct orch_error *err)
{
	return 0;
}

void vm_llm_main_detach(struct vm *vm)
{
}

int vm_llm_on_request(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	return orch_err(err, ORCH_RPC_NOT_FOUND, "this orchd was built without the LLM proxy");
}

int vm_llm_on_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err)
{
	return 0;
}
