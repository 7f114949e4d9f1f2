/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's control socket (docs/CONTROL.md). */
#pragma once

#include <sys/types.h>

#include "orchd.h"
#include "rpc.h"

/* What the control socket tells its owner about clients. */
struct control_hooks {
	/* A client closed: nothing may be sent to rpc any more. */
	void (*client_closed)(struct orchd *d, struct orch_rpc *rpc);
	/* A client's output queue drained: it may take more. */
	void (*client_drained)(struct orchd *d, struct orch_rpc *rpc);
};

int control_new(struct orchd *d, const struct control_hooks *hooks, struct control **ret,
		struct orch_error *err);
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

/* control-budget.c */
int control_budget_show(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err);
int control_budget_set(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err);

/* control-egress.c */
int control_egress_log(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err);

/* control-git.c: repository tasks' results and workspaces (docs/WORKSPACES.md) */
int control_task_diff(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err);
int control_task_bundle(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err);
int control_task_push(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err);
int control_workspaces_list(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			    void *data, struct orch_error *err);
int control_workspaces_rm(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			  void *data, struct orch_error *err);
/* The client's uid and gid (SO_PEERCRED). */
int control_peer(struct orch_rpc *rpc, uid_t *ret_uid, gid_t *ret_gid, struct orch_error *err);

/* control-methods.c: the table of every control method */
extern const struct orch_rpc_method control_methods[];
extern const size_t control_n_methods;
