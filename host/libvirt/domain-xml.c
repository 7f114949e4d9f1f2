/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "domain-xml.h"
#include "strbuf.h"
#include "transport.h"

const char *lv_transport_name(enum lv_transport t)
{
	switch (t) {
	case LV_TRANSPORT_VSOCK:
		return "vsock";
	case LV_TRANSPORT_VIRTIO_SERIAL:
		return "virtio-serial";
	}
	return "unknown";
}

const char *lv_accel_name(enum lv_accel a)
{
	switch (a) {
	case LV_ACCEL_KVM:
		return "kvm";
	case LV_ACCEL_TCG:
		return "tcg";
	}
	return "unknown";
}

static bool charset_ok(const char *s, const char *extra, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (; *s; s++) {
		char ch = *s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr(extra, ch))
			continue;
		return false;
	}
	return true;
}

/* Printable ASCII only: no control bytes (XML 1.0 cannot carry most of them) and no
 * bytes libvirt or the guest would interpret. */
static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int check_path(const char *field, const char *p, size_t max, struct orch_error *err)
{
	if (!p || p[0] != '/')
		return orch_err(err, -EINVAL, "%s must be an absolute path", field);
	if (strlen(p) > max)
		return orch_err(err, -EINVAL, "%s is longer than %zu bytes", field, max);
	if (!printable(p))
		return orch_err(err, -EINVAL, "%s contains control or non-ASCII bytes", field);
	return 0;
}

static bool has_port(const struct lv_domain_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_ports; i++)
		if (c->ports[i].name && !strcmp(c->ports[i].name, name))
			return true;
	return false;
}

/* The host port the guest dials for the control channel: given, else the default. */
static uint32_t control_vsock_port(const struct lv_domain_config *c)
{
	return c->vsock_port ? c->vsock_port : ORCH_VSOCK_CONTROL_PORT;
}

/* The host port the guest dials for the LLM channel: given, else the control port's
 * neighbour. */
static uint32_t llm_vsock_port(const struct lv_domain_config *c)
{
	if (c->vsock_llm_port)
		return c->vsock_llm_port;
	return control_vsock_port(c) + 1;
}

/* The host port the guest dials for the egress lane: given, else control + 2. */
static uint32_t egress_vsock_port(const struct lv_domain_config *c)
{
	if (c->vsock_egress_port)
		return c->vsock_egress_port;
	return control_vsock_port(c) + 2;
}

