/* SPDX-License-Identifier: Apache-2.0 */
/* Guest text on an operator's terminal (visible.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "visible.h"

/* Length of a colour sequence ESC [ <digits ; :> m at p (0: not one). */
static size_t sgr_len(const unsigned char *p, size_t len)
{
	size_t i = 2;

	if (len < 3 || p[0] != 0x1b || p[1] != '[')
		return 0;
	while (i < len && i < 64 && ((p[i] >= '0' && p[i] <= '9') || p[i] == ';' || p[i] == ':'))
		i++;
	return i < len && p[i] == 'm' ? i + 1 : 0;
}

size_t cli_visible(const void *buf, size_t len, unsigned flags, char *out)
{
	const unsigned char *p = buf;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = p[i];
		size_t n;

		if ((flags & CLI_VISIBLE_SGR) && (n = sgr_len(p + i, len - i)) > 0) {
			memcpy(out + o, p + i, n);
			o += n;
			i += n - 1;
		} else if (ch == '\n' && (flags & CLI_VISIBLE_LINES)) {
			out[o++] = '\n';
		} else if (ch == '\t' && (flags & CLI_VISIBLE_LINES)) {
			out[o++] = '\t';
		} else if (ch == '\r' && (flags & CLI_VISIBLE_LINES) && i + 1 < len &&
			   p[i + 1] == '\n') {
			out[o++] = '\r'; /* a line end, not a way to write over a line */
		} else if (ch < 0x20 || ch == 0x7f) {
			out[o++] = '^';
			out[o++] = ch == 0x7f ? '?' : (char)(ch + '@');
		} else if (ch == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
			/* U+0080..U+009F: the C1 controls (CSI among them) some terminals obey */
			out[o++] = 'M';
			out[o++] = '-';
			out[o++] = '^';
			out[o++] = (char)(p[i + 1] - 0x80 + '@');
			i++;
		} else {
			out[o++] = (char)ch;
		}
	}
	return o;
}

void cli_write_visible(int fd, const void *buf, size_t len, unsigned flags)
{
	char *out = malloc(len * 4 + 1);
	const char *p = out;
	size_t n;

	if (!out)
		return;
	n = cli_visible(buf, len, flags, out);
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
	free(out);
}

char *cli_visible_str(const char *s)
{
	size_t len = s ? strlen(s) : 0;
	char *out = malloc(len * 4 + 1);

	if (!out)
		return NULL;
	out[cli_visible(s ? s : "", len, 0, out)] = '\0';
	return out;
}
