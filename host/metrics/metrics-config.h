/* SPDX-License-Identifier: Apache-2.0 */
/* The "metrics" object of orchd's configuration (docs/CONFIG.md, docs/FLEET.md): where
 * orchd serves its Prometheus exposition. Parsed by host/config/config-metrics.c. */
#pragma once

#include <stdint.h>

struct metrics_config {
	/* A Unix socket (0660 root:group, like the control socket). NULL after parsing:
	 * the default, metrics.sock beside the control socket; "" (from null): none. */
	char *socket;
	int64_t tcp_port; /* a loopback (127.0.0.1) TCP port, 0: none */
};

void metrics_config_free(struct metrics_config *c);
/* The socket path orchd listens on for control socket `control`, NULL when none
 * (malloc'd; -ENOMEM). */
int metrics_config_socket(const struct metrics_config *c, const char *control, char **ret);
