/* SPDX-License-Identifier: Apache-2.0 */
/* The guest's serial console log: its tail for error messages (boot timeouts, crashes).
 * The log is written by the guest and therefore hostile: bounded, and every byte that is
 * not printable ASCII or a newline comes out as '?'. */
#pragma once

#include <stddef.h>

#include "error.h"

#define LV_CONSOLE_TAIL_DEFAULT 2048

/* The last max_bytes (at most) of path, starting at a line boundary when one is found,
 * sanitized. An empty or missing file gives "" (not an error). */
int lv_console_tail(const char *path, size_t max_bytes, char **ret, struct orch_error *err);

/* Fills err with "<what>; console (<path>) ends with:\n<tail>" and returns code. */
int lv_console_error(struct orch_error *err, int code, const char *path, const char *what);
