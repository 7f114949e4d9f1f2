/* SPDX-License-Identifier: Apache-2.0 */
/* orchd as a node of a cluster sharing a PostgreSQL store (orchd-fleet.c,
 * docs/FLEET.md). Everything here is a no-op with the embedded SQLite store. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

struct orchd;
struct orchd_config;

/* This orchd's node name: store.postgresql.node, else the host's name (-EINVAL when that
 * is no valid node name). */
int orchd_fleet_node_name(const struct orchd_config *cfg, char *buf, size_t len);
int orchd_fleet_new(struct orchd *d, struct orch_error *err);
void orchd_fleet_free(struct orchd *d);
/* A slot's task could not be marked lost because the store is away: done when it is back
 * (meanwhile the task stays this node's in the store, under its live lease). */
void orchd_fleet_defer_lost(struct orchd *d, int64_t task, int64_t attempt, const char *reason);
