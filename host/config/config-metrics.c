/* SPDX-License-Identifier: Apache-2.0 */
/* The "metrics" section of the configuration (docs/CONFIG.md; the struct is the metrics',
 * host/metrics/metrics-config.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config-store.h"
#include "config-util.h"

int metrics_config_parse(json_t *v, struct metrics_config **ret, struct orch_error *err)
{
	static const char *const keys[] = {"socket", "tcp_port", NULL};
	struct metrics_config *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	if (v && ((r = cfg_object(v, "metrics", err)) < 0 ||
		  (r = cfg_check_keys(v, "metrics", keys, err)) < 0 ||
		  (r = cfg_path(v, "metrics", "socket", true, &c->socket, err)) < 0 ||
		  (r = cfg_int(v, "metrics", "tcp_port", 0, 65535, &c->tcp_port, err)) < 0)) {
		metrics_config_free(c);
		return r;
	}
	if (v && json_is_null(json_object_get(v, "socket")) && !(c->socket = strdup(""))) {
		metrics_config_free(c);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	*ret = c;
	return 0;
}
