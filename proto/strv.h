/* SPDX-License-Identifier: Apache-2.0 */
/* NULL-terminated string vectors (argv, env, path lists), the one helper set for all of
 * orch. */
#pragma once

#include <stddef.h>

#include "cleanup.h"

/* Frees every string and the vector; NULL is a no-op. */
void orch_strv_free(char **v);
/* Number of strings before the NULL (0 for NULL). */
size_t orch_strv_len(char *const *v);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, orch_strv_free)
