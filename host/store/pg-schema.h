/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL store's runner of the store's one migration list (store_migrations,
 * store-schema.c: each entry's postgresql statements), in store-pg.c. */
#pragma once

#include <stddef.h>

#include "error.h"

struct pg_conn;

/* Brings the database to the newest version (under an advisory lock); -EPROTONOSUPPORT
 * when it is newer than this orchd knows. *ret_version: the version found before. */
int pg_migrate(struct pg_conn *pc, int *ret_version, struct orch_error *err);
/* The version only (for --check-config); 0 when the database holds no orch schema. */
int pg_schema_version(struct pg_conn *pc, struct orch_error *err);
