/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one line per event on stderr,
 *   ts=2026-11-23T11:00:00.123Z level=info comp=sched msg="task leased" task=t-12 vm=dev
 * Libraries do not log; daemons and the CLI do, once, at the top-level handler. */
#pragma once

enum orch_log_level {
	ORCH_LOG_ERROR = 0,
	ORCH_LOG_WARN,
	ORCH_LOG_INFO,
	ORCH_LOG_DEBUG,
};

/* The only mutable global besides parsed arguments. Default: ORCH_LOG_WARN (quiet). */
extern enum orch_log_level orch_log_level;

/* Parses "error|warn|info|debug"; returns 0 or -EINVAL. */
int orch_log_level_parse(const char *s, enum orch_log_level *ret);

/* msg is a plain message; the varargs are key/value string pairs ending in NULL:
 *   orch_log(ORCH_LOG_INFO, "sched", "task leased", "task", id, "vm", vm, NULL);
 * Values are quoted and escaped when they contain spaces, quotes or control bytes. */
void orch_log(enum orch_log_level level, const char *comp, const char *msg, ...)
	__attribute__((sentinel));

/* printf-style message, no extra keys. */
void orch_logf(enum orch_log_level level, const char *comp, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
