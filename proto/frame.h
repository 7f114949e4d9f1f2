/* SPDX-License-Identifier: Apache-2.0 */
/* Newline-delimited framing over a non-blocking byte stream.
 *
 * Reader: bytes go in (from an fd or a buffer), complete lines come out through a callback
 * (without the '\n'; an optional trailing '\r' is kept as data). A line longer than
 * max_line is reported once through on_error(-EMSGSIZE), discarded up to the next newline,
 * and reading resumes after it: nothing that follows is lost. Empty lines are skipped.
 *
 * Writer: a bounded queue of outgoing bytes; orch_frame_queue() refuses (-ENOBUFS) once
 * max_queued bytes are pending, so a slow peer produces backpressure instead of unbounded
 * memory. orch_frame_flush() writes as much as the fd takes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ORCH_FRAME_DEFAULT_MAX_LINE (1024 * 1024)
#define ORCH_FRAME_DEFAULT_MAX_QUEUED (8 * 1024 * 1024)

struct orch_frame;

/* A complete line. Returning < 0 stops the current feed/read and is returned from it. */
typedef int (*orch_frame_line_cb)(void *data, const char *line, size_t len);
/* A framing error (-EMSGSIZE for an over-long line); informational, the stream goes on. */
typedef void (*orch_frame_error_cb)(void *data, int code, const char *msg);

/* max_line / max_queued of 0 take the defaults above. */
int orch_frame_new(size_t max_line, size_t max_queued, orch_frame_line_cb on_line,
		   orch_frame_error_cb on_error, void *data, struct orch_frame **ret);
void orch_frame_free(struct orch_frame *f);

/* Feeds bytes (for tests, fuzzers and transports that read themselves). */
int orch_frame_feed(struct orch_frame *f, const void *buf, size_t len);

/* Reads from a non-blocking fd until EAGAIN, or until a budget of 16 reads (1 MiB) so
 * that one flooding peer cannot starve the loop: with level-triggered epoll (orch_io) the
 * rest is read on the next iteration. Lines are delivered within a budget too (256 lines
 * or 256 KiB of them per call): when it is used up, the complete lines left stay
 * buffered, orch_frame_backlog() is true and the caller calls again soon (the fd may
 * have nothing new to say). Returns 0 when the fd would block or a budget is used,
 * -EPIPE at EOF (a partial last line is dropped and reported through on_error as -EPIPE
 * "connection closed mid-line"), another -errno on error, or a callback's < 0. */
int orch_frame_read(struct orch_frame *f, int fd);
/* The last orch_frame_read stopped at its line budget with bytes still buffered. */
bool orch_frame_backlog(const struct orch_frame *f);

/* Queues one message (a '\n' is appended; the message must not contain one: -EINVAL).
 * -ENOBUFS when the queue would exceed max_queued; -EMSGSIZE when len > max_line. */
int orch_frame_queue(struct orch_frame *f, const char *msg, size_t len);

/* Writes queued bytes to fd until empty or EAGAIN. Returns the number of bytes still
 * queued (0: all written; > 0: wait for EPOLLOUT), or -errno (-EPIPE when the peer left). */
ssize_t orch_frame_flush(struct orch_frame *f, int fd);

size_t orch_frame_queued(const struct orch_frame *f);
size_t orch_frame_max_line(const struct orch_frame *f);
