/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-config.h"

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
