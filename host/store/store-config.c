/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store-config.h"

bool store_node_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > STORE_NODE_MAX || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

void store_config_defaults(struct store_config *c)
{
	*c = (struct store_config){
		.kind = STORE_SQLITE,
		.statement_timeout_ms = 5000,
		.heartbeat_ms = 1000,
		.node_lease_ms = 10000,
		.poll_ms = 2000,
	};
}

void store_config_free(struct store_config *c)
{
	if (!c)
		return;
	free(c->conninfo);
	free(c->password_file);
	free(c->node);
	free(c);
}
