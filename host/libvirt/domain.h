/* SPDX-License-Identifier: Apache-2.0 */
/* Connecting to libvirt and starting/stopping an orch microVM as a transient domain. */
#pragma once

#include <stdbool.h>
#include <libvirt/libvirt.h>

#include "cleanup.h"
#include "domain-xml.h"
#include "error.h"

#define LV_URI_DEFAULT "qemu:///system"

DEFINE_TRIVIAL_CLEANUP_FUNC(virConnectPtr, virConnectClose)
DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree)

/* Opens uri (NULL: LV_URI_DEFAULT). Register an event implementation first when events
 * are wanted. Errors name the fix (scripts/libvirtd-up). */
int lv_connect(const char *uri, virConnectPtr *ret, struct orch_error *err);

/* Creates and starts a transient domain from c. A running domain of the same name is an
 * error (-EEXIST). autodestroy: libvirt destroys it when this connection closes. */
int lv_domain_start(virConnectPtr conn, const struct lv_domain_config *c, bool autodestroy,
		    virDomainPtr *ret, struct orch_error *err);

/* lv_domain_start's half after the XML: xml started as the transient domain name. */
int lv_domain_create_xml(virConnectPtr conn, const char *name, const char *xml, bool autodestroy,
			 virDomainPtr *ret, struct orch_error *err);

/* Whether the guest holds its end of the virtio-serial port name open, as libvirt shows it
 * (QEMU's VSERPORT_CHANGE events: the live XML's <target type='virtio' name=... state=...>):
 * 1 it does, 0 it does not, -1 unknown (no such port, no state, or libvirt's error).
 * lv_channel_state_xml reads it from a domain's live XML. */
int lv_domain_channel_state(virDomainPtr dom, const char *name);
int lv_channel_state_xml(const char *xml, const char *name);

/* Memory hot-plug (lv_domain_config.boot_memory_mib): asks the guest's virtio-mem device
 * to hold mib MiB (0..memory_mib - boot_memory_mib, in LV_VIRTIO_MEM_BLOCK_MIB steps);
 * the guest plugs (or unplugs) it in the background. -ENODEV when the domain has no such
 * device. */
int lv_domain_memory_request(virDomainPtr dom, uint64_t mib, struct orch_error *err);
/* What the device holds now and was asked to hold, KiB; -ENODEV without one. */
int lv_domain_memory_state(virDomainPtr dom, uint64_t *ret_current_kib,
			   uint64_t *ret_requested_kib);
/* Both from a domain's live XML: the virtio-mem device's sizes, and (ret_dev non-NULL)
 * the device's element with its requested size set to requested_kib, for
 * virDomainUpdateDeviceFlags. */
int lv_virtio_mem_xml(const char *xml, uint64_t requested_kib, char **ret_dev,
		      uint64_t *ret_current_kib, uint64_t *ret_requested_kib);

/* force: destroy at once; else ask the guest (ACPI power button). A domain that is
 * already gone is success. */
int lv_domain_stop(virDomainPtr dom, bool force, struct orch_error *err);

/* The last libvirt error message, or "unknown libvirt error". */
const char *lv_last_error(void);
