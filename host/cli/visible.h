/* SPDX-License-Identifier: Apache-2.0 */
/* Text that came from a guest (task output, a task's exit reason, a VM's console) shown
 * on an operator's terminal with its control bytes made visible, as `cat -v` does: C0
 * controls as ^X, DEL as ^?, the C1 controls U+0080..U+009F as M-^X. A guest cannot move
 * the cursor, retitle the window, rewrite what is shown or answer the terminal's queries
 * in the operator's name. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum {
	CLI_VISIBLE_LINES = 1u << 0, /* keep \n, \t and \r\n (multi-line output) */
	CLI_VISIBLE_SGR = 1u << 1,   /* keep colour sequences ESC [ digits ; m */
};

/* Writes the visible form of buf[0..len) to out, which has room for 4 * len bytes;
 * returns its length. */
size_t cli_visible(const void *buf, size_t len, unsigned flags, char *out);
/* The same, written to fd. */
void cli_write_visible(int fd, const void *buf, size_t len, unsigned flags);
/* A one-line string's visible form (newlines and tabs too), malloc'd; NULL: no memory. */
char *cli_visible_str(const char *s);
