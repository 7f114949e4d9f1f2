/* SPDX-License-Identifier: Apache-2.0 */
/* The domain XML inside a libvirt QEMU save image (virDomainSave's file): read it, and
 * replace it, which virDomainSaveImageDefineXML does too but refuses for another name or
 * UUID. orch restores one snapshot as many VMs at once (snapshot.h), each with its own
 * name and UUID, so it writes each VM's XML into the image right before restoring it;
 * libvirt then runs the restored QEMU under that identity.
 *
 * The format is libvirt's (src/qemu/qemu_saveimage.h): a 92-byte header ("LibvirtQemudSave",
 * version 2, the length of the data that follows, was_running, compressed, the cookie's
 * offset in the data, reserved words), the data (the domain XML, NUL-terminated, the
 * migration cookie, NUL-terminated, zero padding: libvirt leaves room for a longer XML),
 * then QEMU's migration stream. Anything else (another magic or version, a compressed or
 * partial image, the other byte order, lengths that do not fit) is refused with a message
 * that says to take the snapshot again. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LV_SAVE_MAGIC "LibvirtQemudSave"
#define LV_SAVE_HEADER_LEN 92
#define LV_SAVE_VERSION 2
#define LV_SAVE_DATA_MAX (16u * 1024 * 1024)

struct lv_save_header {
	uint32_t version;
	uint32_t data_len;
	uint32_t was_running;
	uint32_t compressed;
	uint32_t cookie_off;
};

/* Checks a header (the first LV_SAVE_HEADER_LEN bytes). */
int lv_save_header_parse(const unsigned char *buf, size_t len, struct lv_save_header *ret,
			 struct orch_error *err);

/* Replaces the XML in data (data_len bytes, as read after the header) with xml; the cookie
 * moves up behind it. *ret_cookie_off is the header's new cookie offset. */
int lv_save_data_replace_xml(unsigned char *data, const struct lv_save_header *h, const char *xml,
			     uint32_t *ret_cookie_off, struct orch_error *err);

/* The XML of the image at path (malloc'd). */
int lv_save_image_xml(const char *path, char **ret, struct orch_error *err);
/* Writes xml into the image at path (in place; the migration stream is untouched). */
int lv_save_image_set_xml(const char *path, const char *xml, struct orch_error *err);
