/* SPDX-License-Identifier: Apache-2.0 */
/* The "store" and "metrics" sections of orchd's configuration (config-store.c,
 * config-metrics.c), parsed strictly into the store's and the metrics' own structs. */
#pragma once

#include <jansson.h>

#include "error.h"
#include "metrics-config.h"
#include "store-config.h"

/* v may be NULL (absent: SQLite). *ret is allocated. */
int store_config_parse(json_t *v, struct store_config **ret, struct orch_error *err);
/* v may be NULL (absent: the defaults). *ret is allocated. */
int metrics_config_parse(json_t *v, struct metrics_config **ret, struct orch_error *err);
