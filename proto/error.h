/* SPDX-License-Identifier: Apache-2.0 */
/* Error reporting: functions return >= 0 on success and -errno on failure; the human
 * context goes into a caller-provided struct orch_error (fixed size, no allocation). */
#pragma once

#include <stddef.h>

#define ORCH_ERROR_MSG_MAX 512

struct orch_error {
	int code;		      /* -errno, or a JSON-RPC error code for protocol errors */
	char msg[ORCH_ERROR_MSG_MAX]; /* "" when unset */
};

/* Fills *err (when non-NULL) with code and a formatted message; returns code. */
int orch_err(struct orch_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like orch_err, with ": <strerror(-code)>" appended. */
int orch_errno(struct orch_error *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes an existing message: "<prefix>: <old message>". Returns err->code. */
int orch_err_prefix(struct orch_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void orch_err_clear(struct orch_error *err);
