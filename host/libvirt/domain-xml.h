/* SPDX-License-Identifier: Apache-2.0 */
/* libvirt domain XML for an orch microVM: a pure function from a config struct to text.
 * Direct kernel boot, the CPU model (host-passthrough under KVM, QEMU's "maximum"
 * under TCG: agents' native binaries need AVX2 and more than qemu64 has), a read-only
 * root disk, the agents directory shared read-only, the workspace shared with virtio-fs
 * (memfd + shared memory backing), no network interface, no USB, no graphics, a
 * virtio balloon that only reports free pages (the guest's freed memory goes back to the
 * host; it is never inflated), the serial console to a log file, ACPI on,
 * on_poweroff/on_reboot/on_crash = destroy, and the host channel either as a vsock device
 * (with a CID) or as virtio-serial unix channels.
 * Every string is validated (no control bytes, absolute paths) and XML-escaped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum lv_transport {
	LV_TRANSPORT_VSOCK = 1,
	LV_TRANSPORT_VIRTIO_SERIAL,
};

enum lv_accel {
	LV_ACCEL_KVM = 1,
	LV_ACCEL_TCG,
};

#define LV_VIRTIOFSD_DEFAULT "/usr/lib/qemu/virtiofsd"
#define LV_WORKSPACE_TAG_DEFAULT "workspace"
#define LV_AGENTS_TAG "agents"
#define LV_MACHINE_DEFAULT "pc"
#define LV_MAX_PORTS 80
#define LV_MAX_VCPUS 256
#define LV_MAX_MEMORY_MIB (1024 * 1024)
#define LV_MIN_BOOT_MEMORY_MIB 64
/* virtio-mem's block: what it plugs and unplugs at a time. */
#define LV_VIRTIO_MEM_BLOCK_MIB 2
/* x86-64 Linux's memory block (memory hot-plug's unit) below 64 GiB of RAM. */
#define LV_VIRTIO_MEM_ALIGN_MIB 128
#define LV_UNIX_PATH_MAX 107

/* Names of the virtio-serial ports (the guest sees /dev/virtio-ports/<name>). */
#define LV_PORT_CONTROL "org.orch.control"
#define LV_PORT_LLM "org.orch.llm"
#define LV_PORT_EGRESS "org.orch.egress"
#define LV_PORT_SHELL_PREFIX "org.orch.shell." /* + agent slot */

/* One virtio-serial channel: libvirt binds a unix socket at path (host side). */
struct lv_port {
	const char *name; /* [a-z0-9._-]{1,64} */
	const char *path; /* absolute, < 108 bytes */
};

struct lv_domain_config {
	const char *name; /* domain name: [A-Za-z0-9._-]{1,64} */
	const char *uuid; /* NULL: libvirt picks one */
	enum lv_accel accel;
	unsigned vcpus;	     /* 1..LV_MAX_VCPUS */
	uint64_t memory_mib; /* 16..LV_MAX_MEMORY_MIB */
	/* Memory hot-plug (docs/VM.md "Memory hot-plug"): 0, the default, boots with all of
	 * memory_mib. Else the guest boots with boot_memory_mib (LV_MIN_BOOT_MEMORY_MIB..
	 * memory_mib - LV_VIRTIO_MEM_ALIGN_MIB) and the rest is a virtio-mem device,
	 * unplugged at boot, that lv_domain_memory_request plugs (in LV_VIRTIO_MEM_BLOCK_MIB
	 * blocks). The rest must be a multiple of LV_VIRTIO_MEM_ALIGN_MIB: the guest adds
	 * memory in blocks of that size, and a device that ends within one can plug none of
	 * it. The kernel command line (lv_kernel_cmdline) then onlines what is plugged. */
	uint64_t boot_memory_mib;
	const char *machine;  /* NULL: LV_MACHINE_DEFAULT */
	const char *emulator; /* NULL: libvirt's default */

	const char *kernel;  /* required */
	const char *initrd;  /* NULL: none */
	const char *cmdline; /* NULL: none; printable ASCII */
	const char *rootfs;  /* read-only raw root image as /dev/vda; NULL: none */

