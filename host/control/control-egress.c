/* SPDX-License-Identifier: Apache-2.0 */
/* Control method egress.log (docs/CONTROL.md): the agents' outbound connections through
 * the egress gateway (host/egress/egress-log.h). */
#include <errno.h>
#include <stdint.h>

#include "config-util.h"
#include "control.h"
#include "egress-log.h"
#include "egress-serve.h"
#include "orchd.h"

int control_egress_log(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	static const char *const keys[] = {"task", "limit", NULL};
	struct orchd *d = control_orchd(rpc);
	int64_t task = 0, limit = 100;
	json_t *rows = NULL;
	int r;

	if (!d->cfg->egress)
		return orch_err(err, ORCH_RPC_NOT_FOUND,
				"egress is not configured (no \"egress\" in orchd's config)");
	if (params && (!json_is_object(params) || cfg_check_keys(params, "params", keys, err) < 0 ||
		       cfg_int(params, "params", "task", 1, INT64_MAX, &task, err) < 0 ||
		       cfg_int(params, "params", "limit", 1, 10000, &limit, err) < 0))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s",
				err->msg[0] ? err->msg : "params: expected an object");
	if (d->egress)
		egress_host_flush_log(d->egress);
	if ((r = egress_log_query(store_db(d->store), task, limit, &rows, err)) < 0)
		return r;
	return orch_rpc_reply(req, json_pack("{so}", "connections", rows));
}
