/* SPDX-License-Identifier: Apache-2.0 */
/* The "store" object of orchd's configuration (docs/CONFIG.md, docs/FLEET.md): the
 * embedded SQLite database in state_dir (the default), or a PostgreSQL database that
 * several orchd nodes share. Parsed by host/config/config-store.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

enum store_kind {
	STORE_SQLITE = 0,
	STORE_POSTGRESQL,
};

#define STORE_NODE_MAX 63

struct store_config {
	enum store_kind kind;
	/* postgresql */
	char *conninfo;	     /* libpq connection string, without a password */
	char *password_file; /* NULL: libpq's own ways (~/.pgpass, peer authentication) */
	char *node;	     /* this orchd's name in the cluster; NULL: the host's name */
	int64_t statement_timeout_ms;
	int64_t heartbeat_ms; /* the node's lease is renewed this often */
	int64_t node_lease_ms;
	int64_t poll_ms; /* fallback poll for notifications lost */
};

/* SQLite, and the PostgreSQL keys' defaults. */
void store_config_defaults(struct store_config *c);
void store_config_free(struct store_config *c);
/* [A-Za-z0-9._-]{1,63}, not starting with '.' or '-'. */
bool store_node_name_valid(const char *s);