	const char *workspace_dir; /* virtio-fs source; NULL: no shared folder */
	const char *workspace_tag; /* NULL: LV_WORKSPACE_TAG_DEFAULT */
	const char *virtiofsd;	   /* NULL: LV_VIRTIOFSD_DEFAULT */

	/* The agents share (host/agents.h): agents_dir shared with virtio-fs through
	 * agents_virtiofsd (orch-virtiofsd-ro, which serves it read-only), tag
	 * LV_AGENTS_TAG, mounted read-only by the guest at agents_path (orch.agents=).
	 * agents_dir NULL: no share. */
	const char *agents_dir;
	const char *agents_path;
	const char *agents_virtiofsd;

	const char *console_log; /* serial console appended to this file; NULL: none */

	enum lv_transport transport;
	uint32_t cid;		     /* VSOCK: 3..0xfffffffe */
	uint32_t vsock_port;	     /* VSOCK: the host port the guest dials (reserved, < 1024);
				      * 0: ORCH_VSOCK_CONTROL_PORT */
	const struct lv_port *ports; /* VIRTIO_SERIAL: the channels, control first */
	size_t n_ports;
	/* Per-agent debug shells in the guest: with VIRTIO_SERIAL the ports must include
	 * LV_PORT_SHELL_PREFIX<slot> for each slot; with VSOCK they listen on
	 * ORCH_VSOCK_SHELL_PORT_BASE + slot and accept only reserved peer ports. */
	bool shells;
	/* The LLM channel of its own (llm.*, so a stream never delays the control channel):
	 * with VIRTIO_SERIAL the ports must include LV_PORT_LLM; with VSOCK the guest dials
	 * vsock_llm_port (0: the control port's neighbour, vsock_port + 1). */
	bool llm;
	uint32_t vsock_llm_port;
	/* The egress lane (the agents' outbound connections): with VIRTIO_SERIAL the ports
	 * must include LV_PORT_EGRESS; with VSOCK the guest dials vsock_egress_port (0:
	 * vsock_port + 2). */
	bool egress;
	uint32_t vsock_egress_port;
	/* A snapshot template (snapshot.h): orch.snapshot=1 on the command line, so the guest
	 * loads the virtio-fs driver although the domain has no share yet (workspace_dir and
	 * agents_dir must be NULL: QEMU cannot save a vhost-user-fs device). */
	bool snapshot;
	/* No balloon device at all (the benchmarks' baseline: without free page reporting). */
	bool no_balloon;
};

/* A virtio-fs share as its own <filesystem> element, for hot-plugging into a running
 * domain (virDomainAttachDeviceFlags). */
struct lv_fs_config {
	const char *dir;       /* host directory, absolute */
	const char *tag;       /* [a-z0-9._-]{1,36} */
	const char *virtiofsd; /* the binary libvirt runs for it, absolute */
};
int lv_filesystem_xml(const struct lv_fs_config *c, char **ret, struct orch_error *err);

/* Builds the XML. Returns 0 and a malloc'd string in *ret, or -EINVAL with the offending
 * field named in err, or -ENOMEM. */
int lv_domain_xml(const struct lv_domain_config *c, char **ret, struct orch_error *err);

/* The guest kernel's orch.* arguments for this config, appended to base (may be NULL):
 * "orch.name=NAME orch.connect=ADDR [orch.llm=ADDR] [orch.egress=ADDR] [orch.slots=N]
 * [orch.workspace=TAG|none] [orch.agents=PATH] [orch.shell=serial|vsock]
 * [orch.snapshot=1]".
 * ADDR is vsock:2:PORT (vsock_port, default ORCH_VSOCK_CONTROL_PORT) or
 * serial:/dev/virtio-ports/<first port>; orch.llm's is vsock:2:<vsock_llm_port> or
 * serial:/dev/virtio-ports/org.orch.llm. slots 0: omitted. */
int lv_kernel_cmdline(const char *base, const struct lv_domain_config *c, unsigned slots,
		      char **ret, struct orch_error *err);

const char *lv_transport_name(enum lv_transport t);
const char *lv_accel_name(enum lv_accel a);