static int validate(const struct lv_domain_config *c, struct orch_error *err)
{
	int r;
	static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-";

	if (!c->name || !charset_ok(c->name, upper, 64) || c->name[0] == '.' || c->name[0] == '-')
		return orch_err(err, -EINVAL, "domain name must be 1-64 of [A-Za-z0-9._-]");
	if (c->uuid && !charset_ok(c->uuid, "ABCDEF-", 36))
		return orch_err(err, -EINVAL, "uuid is not a UUID");
	if (c->accel != LV_ACCEL_KVM && c->accel != LV_ACCEL_TCG)
		return orch_err(err, -EINVAL, "accel must be kvm or tcg");
	if (c->vcpus < 1 || c->vcpus > LV_MAX_VCPUS)
		return orch_err(err, -EINVAL, "vcpus must be 1..%d", LV_MAX_VCPUS);
	if (c->memory_mib < 16 || c->memory_mib > LV_MAX_MEMORY_MIB)
		return orch_err(err, -EINVAL, "memory_mib must be 16..%d", LV_MAX_MEMORY_MIB);
	if (c->boot_memory_mib &&
	    (c->boot_memory_mib < LV_MIN_BOOT_MEMORY_MIB || c->boot_memory_mib >= c->memory_mib ||
	     (c->memory_mib - c->boot_memory_mib) % LV_VIRTIO_MEM_ALIGN_MIB))
		return orch_err(err, -EINVAL,
				"boot_memory_mib must be at least %d, less than memory_mib, and "
				"memory_mib - boot_memory_mib a multiple of %d (the guest's memory "
				"block)",
				LV_MIN_BOOT_MEMORY_MIB, LV_VIRTIO_MEM_ALIGN_MIB);
	if (c->machine && !charset_ok(c->machine, "._-", 64))
		return orch_err(err, -EINVAL, "machine type must be [a-z0-9._-]");
	if (c->emulator && (r = check_path("emulator", c->emulator, 4096, err)) < 0)
		return r;
	if ((r = check_path("kernel", c->kernel, 4096, err)) < 0)
		return r;
	if (c->initrd && (r = check_path("initrd", c->initrd, 4096, err)) < 0)
		return r;
	if (c->cmdline && (!printable(c->cmdline) || strlen(c->cmdline) > 4096))
		return orch_err(err, -EINVAL,
				"cmdline must be printable ASCII, at most 4096 bytes");
	if (c->rootfs && (r = check_path("rootfs", c->rootfs, 4096, err)) < 0)
		return r;
	if (c->workspace_dir) {
		if ((r = check_path("workspace", c->workspace_dir, 4096, err)) < 0)
			return r;
		if (c->workspace_tag && !charset_ok(c->workspace_tag, "._-", 36))
			return orch_err(err, -EINVAL, "workspace tag must be 1-36 of [a-z0-9._-]");
		if (c->virtiofsd && (r = check_path("virtiofsd", c->virtiofsd, 4096, err)) < 0)
			return r;
	}
	if (c->agents_dir) {
		if ((r = check_path("agents directory", c->agents_dir, 4096, err)) < 0 ||
		    (r = check_path("agents path", c->agents_path, 256, err)) < 0 ||
		    (r = check_path("agents virtiofsd", c->agents_virtiofsd, 4096, err)) < 0)
			return r;
		if (strchr(c->agents_path, ' '))
			return orch_err(
				err, -EINVAL,
				"agents path must not contain spaces (kernel command line)");
	}
	if (c->console_log && (r = check_path("console log", c->console_log, 4096, err)) < 0)
		return r;
	if (c->snapshot && (c->workspace_dir || c->agents_dir))
		return orch_err(err, -EINVAL,
				"a snapshot template cannot have virtio-fs shares (QEMU cannot "
				"save a vhost-user-fs device): they are attached after a restore");

	switch (c->transport) {
	case LV_TRANSPORT_VSOCK:
		if (c->cid < 3 || c->cid == 0xffffffffu)
			return orch_err(err, -EINVAL,
					"vsock CID %u is reserved (use 3..4294967294)", c->cid);
		if (c->n_ports)
			return orch_err(err, -EINVAL, "virtio-serial ports given with vsock");
		/* The guest trusts whoever listens there: only a privileged host process can. */
		if (!orch_vsock_port_reserved(control_vsock_port(c)) ||
		    (c->llm && !orch_vsock_port_reserved(llm_vsock_port(c))))
			return orch_err(err, -EINVAL,
					"the vsock ports the guest dials must be reserved (1..%u)",
					ORCH_VSOCK_LAST_RESERVED_PORT);
		if (c->llm && llm_vsock_port(c) == control_vsock_port(c))
			return orch_err(err, -EINVAL,
					"the vsock LLM port must differ from the control port");
		if (c->egress && (!orch_vsock_port_reserved(egress_vsock_port(c)) ||
				  egress_vsock_port(c) == control_vsock_port(c) ||
				  (c->llm && egress_vsock_port(c) == llm_vsock_port(c))))
			return orch_err(
				err, -EINVAL,
				"the vsock egress port must be reserved and differ from the "
				"control and LLM ports");
		break;
	case LV_TRANSPORT_VIRTIO_SERIAL:
		if (c->n_ports < 1 || c->n_ports > LV_MAX_PORTS || !c->ports)
			return orch_err(err, -EINVAL,
					"virtio-serial needs 1..%d ports (control first)",
					LV_MAX_PORTS);
		for (size_t i = 0; i < c->n_ports; i++) {
			if (!c->ports[i].name || !charset_ok(c->ports[i].name, "._-", 64))
				return orch_err(err, -EINVAL,
						"port %zu: name must be 1-64 of [a-z0-9._-]", i);
			for (size_t j = 0; j < i; j++)
				if (!strcmp(c->ports[i].name, c->ports[j].name))
					return orch_err(err, -EINVAL, "port name %s given twice",
							c->ports[i].name);
			if ((r = check_path("port path", c->ports[i].path, LV_UNIX_PATH_MAX, err)) <
			    0)
				return orch_err_prefix(err, "port %s", c->ports[i].name);
		}
		if (c->llm && !has_port(c, LV_PORT_LLM))
			return orch_err(err, -EINVAL, "an LLM channel needs the port %s",
					LV_PORT_LLM);
		if (c->egress && !has_port(c, LV_PORT_EGRESS))
			return orch_err(err, -EINVAL, "an egress lane needs the port %s",
					LV_PORT_EGRESS);
		if (c->n_ports > 0 && !strcmp(c->ports[0].name, LV_PORT_LLM))
			return orch_err(err, -EINVAL, "the first port is the control port, not %s",
					LV_PORT_LLM);
		break;
	default:
		return orch_err(err, -EINVAL, "transport must be vsock or virtio-serial");
	}
	return 0;
}

