/* SPDX-License-Identifier: Apache-2.0 */
/* Task output files: <state_dir>/spool/<task>.out, indexed in the store. */
#pragma once

#include <stdint.h>

#include "error.h"

struct orchd;

/* Opens (creates) a task's spool for appending; its size in *ret_size. Returns the fd. */
int spool_open(struct orchd *d, int64_t task, int64_t *ret_size, struct orch_error *err);
/* Removes a task's spool file (pruning); ENOENT is not an error. */
void spool_remove(struct orchd *d, int64_t task);
int spool_read(struct orchd *d, int64_t task, int64_t offset, int64_t len, void **ret,
	       struct orch_error *err);
