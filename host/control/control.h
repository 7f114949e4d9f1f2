/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's control socket (docs/CONTROL.md). */
#pragma once

#include "orchd.h"
#include "rpc.h"

int control_new(struct orchd *d, struct control **ret, struct orch_error *err);
void control_free(struct control *c);
size_t control_n_clients(const struct control *c);
/* The orchd behind a control connection (for method handlers). */
struct orchd *control_orchd(struct orch_rpc *rpc);

/* control-submit.c */
int control_task_submit(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err);

/* control-vm.c */
int control_vm_list(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err);
int control_vm_up(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err);
int control_vm_down(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err);
int control_vm_restart(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err);
int control_vm_console(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err);

/* control-methods.c */
extern const struct orch_rpc_method control_methods[];
extern const size_t control_n_methods;