static void elem(struct lv_buf *b, const char *indent, const char *tag, const char *text)
{
	lv_buf_appendf(b, "%s<%s>", indent, tag);
	lv_buf_append_xml(b, text);
	lv_buf_appendf(b, "</%s>\n", tag);
}

static void attr(struct lv_buf *b, const char *name, const char *value)
{
	lv_buf_appendf(b, " %s='", name);
	lv_buf_append_xml(b, value);
	lv_buf_append(b, "'");
}

static void filesystem(struct lv_buf *b, const char *virtiofsd, const char *dir, const char *tag)
{
	lv_buf_append(b, "    <filesystem type='mount' accessmode='passthrough'>\n"
			 "      <driver type='virtiofs'/>\n"
			 "      <binary");
	attr(b, "path", virtiofsd);
	lv_buf_append(b, "/>\n      <source");
	attr(b, "dir", dir);
	lv_buf_append(b, "/>\n      <target");
	attr(b, "dir", tag);
	lv_buf_append(b, "/>\n    </filesystem>\n");
}

int lv_filesystem_xml(const struct lv_fs_config *c, char **ret, struct orch_error *err)
{
	int r;
	if ((r = check_path("share directory", c->dir, 4096, err)) < 0 ||
	    (r = check_path("virtiofsd", c->virtiofsd, 4096, err)) < 0)
		return r;
	if (!c->tag || !charset_ok(c->tag, "._-", 36))
		return orch_err(err, -EINVAL, "share tag must be 1-36 of [a-z0-9._-]");
	struct lv_buf b = {0};
	filesystem(&b, c->virtiofsd, c->dir, c->tag);
	return lv_buf_steal(&b, ret);
}

