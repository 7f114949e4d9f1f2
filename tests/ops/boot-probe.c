/* SPDX-License-Identifier: Apache-2.0 */
/* orch-boot-probe KERNEL ACCEL: runs orch doctor's test boot with any accelerator; exit 0
 * when the kernel proper ran. Lets the doctor test show that the probe recognises a
 * working boot (with TCG) on a host whose KVM cannot boot it. */
#include <stdio.h>

#include "doctor-kvm.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: orch-boot-probe KERNEL ACCEL\n");
		return 2;
	}
	char d[512];
	enum orch_kvm_verdict v = orch_boot_probe(argv[1], "/usr/bin/qemu-system-x86_64", argv[2],
						  30000, d, sizeof(d));
	printf("%s\n", d);
	return v == ORCH_KVM_OK ? 0 : 1;
}
