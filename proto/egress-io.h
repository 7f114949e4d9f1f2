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
/* Queues a CREDIT frame of n bytes. */
int orch_egress_io_credit(struct orch_egress_io *io, uint32_t conn, uint32_t n);
/* Bytes queued and not yet written. */
size_t orch_egress_io_queued(const struct orch_egress_io *io);
/* Writes what it can: 0 when the queue is empty, 1 when bytes remain (wait for
 * EPOLLOUT), -errno on a write error. */
int orch_egress_io_flush(struct orch_egress_io *io, int fd);
