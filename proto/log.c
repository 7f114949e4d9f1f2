/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

enum orch_log_level orch_log_level = ORCH_LOG_WARN;

static const char *const level_names[] = {
	[ORCH_LOG_ERROR] = "error",
	[ORCH_LOG_WARN] = "warn",
	[ORCH_LOG_INFO] = "info",
	[ORCH_LOG_DEBUG] = "debug",
};

int orch_log_level_parse(const char *s, enum orch_log_level *ret)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*ret = (enum orch_log_level)i;
			return 0;
		}
	return -EINVAL;
}

static bool needs_quote(const char *v)
{
	if (!*v)
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return true;
	return false;
}

static void put_value(FILE *f, const char *v)
{
	if (!v)
		v = "(null)";
	if (!needs_quote(v)) {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p < ' ' || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void put_prefix(FILE *f, enum orch_log_level level, const char *comp)
{
	struct timespec ts;
	struct tm tm;
	char buf[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "ts=%s.%03ldZ level=%s comp=", buf, ts.tv_nsec / 1000000, level_names[level]);
	put_value(f, comp);
}

void orch_log(enum orch_log_level level, const char *comp, const char *msg, ...)
{
	int saved = errno;
	va_list ap;
	const char *k;
	char line[4096];
	FILE *f;

	if (level > orch_log_level)
		return;
	/* Build the line in memory so that it reaches stderr in one write. */
	f = fmemopen(line, sizeof(line) - 1, "w");
	if (!f)
		return;
	setvbuf(f, NULL, _IONBF, 0);
	put_prefix(f, level, comp);
	fputs(" msg=", f);
	put_value(f, msg);
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);
		fputc(' ', f);
		fputs(k, f);
		fputc('=', f);
		put_value(f, v);
	}
	va_end(ap);
	long n = ftell(f);
	fclose(f);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n] = '\n';
	fwrite(line, 1, (size_t)n + 1, stderr);
	errno = saved;
}

void orch_logf(enum orch_log_level level, const char *comp, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (level > orch_log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	orch_log(level, comp, msg, NULL);
}
