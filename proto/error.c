/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

int orch_err(struct orch_error *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int orch_errno(struct orch_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!err)
		return code;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	n = strlen(err->msg);
	if (n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
			 strerror(code < 0 ? -code : code));
	return code;
}

int orch_err_prefix(struct orch_error *err, const char *fmt, ...)
{
	char prefix[ORCH_ERROR_MSG_MAX];
	char old[ORCH_ERROR_MSG_MAX];
	va_list ap;

	if (!err)
		return 0;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	old[sizeof(old) - 1] = '\0';
	size_t pl = strnlen(prefix, sizeof(err->msg) - 1);
	memcpy(err->msg, prefix, pl);
	size_t rest = sizeof(err->msg) - 1 - pl;
	if (rest >= 2) {
		err->msg[pl++] = ':';
		err->msg[pl++] = ' ';
		rest -= 2;
		size_t ol = strnlen(old, rest);
		memcpy(err->msg + pl, old, ol);
		pl += ol;
	}
	err->msg[pl] = '\0';
	return err->code;
}

void orch_err_clear(struct orch_error *err)
{
	if (!err)
		return;
	err->code = 0;
	err->msg[0] = '\0';
}
