/* SPDX-License-Identifier: Apache-2.0 */
/* A snapshot's save image without the zero pages of the guest's RAM (docs/VM.md,
 * "Snapshots").
 *
 * QEMU's migration stream (the save image after libvirt's header, save-image.h) carries
 * every page of the guest: a page that is all zero as a record of its own. QEMU 7.2 loads
 * such a record by reading the page it would write (to skip the write when it is zero
 * already), and a read of a hole of the restored guest's memfd allocates the page: a
 * restore read in all of a 512 MiB guest (~0.4 s on this host) and held it until free page
 * reporting gave it back. A restored guest's memfd is new, hence zero: a zero record for
 * its RAM changes nothing but that. lv_save_stream_drop_zero rewrites the stream without
 * the zero records of the block "pc.ram" (the guest's RAM) above its first MiB; every other
 * record, block and section is kept as it was (zero records of ROM and firmware blocks
 * too, which QEMU fills before it loads). Records are re-encoded only where needed: a
 * record that followed a dropped one names its block again (QEMU's "continue" flag says
 * "the block of the last record").
 *
 * The stream must be what QEMU 7.2 writes for a paused save: "QEVM" version 3, an optional
 * configuration section without subsections, then the iterable section "ram" alone
 * (start, parts, end; records of the kinds mem-size, zero, page and end-of-section; the
 * section footers), then the rest, copied as it is. Anything else (another version, a
 * capability that changes the records, another iterable section) is -EPROTO and the
 * image is left as it is.
 *
 * "A restored guest's memfd is zero" holds only where QEMU writes nothing into the guest's
 * RAM before it loads the stream. At the reset before an incoming load QEMU copies its ROM
 * blobs into guest memory: a bzImage kernel (Linux boot protocol) is handed over by fw_cfg
 * and an option ROM below 1 MiB, but an ELF kernel booted by PVH, or a multiboot one, is
 * such a blob above 1 MiB, and a page of it the guest had zeroed would come back with the
 * kernel's bytes if its zero record were dropped. So the rewrite is for domains booted
 * from a bzImage only (lv_kernel_is_bzimage). */
#pragma once

#include <stdbool.h>

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The guest's RAM: pc.ram, or with memory hot-plug (the boot memory is NUMA node 0's:
 * domain-xml.h) ram-node0; a virtio-mem device's memory is a block of its own, kept. */
#define LV_STREAM_RAM_BLOCK "pc.ram"
#define LV_STREAM_RAM_BLOCK_NUMA "ram-node0"
#define LV_STREAM_KEEP_BELOW (1024 * 1024) /* zero records of the first MiB are kept */

struct lv_stream_stats {
	uint64_t pages, zero, dropped; /* records: pages with data, zero pages, zero dropped */
};

/* Writes s (n bytes: QEMU's stream) without the RAM block's zero records to out_fd. -EPROTO when
 * the stream is not as described (nothing useful was written then). */
int lv_save_stream_drop_zero(const unsigned char *s, size_t n, int out_fd,
			     struct lv_stream_stats *st, struct orch_error *err);

/* Whether the file at path is a kernel of the Linux boot protocol (bzImage: "HdrS" at
 * 0x202, protocol 2.00 or later), which QEMU loads through fw_cfg rather than into the
 * guest's RAM. False for anything else and for a file that cannot be read. */
bool lv_kernel_is_bzimage(const char *path);

/* The save image at path rewritten so (through path.zero, renamed over it). 0 and
 * st->dropped > 0 when it was; 0 and the image as it was when its stream is not one to
 * rewrite (-EPROTO above); < 0 on an I/O error (the image as it was). */
int lv_save_image_drop_zero(const char *path, struct lv_stream_stats *st, struct orch_error *err);
