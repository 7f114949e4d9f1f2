/* SPDX-License-Identifier: Apache-2.0 */
/* The byte relay of one debug shell session (internal to guest/shell/, see shell.h): an
 * unprivileged process per connection between the client and the PTY master, so that
 * the root supervisor never reads a shell's output or its client's input.
 *
 * It is the program itself executed again (guest/privsep.h) with argv[1] ==
 * SV_SHELL_RELAY_ARG: `PROG --shell-relay --slot N --uid U --gid G --wait-ms MS
 * [--no-seccomp]`, fd 3 the client connection (or the virtio-serial port), fd 4 the PTY
 * master, fd 5 a pipe to the supervisor. A program that serves debug shells begins its
 * main() with
 *     if (argc > 1 && strcmp(argv[1], SV_SHELL_RELAY_ARG) == 0)
 *             sv_shell_relay_main(argc, argv);
 *
 * The relay drops its privileges (uid_base + 128 + slot, sv_privsep_enter), asks the
 * client's terminal for its size, sets it on the PTY once the report came (or MS passed,
 * or the client half-closed its side), then writes one byte, 'S', on fd 5: the
 * supervisor starts the jailed shell on the PTY's other side. From then on it copies
 * bytes both ways. It exits 0 when the client went away (the supervisor then kills the
 * jail), 1 when the shell's side ended (every PTY slave closed) and its output reached
 * the client, 2 when it could not start. */
#pragma once

#include <stddef.h>

#define SV_SHELL_RELAY_ARG "--shell-relay"
#define SV_SHELL_RELAY_CLIENT_GONE 0
#define SV_SHELL_RELAY_SHELL_GONE 1

/* Runs one relay to its end; never returns. */
_Noreturn void sv_shell_relay_main(int argc, char **argv);

/* Parses a cursor-position report "ESC [ ROW ; COL R" at the start of buf.
 * Returns its length (> 0) with rows/cols set, 0 when more bytes are needed, -EINVAL
 * when buf does not start with one. */
int sv_shell_parse_cpr(const char *buf, size_t len, unsigned *ret_rows, unsigned *ret_cols);

/* The query sent on connect: save cursor, move to 999;999, report position, restore. */
#define SV_SHELL_SIZE_QUERY "\0337\033[999;999H\033[6n\0338"
