/* SPDX-License-Identifier: Apache-2.0 */
/* Reading and writing egress lane frames (egress.h) on a non-blocking stream, for both
 * ends of the lane. The reader keeps at most one frame (ORCH_EGRESS_HDR_LEN +
 * ORCH_EGRESS_MAX_PAYLOAD) plus one read's bytes; a bad header stops it (the lane is
 * then closed by its owner: nothing after a malformed frame can be trusted to be
 * aligned). The writer queues whole frames in a chain of blocks and writes them with
 * writev; its size is the caller's to bound (flow control keeps it to the open
 * connections' windows). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "egress.h"
#include "error.h"

struct orch_egress_io;

/* One complete frame; payload holds h->len bytes (valid during the call only). A
 * negative return stops the reading (returned by orch_egress_io_read). The callback must
 * not free the io. */
typedef int (*orch_egress_frame_cb)(void *data, const struct orch_egress_hdr *h,
				    const uint8_t *payload);

int orch_egress_io_new(orch_egress_frame_cb cb, void *data, struct orch_egress_io **ret);
void orch_egress_io_free(struct orch_egress_io *io);

/* Splicing DATA payloads straight to the sockets they are for, for a reader whose
 * payloads go on unchanged (the supervisor's end): for each piece of a DATA frame's
 * payload, sink names the socket it goes to, or -1 to have it through the frame
 * callback as usual; what the socket takes is reported to sunk (h->len: those bytes),
 * the rest comes through the frame callback as a DATA frame of the rest. A DATA frame
 * may so arrive in several pieces, each a DATA header of its own length. With a sink
 * the reader reads frame by frame (a header, then exactly its payload). */
typedef int (*orch_egress_sink_cb)(void *data, const struct orch_egress_hdr *h);
typedef void (*orch_egress_sunk_cb)(void *data, const struct orch_egress_hdr *h);
void orch_egress_io_set_sink(struct orch_egress_io *io, orch_egress_sink_cb sink,
			     orch_egress_sunk_cb sunk);

/* Reads at most budget bytes from fd (the rest waits for the next call: one lane cannot
 * hold the loop) and hands on every complete frame. 0: read on later; -EPIPE: EOF;
 * -EPROTO: a malformed frame (err says why); or the callback's code. */
int orch_egress_io_read(struct orch_egress_io *io, int fd, size_t budget, struct orch_error *err);

/* Queues a frame (the payload copied). -ENOMEM. */
int orch_egress_io_queue(struct orch_egress_io *io, uint8_t type, uint32_t conn,
			 const void *payload, size_t len);
/* Zero-copy queueing: a payload buffer of max bytes to fill (e.g. with recv), then
 * commit the frame with the bytes used (0: nothing is queued). One at a time. */
uint8_t *orch_egress_io_reserve(struct orch_egress_io *io, size_t max);
int orch_egress_io_commit(struct orch_egress_io *io, uint8_t type, uint32_t conn, size_t len);
/* Zero-copy queueing from a socket: up to max bytes (at most ORCH_EGRESS_MAX_PAYLOAD) are
 * spliced from fd into the io's pipe and queued as one frame, whose payload later goes
 * from the pipe to the lane by splice too: the bytes never enter this process. One
 * frame at a time: while an earlier one's payload is still in the pipe, -EBUSY, and the
 * caller copies instead (reserve/commit). The bytes queued (> 0), 0 at the end of fd's
 * stream, -EAGAIN, -EOPNOTSUPP when the kernel cannot splice from fd (the caller copies
 * from then on), or -errno. */
ssize_t orch_egress_io_splice(struct orch_egress_io *io, int fd, size_t max, uint8_t type,
			      uint32_t conn);
/* Queues a CREDIT frame of n bytes. */
int orch_egress_io_credit(struct orch_egress_io *io, uint32_t conn, uint32_t n);
/* Bytes queued and not yet written. */
size_t orch_egress_io_queued(const struct orch_egress_io *io);
/* Of those, bytes waiting in the splice pipe (orch_egress_io_splice is -EBUSY meanwhile). */
size_t orch_egress_io_piped(const struct orch_egress_io *io);
/* Writes what it can: 0 when the queue is empty, 1 when bytes remain (wait for
 * EPOLLOUT), -errno on a write error. */
int orch_egress_io_flush(struct orch_egress_io *io, int fd);
