/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots of orch VMs (docs/VM.md, "Snapshots"): a VM started from one is ready far
 * sooner than a cold boot.
 *
 * A template is a guest booted with orch.snapshot=1 and without its virtio-fs shares
 * (QEMU 7.2 refuses to save a domain with a vhost-user-fs device), whose supervisor was
 * frozen right after its hello (vm.freeze) and whose host side of the channels was closed
 * before libvirt saved it (lv_snapshot_save). A VM is restored from it under an identity of
 * its own: lv_clone_xml rewrites the template's XML (name, UUID, the paths of its channel
 * sockets and console log, its vsock CID), lv_snapshot_restore writes that XML into the
 * save image (save-image.h) and restores it paused, lv_domain_attach_fs hot-plugs the
 * VM's shares, and the caller resumes it. The supervisor, frozen, redials at once and is
 * thawed (vm.thaw: fresh entropy, the clock, its name, the shares mounted). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <libvirt/libvirt.h>

#include "domain-xml.h"
#include "error.h"

#define LV_UUID_LEN 36

struct lv_clone {
	const char *name;     /* the new domain's name */
	const char *uuid;     /* its UUID (LV_UUID_LEN characters) */
	const char *from_dir; /* the template's state directory, as its XML names it */
	const char *to_dir;   /* the new VM's (channels, console log below it) */
	uint32_t cid;	      /* vsock: the new CID; 0: the template has no vsock device */
};

/* A random (version 4) UUID, NUL-terminated. */
int lv_uuid_new(char ret[LV_UUID_LEN + 1]);

/* The template's XML (as saved) made the clone's. Pure; every replaced element must be
 * there exactly as libvirt writes it. */
int lv_clone_xml(const char *xml, const struct lv_clone *c, char **ret, struct orch_error *err);

/* How long, and how often, a template's save waits for its guest to see its host go (its
 * end of the control port closed: lv_domain_channel_state) before it saves. */
#define LV_SNAPSHOT_HOST_GONE_MS 2000
#define LV_SNAPSHOT_HOST_GONE_POLL_MS 10

/* Saves the running template domain to path (through path.part, renamed when complete),
 * without the zero pages of its RAM when drop_zero (only for a domain booted from a bzImage:
 * save-stream.h); the domain stops. *ret_xml (may be
 * NULL): the XML the image holds, for lv_clone_xml; *ret_dropped (may be NULL): the zero
 * pages left out (0: the stream was kept as it was). */
int lv_snapshot_save(virDomainPtr dom, const char *path, bool drop_zero, char **ret_xml,
		     uint64_t *ret_dropped, struct orch_error *err);

/* Restores the image at path as the domain described by clone_xml (from lv_clone_xml),
 * paused. */
int lv_snapshot_restore(virConnectPtr conn, const char *path, const char *clone_xml,
			const char *name, virDomainPtr *ret, struct orch_error *err);

/* Hot-plugs a virtio-fs share into a running or paused domain. */
int lv_domain_attach_fs(virDomainPtr dom, const struct lv_fs_config *fs, struct orch_error *err);
