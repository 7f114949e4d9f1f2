/* SPDX-License-Identifier: Apache-2.0 */
/* Control methods of repository tasks (docs/CONTROL.md, docs/WORKSPACES.md): task.diff,
 * task.bundle, task.push, workspaces.list, workspaces.rm. Params are checked here; the
 * work is host/git's (orchd-git.h), which answers the request when it is done. */
#include <errno.h>
#include <stdint.h>

#include "config-util.h"
#include "control.h"
#include "orchd-git.h"
#include "strv.h"

static int bad(struct orch_error *err, int r)
{
	if (r == -EINVAL)
		err->code = ORCH_RPC_INVALID_PARAMS;
	return err->code;
}

static int task_id(json_t *params, const char *const *keys, int64_t *id, struct orch_error *err)
{
	int r;
	if (!json_is_object(params))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.id: required (a task id)");
	if ((r = cfg_check_keys(params, "params", keys, err)) < 0 ||
	    (r = cfg_int(params, "params", "id", 1, INT64_MAX, id, err)) < 0)
		return bad(err, r);
	if (!*id)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.id: required (a task id)");
	return 0;
}

static int result_file(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, bool bundle,
		       struct orch_error *err)
{
	static const char *const keys[] = {"id", "offset", "max", NULL};
	int64_t id = 0, off = 0, max = 1024 * 1024;
	int r;
	if ((r = task_id(params, keys, &id, err)) < 0)
		return r;
	if ((r = cfg_int(params, "params", "offset", 0, INT64_MAX, &off, err)) < 0 ||
	    (r = cfg_int(params, "params", "max", 1, 1024 * 1024, &max, err)) < 0)
		return bad(err, r);
	return orchd_git_result_file(control_orchd(rpc), req, id, bundle, off, max, err);
}

int control_task_diff(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	return result_file(rpc, req, params, false, err);
}

int control_task_bundle(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	return result_file(rpc, req, params, true, err);
}

int control_task_push(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	static const char *const keys[] = {"id", "remote", "to", "allow", NULL};
	_cleanup_free_ char *remote = NULL, *to = NULL;
	_cleanup_(orch_strv_freep) char **allow = NULL;
	struct orchd_git_push a = {0};
	size_t n_allow = 0;
	int r;
	if ((r = task_id(params, keys, &a.task, err)) < 0)
		return r;
	if ((r = cfg_string(params, "params", "remote", 64, false, &remote, err)) < 0 ||
	    (r = cfg_string(params, "params", "to", 255, false, &to, err)) < 0 ||
	    (r = cfg_strv(params, "params", "allow", 64, 4096, &allow, &n_allow, err)) < 0)
		return bad(err, r);
	if ((r = control_peer(rpc, &a.uid, &a.gid, err)) < 0)
		return r;
	a.remote = remote;
	a.to = to;
	a.allow = allow;
	return orchd_git_push(control_orchd(rpc), req, &a, err);
}

int control_workspaces_list(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			    void *data, struct orch_error *err)
{
	static const char *const keys[] = {NULL};
	json_t *ws = NULL;
	int r;
	if (params && (!json_is_object(params) || cfg_check_keys(params, "params", keys, err) < 0))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params: expected {}");
	if ((r = orchd_git_workspaces(control_orchd(rpc), &ws, err)) < 0)
		return r;
	return orch_rpc_reply(req, json_pack("{so}", "workspaces", ws));
}

int control_workspaces_rm(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
			  void *data, struct orch_error *err)
{
	static const char *const keys[] = {"id", NULL};
	int64_t id = 0;
	int r;
	if ((r = task_id(params, keys, &id, err)) < 0)
		return r;
	return orchd_git_workspace_rm(control_orchd(rpc), req, id, err);
}
