/* SPDX-License-Identifier: Apache-2.0 */
/* The KVM probe of `orch doctor`: whether guest code really runs under KVM here, not just
 * whether /dev/kvm exists. Two steps:
 *  1. ioctls: open /dev/kvm, KVM_GET_API_VERSION, KVM_CREATE_VM, one vCPU running a few
 *     real-mode instructions (out 0x10 / hlt) that must exit with the right value;
 *  2. a tiny direct-kernel boot: QEMU with -accel kvm boots the guest kernel without an
 *     initrd and must print "Linux version" (the kernel proper, after the decompressor)
 *     within the timeout. A PVM-only KVM passes nothing or hangs in the decompressor.
 * Both run in child processes with a deadline, so a hanging KVM cannot hang the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum orch_kvm_verdict {
	ORCH_KVM_OK = 0,   /* step 1 and 2 passed */
	ORCH_KVM_UNTESTED, /* step 1 passed, no kernel or QEMU for step 2 */
	ORCH_KVM_ABSENT,   /* no /dev/kvm */
	ORCH_KVM_UNUSABLE, /* a step failed or timed out */
};

/* kernel / qemu may be NULL (step 2 skipped: ORCH_KVM_UNTESTED). detail gets one line. */
enum orch_kvm_verdict orch_kvm_probe(const char *kernel, const char *qemu, unsigned timeout_ms,
				     char *detail, size_t detail_len);

/* Step 2 alone, with any accelerator ("kvm", "tcg"): ORCH_KVM_OK when the kernel proper
 * printed its banner in time, else ORCH_KVM_UNUSABLE. */
enum orch_kvm_verdict orch_boot_probe(const char *kernel, const char *qemu, const char *accel,
				      unsigned timeout_ms, char *detail, size_t detail_len);