static void devices(struct lv_buf *b, const struct lv_domain_config *c)
{
	lv_buf_append(b, "  <devices>\n");
	if (c->emulator)
		elem(b, "    ", "emulator", c->emulator);
	if (c->rootfs) {
		lv_buf_append(b, "    <disk type='file' device='disk'>\n"
				 "      <driver name='qemu' type='raw'/>\n"
				 "      <source");
		attr(b, "file", c->rootfs);
		lv_buf_append(b, "/>\n"
				 "      <target dev='vda' bus='virtio'/>\n"
				 "      <readonly/>\n"
				 "    </disk>\n");
	}
	if (c->workspace_dir)
		filesystem(b, c->virtiofsd ? c->virtiofsd : LV_VIRTIOFSD_DEFAULT, c->workspace_dir,
			   c->workspace_tag ? c->workspace_tag : LV_WORKSPACE_TAG_DEFAULT);
	/* Read-only on the host: the binary is orch-virtiofsd-ro (libvirt 9 has no <readonly/>
	 * for virtio-fs). */
	if (c->agents_dir)
		filesystem(b, c->agents_virtiofsd, c->agents_dir, LV_AGENTS_TAG);
	lv_buf_append(b, "    <controller type='usb' model='none'/>\n");
	if (c->console_log) {
		lv_buf_append(b, "    <serial type='file'>\n      <source");
		attr(b, "path", c->console_log);
		lv_buf_append(b, " append='on'/>\n"
				 "      <target port='0'/>\n"
				 "    </serial>\n"
				 "    <console type='file'>\n      <source");
		attr(b, "path", c->console_log);
		lv_buf_append(b, " append='on'/>\n"
				 "      <target type='serial' port='0'/>\n"
				 "    </console>\n");
	}
	if (c->transport == LV_TRANSPORT_VSOCK) {
		lv_buf_appendf(b,
			       "    <vsock model='virtio'>\n"
			       "      <cid auto='no' address='%u'/>\n"
			       "    </vsock>\n",
			       c->cid);
	} else {
		for (size_t i = 0; i < c->n_ports; i++) {
			lv_buf_append(b, "    <channel type='unix'>\n      <source mode='bind'");
			attr(b, "path", c->ports[i].path);
			lv_buf_append(b, "/>\n      <target type='virtio'");
			attr(b, "name", c->ports[i].name);
			lv_buf_append(b, "/>\n    </channel>\n");
		}
	}
	/* No <interface>, no <graphics>, no <sound>: nothing the guest does not need.
	 * (libvirt adds the machine's built-in controllers itself.) The balloon is never
	 * inflated: it is there for free page reporting, which hands the pages the guest
	 * frees back to the host (QEMU discards them: with memfd they are holes punched in
	 * the guest's memory file), so an idle VM holds about what its guest uses. */
	if (c->no_balloon)
		lv_buf_append(b, "    <memballoon model='none'/>\n");
	else
		lv_buf_append(b, "    <memballoon model='virtio' freePageReporting='on'/>\n");
	/* Memory hot-plug: the rest of memory_mib, plugged later (lv_domain_memory_request);
	 * a guest that is told to can give back what it holds no more. */
	if (c->boot_memory_mib)
		lv_buf_appendf(b,
			       "    <memory model='virtio-mem'>\n"
			       "      <target>\n"
			       "        <size unit='MiB'>%llu</size>\n"
			       "        <node>0</node>\n"
			       "        <block unit='MiB'>%d</block>\n"
			       "        <requested unit='MiB'>0</requested>\n"
			       "      </target>\n"
			       "    </memory>\n",
			       (unsigned long long)(c->memory_mib - c->boot_memory_mib),
			       LV_VIRTIO_MEM_BLOCK_MIB);
	lv_buf_append(b, "  </devices>\n");
}

int lv_domain_xml(const struct lv_domain_config *c, char **ret, struct orch_error *err)
{
	int r;
	if ((r = validate(c, err)) < 0)
		return r;

	struct lv_buf b = {0};
	lv_buf_appendf(&b, "<domain type='%s'>\n", c->accel == LV_ACCEL_KVM ? "kvm" : "qemu");
	elem(&b, "  ", "name", c->name);
	if (c->uuid)
		elem(&b, "  ", "uuid", c->uuid);
	/* With hot-plug: the boot memory is NUMA node 0's (virtio-mem needs a node to plug
	 * into) and the device's slot counts against maxMemory. */
	if (c->boot_memory_mib)
		lv_buf_appendf(&b, "  <maxMemory slots='1' unit='MiB'>%llu</maxMemory>\n",
			       (unsigned long long)c->memory_mib);
	lv_buf_appendf(
		&b, "  <memory unit='MiB'>%llu</memory>\n",
		(unsigned long long)(c->boot_memory_mib ? c->boot_memory_mib : c->memory_mib));
	lv_buf_appendf(&b, "  <vcpu placement='static'>%u</vcpu>\n", c->vcpus);
	/* virtio-fs needs guest memory that virtiofsd can map. */
	lv_buf_append(&b, "  <memoryBacking>\n"
			  "    <source type='memfd'/>\n"
			  "    <access mode='shared'/>\n"
			  "  </memoryBacking>\n");
	lv_buf_append(&b, "  <os>\n    <type arch='x86_64'");
	attr(&b, "machine", c->machine ? c->machine : LV_MACHINE_DEFAULT);
	lv_buf_append(&b, ">hvm</type>\n");
	elem(&b, "    ", "kernel", c->kernel);
	if (c->initrd)
		elem(&b, "    ", "initrd", c->initrd);
	if (c->cmdline)
		elem(&b, "    ", "cmdline", c->cmdline);
	lv_buf_append(&b, "  </os>\n");
	/* ACPI: without it the guest cannot power itself off through libvirt. */
	lv_buf_append(&b, "  <features>\n    <acpi/>\n  </features>\n");
	/* The agents' native binaries (Claude Code, OpenCode) need what qemu64, QEMU's
	 * default model, lacks (AVX2...): the host's CPU under KVM, everything TCG
	 * emulates otherwise. */
	lv_buf_append(&b, c->accel == LV_ACCEL_KVM ? "  <cpu mode='host-passthrough'"
						   : "  <cpu mode='maximum' migratable='off'");
	if (c->boot_memory_mib)
		lv_buf_appendf(&b,
			       ">\n"
			       "    <numa>\n"
			       "      <cell id='0' cpus='0-%u' memory='%llu' unit='MiB' "
			       "memAccess='shared'/>\n"
			       "    </numa>\n"
			       "  </cpu>\n",
			       c->vcpus - 1, (unsigned long long)c->boot_memory_mib);
	else
		lv_buf_append(&b, "/>\n");
	lv_buf_append(&b, "  <clock offset='utc'/>\n"
			  "  <on_poweroff>destroy</on_poweroff>\n"
			  "  <on_reboot>destroy</on_reboot>\n"
			  "  <on_crash>destroy</on_crash>\n");
	devices(&b, c);
	lv_buf_append(&b, "</domain>\n");
	return lv_buf_steal(&b, ret);
}

