/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config-util.h"
#include "metrics-config.h"

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

void metrics_config_free(struct metrics_config *c)
{
	if (!c)
		return;
	free(c->socket);
	free(c);
}

int metrics_config_socket(const struct metrics_config *c, const char *control, char **ret)
{
	const char *slash;

	*ret = NULL;
	if (c && c->socket)
		return c->socket[0] && !(*ret = strdup(c->socket)) ? -ENOMEM : 0;
	slash = strrchr(control, '/');
	if (asprintf(ret, "%.*smetrics.sock", slash ? (int)(slash - control + 1) : 0, control) <
	    0) {
		*ret = NULL;
		return -ENOMEM;
	}
	return 0;
}
