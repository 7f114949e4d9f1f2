/* SPDX-License-Identifier: Apache-2.0 */
/* Host capability choices for a VM: the host<->guest channel and the accelerator.
 *
 * Transport: AF_VSOCK when /dev/vhost-vsock can be opened (KVM hosts), else virtio-serial
 * ports; the config may force either. Accelerator: KVM only when a real tiny boot under
 * KVM reaches the guest's init within a timeout (on some hosts /dev/kvm exists but a
 * stock kernel hangs in its decompressor, e.g. PVM-only KVM); else TCG. The probe's
 * result is cached in a file keyed by what it depends on. */
#pragma once

#include <stdbool.h>

#include "domain-xml.h"
#include "error.h"

#define LV_VHOST_VSOCK_PATH "/dev/vhost-vsock"
#define LV_KVM_PATH "/dev/kvm"

/* forced: 0 (auto), LV_TRANSPORT_VSOCK or LV_TRANSPORT_VIRTIO_SERIAL. why gets a short
 * human reason for the log ("forced by config", "cannot open /dev/vhost-vsock: ..."). */
int lv_transport_choose(int forced, const char *vhost_vsock_path, enum lv_transport *ret, char *why,
			size_t why_len);

struct lv_accel_probe {
	const char *kvm_path;	/* NULL: LV_KVM_PATH */
	const char *qemu;	/* NULL: qemu-system-x86_64 from PATH */
	const char *kernel;	/* the guest kernel */
	const char *initrd;	/* an initramfs whose /init prints LV_PROBE_MARKER and powers off
				   (the image's baseline-initrd.img) */
	unsigned timeout_ms;	/* 0: 15000 */
	const char *cache_path; /* NULL: no cache */
};

#define LV_PROBE_MARKER "orch-baseline: init reached"

/* forced: 0 (auto), LV_ACCEL_KVM or LV_ACCEL_TCG (then no probe). Returns 0 with the
 * choice and a reason; -errno only for errors that make both impossible. ret_cached says
 * whether the answer came from the cache. */
int lv_accel_choose(int forced, const struct lv_accel_probe *p, enum lv_accel *ret,
		    bool *ret_cached, char *why, size_t why_len, struct orch_error *err);