int lv_kernel_cmdline(const char *base, const struct lv_domain_config *c, unsigned slots,
		      char **ret, struct orch_error *err)
{
	int r;
	if ((r = validate(c, err)) < 0)
		return r;
	if (base && !printable(base))
		return orch_err(err, -EINVAL, "base cmdline must be printable ASCII");

	struct lv_buf b = {0};
	if (base && base[0])
		lv_buf_appendf(&b, "%s ", base);
	lv_buf_appendf(&b, "orch.name=%s", c->name);
	if (c->transport == LV_TRANSPORT_VSOCK)
		lv_buf_appendf(&b, " orch.connect=vsock:2:%u", control_vsock_port(c));
	else
		lv_buf_appendf(&b, " orch.connect=serial:/dev/virtio-ports/%s", c->ports[0].name);
	if (c->llm && c->transport == LV_TRANSPORT_VSOCK)
		lv_buf_appendf(&b, " orch.llm=vsock:2:%u", llm_vsock_port(c));
	else if (c->llm)
		lv_buf_append(&b, " orch.llm=serial:/dev/virtio-ports/" LV_PORT_LLM);
	if (c->egress && c->transport == LV_TRANSPORT_VSOCK)
		lv_buf_appendf(&b, " orch.egress=vsock:2:%u", egress_vsock_port(c));
	else if (c->egress)
		lv_buf_append(&b, " orch.egress=serial:/dev/virtio-ports/" LV_PORT_EGRESS);
	if (slots)
		lv_buf_appendf(&b, " orch.slots=%u", slots);
	if (c->workspace_dir)
		lv_buf_appendf(&b, " orch.workspace=%s",
			       c->workspace_tag ? c->workspace_tag : LV_WORKSPACE_TAG_DEFAULT);
	else
		lv_buf_append(&b, " orch.workspace=none");
	if (c->agents_dir)
		lv_buf_appendf(&b, " orch.agents=%s", c->agents_path);
	if (c->shells)
		lv_buf_appendf(&b, " orch.shell=%s",
			       c->transport == LV_TRANSPORT_VSOCK ? "vsock" : "serial");
	if (c->snapshot)
		lv_buf_append(&b, " orch.snapshot=1");
	/* Hot-plugged memory: the initramfs loads virtio_mem (orch.mem=virtio); what it plugs
	 * is onlined at once, movable while that keeps the kernel's own zone at least a
	 * third of movable memory (so that it can be unplugged again), kernel memory beyond;
	 * no bounce buffers: the device's range above 4 GiB would otherwise make the kernel
	 * reserve 64 MiB of them, which virtio without an IOMMU never uses. */
	if (c->boot_memory_mib)
		lv_buf_append(&b, " orch.mem=virtio memhp_default_state=online"
				  " memory_hotplug.online_policy=auto-movable swiotlb=noforce");
	return lv_buf_steal(&b, ret);
}
