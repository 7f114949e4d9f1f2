/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/domain-xml.c: the generated domain XML and kernel cmdline. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "cleanup.h"
#include "domain-xml.h"
#include "domain.h"

static const struct lv_port serial_ports[] = {
	{LV_PORT_CONTROL, "/run/orch/vm/dev/control.sock"},
	{"org.orch.shell.0", "/run/orch/vm/dev/shell-0.sock"},
	{LV_PORT_LLM, "/run/orch/vm/dev/llm.sock"},
};

static struct lv_domain_config base_config(void)
{
	struct lv_domain_config c = {
		.name = "orch-dev",
		.accel = LV_ACCEL_TCG,
		.vcpus = 2,
		.memory_mib = 1024,
		.kernel = "/var/lib/orch/image/vmlinuz",
		.initrd = "/var/lib/orch/image/initrd.img",
		.cmdline = "console=ttyS0 orch.name=dev",
		.rootfs = "/var/lib/orch/image/rootfs.erofs",
		.workspace_dir = "/var/lib/orch/workspaces/dev",
		.console_log = "/var/lib/orch/vm/dev/console.log",
		.transport = LV_TRANSPORT_VIRTIO_SERIAL,
		.ports = serial_ports,
		.n_ports = ELEMENTSOF(serial_ports),
	};
	return c;
}

static char *xml_of(const struct lv_domain_config *c)
{
	char *xml = NULL;
	struct orch_error err = {0};
	int r = lv_domain_xml(c, &xml, &err);
	ck_assert_msg(r == 0, "lv_domain_xml: %d %s", r, err.msg);
	ck_assert_ptr_nonnull(xml);
	return xml;
}

static int xml_fails(const struct lv_domain_config *c, const char *want_in_msg)
{
	char *xml = NULL;
	struct orch_error err = {0};
	int r = lv_domain_xml(c, &xml, &err);
	ck_assert_ptr_null(xml);
	ck_assert_msg(strstr(err.msg, want_in_msg), "message '%s' lacks '%s'", err.msg,
		      want_in_msg);
	return r;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

START_TEST(test_tcg_virtio_serial)
{
	struct lv_domain_config c = base_config();
	_cleanup_free_ char *xml = xml_of(&c);

	ck_assert_ptr_nonnull(strstr(xml, "<domain type='qemu'>"));
	ck_assert_ptr_nonnull(strstr(xml, "<name>orch-dev</name>"));
	ck_assert_ptr_nonnull(strstr(xml, "<memory unit='MiB'>1024</memory>"));
	ck_assert_ptr_nonnull(strstr(xml, "<vcpu placement='static'>2</vcpu>"));
	/* direct kernel boot */
	ck_assert_ptr_nonnull(strstr(xml, "<kernel>/var/lib/orch/image/vmlinuz</kernel>"));
	ck_assert_ptr_nonnull(strstr(xml, "<initrd>/var/lib/orch/image/initrd.img</initrd>"));
	ck_assert_ptr_nonnull(strstr(xml, "<cmdline>console=ttyS0 orch.name=dev</cmdline>"));
	/* memfd + shared memory for virtio-fs */
	ck_assert_ptr_nonnull(strstr(xml, "<source type='memfd'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<access mode='shared'/>"));
	/* virtio-fs with Debian's virtiofsd */
	ck_assert_ptr_nonnull(strstr(xml, "<driver type='virtiofs'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<binary path='/usr/lib/qemu/virtiofsd'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<source dir='/var/lib/orch/workspaces/dev'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<target dir='workspace'/>"));
	/* read-only root disk */
	ck_assert_ptr_nonnull(strstr(xml, "<source file='/var/lib/orch/image/rootfs.erofs'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<readonly/>"));
	/* nothing the guest does not need */
	ck_assert_ptr_null(strstr(xml, "<interface"));
	ck_assert_ptr_null(strstr(xml, "<graphics"));
	ck_assert_ptr_null(strstr(xml, "<vsock"));
	ck_assert_ptr_nonnull(strstr(xml, "<controller type='usb' model='none'/>"));
	/* the balloon only reports free pages */
	ck_assert_ptr_nonnull(strstr(xml, "<memballoon model='virtio' freePageReporting='on'/>"));
	ck_assert_uint_eq(count(xml, "<memballoon"), 1);
	/* console to a file, ACPI, poweroff destroys */
	ck_assert_ptr_nonnull(strstr(xml, "<serial type='file'>\n      <source "
					  "path='/var/lib/orch/vm/dev/console.log' append='on'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<acpi/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<on_poweroff>destroy</on_poweroff>"));
	ck_assert_ptr_nonnull(strstr(xml, "<on_crash>destroy</on_crash>"));
	ck_assert_ptr_null(strstr(xml, "host-passthrough"));
	/* TCG: every CPU feature QEMU emulates (agents' binaries need AVX2), not qemu64 */
	ck_assert_ptr_nonnull(strstr(xml, "<cpu mode='maximum' migratable='off'/>"));
	ck_assert_uint_eq(count(xml, "<filesystem"), 1); /* no agents share asked for */
	/* one unix channel per port, control first */
	ck_assert_uint_eq(count(xml, "<channel type='unix'>"), 3);
	const char *ctl = strstr(xml, "<target type='virtio' name='org.orch.control'/>");
	const char *shell = strstr(xml, "<target type='virtio' name='org.orch.shell.0'/>");
	ck_assert_ptr_nonnull(ctl);
	ck_assert_ptr_nonnull(shell);
	ck_assert(ctl < shell);
	ck_assert_ptr_nonnull(
		strstr(xml, "<source mode='bind' path='/run/orch/vm/dev/control.sock'/>"));
}
END_TEST

START_TEST(test_kvm_vsock)
{
	struct lv_domain_config c = base_config();
	c.accel = LV_ACCEL_KVM;
	c.transport = LV_TRANSPORT_VSOCK;
	c.cid = 42;
	c.ports = NULL;
	c.n_ports = 0;
	c.workspace_dir = NULL;
	c.console_log = NULL;
	_cleanup_free_ char *xml = xml_of(&c);

	ck_assert_ptr_nonnull(strstr(xml, "<domain type='kvm'>"));
	ck_assert_ptr_nonnull(strstr(xml, "<cpu mode='host-passthrough'/>"));
	ck_assert_ptr_null(strstr(xml, "mode='maximum'"));
	ck_assert_ptr_nonnull(strstr(xml, "<vsock model='virtio'>\n      <cid auto='no' "
					  "address='42'/>"));
	ck_assert_ptr_null(strstr(xml, "<channel"));
	ck_assert_ptr_null(strstr(xml, "<filesystem"));
	ck_assert_ptr_null(strstr(xml, "<serial"));
}
END_TEST

START_TEST(test_escaping)
{
	struct lv_domain_config c = base_config();
	c.cmdline = "a<b>&'\"c";
	c.workspace_dir = "/srv/it's <here> & \"there\"";
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_ptr_nonnull(strstr(xml, "<cmdline>a&lt;b&gt;&amp;&apos;&quot;c</cmdline>"));
	ck_assert_ptr_nonnull(
		strstr(xml, "<source dir='/srv/it&apos;s &lt;here&gt; &amp; &quot;there&quot;'/>"));
	ck_assert_ptr_null(strstr(xml, "it's"));
}
END_TEST

START_TEST(test_invalid)
{
	struct lv_domain_config c;

	c = base_config();
	c.name = "bad name";
	ck_assert_int_eq(xml_fails(&c, "domain name"), -EINVAL);
	c = base_config();
	c.name = "evil'><interface";
	ck_assert_int_eq(xml_fails(&c, "domain name"), -EINVAL);
	c = base_config();
	c.kernel = "relative/vmlinuz";
	ck_assert_int_eq(xml_fails(&c, "kernel must be an absolute path"), -EINVAL);
	c = base_config();
	c.kernel = NULL;
	ck_assert_int_eq(xml_fails(&c, "kernel"), -EINVAL);
	c = base_config();
	c.cmdline = "console=ttyS0\nx";
	ck_assert_int_eq(xml_fails(&c, "cmdline"), -EINVAL);
	c = base_config();
	c.workspace_dir = "/srv/\x01";
	ck_assert_int_eq(xml_fails(&c, "control"), -EINVAL);
	c = base_config();
	c.vcpus = 0;
	ck_assert_int_eq(xml_fails(&c, "vcpus"), -EINVAL);
	c = base_config();
	c.memory_mib = 1;
	ck_assert_int_eq(xml_fails(&c, "memory_mib"), -EINVAL);
	c = base_config();
	c.accel = 0;
	ck_assert_int_eq(xml_fails(&c, "accel"), -EINVAL);
	c = base_config();
	c.transport = LV_TRANSPORT_VSOCK;
	c.cid = 2;
	c.n_ports = 0;
	ck_assert_int_eq(xml_fails(&c, "CID 2 is reserved"), -EINVAL);
	c = base_config();
	c.n_ports = 0;
	ck_assert_int_eq(xml_fails(&c, "virtio-serial needs"), -EINVAL);

	struct lv_port dup[] = {{"a", "/x"}, {"a", "/y"}};
	c = base_config();
	c.ports = dup;
	c.n_ports = 2;
	ck_assert_int_eq(xml_fails(&c, "given twice"), -EINVAL);

	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	struct lv_port longp[] = {{"org.orch.control", longpath}};
	c = base_config();
	c.ports = longp;
	c.n_ports = 1;
	ck_assert_int_eq(xml_fails(&c, "port org.orch.control: port path is longer"), -EINVAL);
}
END_TEST

/* The egress lane: a virtio-serial port org.orch.egress, or a reserved vsock port (the
 * control port + 2 unless given), and orch.egress=ADDR for run-supervisor. */
START_TEST(test_egress_lane)
{
	struct orch_error err = {0};
	struct lv_domain_config c = base_config();
	static const struct lv_port ports[] = {
		{LV_PORT_CONTROL, "/run/orch/vm/dev/control.sock"},
		{LV_PORT_EGRESS, "/run/orch/vm/dev/egress.sock"},
	};
	c.ports = ports;
	c.n_ports = ELEMENTSOF(ports);
	c.egress = true;
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_ptr_nonnull(strstr(xml, "<target type='virtio' name='org.orch.egress'/>"));
	_cleanup_free_ char *a = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 0, &a, &err), 0);
	ck_assert_ptr_nonnull(strstr(a, " orch.egress=serial:/dev/virtio-ports/org.orch.egress"));
	c.n_ports = 1;
	ck_assert_int_eq(xml_fails(&c, "needs the port org.orch.egress"), -EINVAL);

	struct lv_domain_config v = base_config();
	v.transport = LV_TRANSPORT_VSOCK;
	v.cid = 7;
	v.n_ports = 0;
	v.ports = NULL;
	v.llm = true;
	v.egress = true;
	_cleanup_free_ char *p = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &v, 0, &p, &err), 0);
	ck_assert_ptr_nonnull(strstr(
		p, " orch.connect=vsock:2:700 orch.llm=vsock:2:701 orch.egress=vsock:2:702 "));
	v.vsock_egress_port = 701;
	ck_assert_int_eq(xml_fails(&v, "the vsock egress port must be reserved and differ"),
			 -EINVAL);
	v.vsock_egress_port = 4000;
	ck_assert_int_eq(xml_fails(&v, "the vsock egress port must be reserved and differ"),
			 -EINVAL);
}
END_TEST

/* The agents share: a second virtio-fs filesystem served by the read-only wrapper, and
 * orch.agents=PATH on the cmdline. */
START_TEST(test_agents_share)
{
	struct orch_error err = {0};
	struct lv_domain_config c = base_config();
	c.agents_dir = "/opt/orch/agents";
	c.agents_path = "/opt/orch/agents";
	c.agents_virtiofsd = "/usr/libexec/orch/orch-virtiofsd-ro";
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_uint_eq(count(xml, "<filesystem"), 2);
	const char *fs = strstr(xml, "<binary path='/usr/libexec/orch/orch-virtiofsd-ro'/>");
	ck_assert_ptr_nonnull(fs);
	ck_assert_ptr_nonnull(strstr(fs, "<source dir='/opt/orch/agents'/>\n"
					 "      <target dir='agents'/>"));
	_cleanup_free_ char *cmd = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 0, &cmd, &err), 0);
	ck_assert_ptr_nonnull(strstr(cmd, " orch.agents=/opt/orch/agents"));

	c.agents_path = "/opt/with space";
	ck_assert_int_eq(xml_fails(&c, "agents path must not contain spaces"), -EINVAL);
	c.agents_path = "relative";
	ck_assert_int_eq(xml_fails(&c, "agents path must be an absolute path"), -EINVAL);
	c.agents_path = "/opt/orch/agents";
	c.agents_virtiofsd = NULL;
	ck_assert_int_eq(xml_fails(&c, "agents virtiofsd must be an absolute path"), -EINVAL);
}
END_TEST

/* The LLM channel of its own: a virtio-serial port org.orch.llm bound on the host, or a
 * vsock port next to the control port, and orch.llm=ADDR for run-supervisor. */
START_TEST(test_llm_channel)
{
	struct orch_error err = {0};
	struct lv_domain_config c = base_config();
	c.llm = true;
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_ptr_nonnull(strstr(xml, "<source mode='bind' path='/run/orch/vm/dev/llm.sock'/>\n"
					  "      <target type='virtio' name='org.orch.llm'/>"));
	_cleanup_free_ char *a = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 2, &a, &err), 0);
	ck_assert_str_eq(a, "orch.name=orch-dev "
			    "orch.connect=serial:/dev/virtio-ports/org.orch.control "
			    "orch.llm=serial:/dev/virtio-ports/org.orch.llm orch.slots=2 "
			    "orch.workspace=workspace");

	/* without the flag: no orch.llm, the port is just a port */
	c.llm = false;
	_cleanup_free_ char *b = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 2, &b, &err), 0);
	ck_assert_ptr_null(strstr(b, "orch.llm"));

	/* the LLM port is required, and it is never the control port */
	c.llm = true;
	c.n_ports = 2; /* control, shell.0 */
	ck_assert_int_eq(xml_fails(&c, "needs the port org.orch.llm"), -EINVAL);
	static const struct lv_port llm_first[] = {
		{LV_PORT_LLM, "/run/orch/vm/dev/llm.sock"},
		{LV_PORT_CONTROL, "/run/orch/vm/dev/control.sock"},
	};
	c.ports = llm_first;
	c.n_ports = ELEMENTSOF(llm_first);
	ck_assert_int_eq(xml_fails(&c, "the first port is the control port"), -EINVAL);

	/* vsock: the control port's neighbour unless given */
	struct lv_domain_config v = base_config();
	v.transport = LV_TRANSPORT_VSOCK;
	v.cid = 7;
	v.n_ports = 0;
	v.ports = NULL;
	v.llm = true;
	v.vsock_port = 714;
	_cleanup_free_ char *vx = xml_of(&v);
	ck_assert_ptr_nonnull(strstr(vx, "<cid auto='no' address='7'/>"));
	ck_assert_ptr_null(strstr(vx, "<channel"));
	_cleanup_free_ char *p = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &v, 0, &p, &err), 0);
	ck_assert_ptr_nonnull(strstr(p, " orch.connect=vsock:2:714 orch.llm=vsock:2:715 "));
	v.vsock_llm_port = 900;
	_cleanup_free_ char *q = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &v, 0, &q, &err), 0);
	ck_assert_ptr_nonnull(strstr(q, " orch.llm=vsock:2:900 "));
	v.vsock_llm_port = 714;
	ck_assert_int_eq(xml_fails(&v, "must differ from the control port"), -EINVAL);
	/* ports anyone could listen on are refused: the guest would trust them */
	v.vsock_llm_port = 5015;
	ck_assert_int_eq(xml_fails(&v, "the vsock ports the guest dials must be reserved"),
			 -EINVAL);
	v.vsock_llm_port = 0;
	v.vsock_port = 1023; /* its neighbour is not reserved */
	ck_assert_int_eq(xml_fails(&v, "the vsock ports the guest dials must be reserved"),
			 -EINVAL);
	v.vsock_port = 5000;
	v.llm = false;
	ck_assert_int_eq(xml_fails(&v, "the vsock ports the guest dials must be reserved"),
			 -EINVAL);
}
END_TEST

/* A snapshot template: no shares (QEMU cannot save vhost-user-fs), orch.snapshot=1 on its
 * command line; the shares come later as <filesystem> elements of their own. */
START_TEST(test_snapshot_template)
{
	struct lv_domain_config c = base_config();
	c.workspace_dir = NULL;
	c.snapshot = true;
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_ptr_null(strstr(xml, "<filesystem"));
	_cleanup_free_ char *cmd = NULL;
	struct orch_error err = {0};
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 1, &cmd, &err), 0);
	ck_assert_ptr_nonnull(strstr(cmd, " orch.workspace=none"));
	ck_assert_ptr_nonnull(strstr(cmd, " orch.snapshot=1"));

	c.workspace_dir = "/var/lib/orch/workspaces/dev";
	ck_assert_int_eq(xml_fails(&c, "snapshot template cannot have virtio-fs"), -EINVAL);
	c.workspace_dir = NULL;
	c.agents_dir = "/opt/orch/agents";
	c.agents_path = "/opt/orch/agents";
	c.agents_virtiofsd = "/usr/libexec/orch-virtiofsd-ro";
	ck_assert_int_eq(xml_fails(&c, "snapshot template cannot have virtio-fs"), -EINVAL);

	struct lv_domain_config plain = base_config();
	_cleanup_free_ char *p = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &plain, 1, &p, &err), 0);
	ck_assert_ptr_null(strstr(p, "orch.snapshot"));
}
END_TEST

START_TEST(test_filesystem_xml)
{
	struct orch_error err = {0};
	_cleanup_free_ char *x = NULL;
	struct lv_fs_config f = {.dir = "/var/lib/orch/workspaces/dev/dev.3",
				 .tag = "workspace",
				 .virtiofsd = "/usr/libexec/orch-virtiofsd"};
	ck_assert_int_eq(lv_filesystem_xml(&f, &x, &err), 0);
	ck_assert_str_eq(x, "    <filesystem type='mount' accessmode='passthrough'>\n"
			    "      <driver type='virtiofs'/>\n"
			    "      <binary path='/usr/libexec/orch-virtiofsd'/>\n"
			    "      <source dir='/var/lib/orch/workspaces/dev/dev.3'/>\n"
			    "      <target dir='workspace'/>\n"
			    "    </filesystem>\n");
	/* the same element as a booted domain's */
	struct lv_domain_config c = base_config();
	c.workspace_dir = f.dir;
	c.virtiofsd = f.virtiofsd;
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_ptr_nonnull(strstr(xml, x));

	char *y = NULL;
	f.tag = "Bad Tag";
	ck_assert_int_eq(lv_filesystem_xml(&f, &y, &err), -EINVAL);
	f.tag = "workspace";
	f.dir = "relative";
	ck_assert_int_eq(lv_filesystem_xml(&f, &y, &err), -EINVAL);
	f.dir = "/x'y";
	ck_assert_int_eq(lv_filesystem_xml(&f, &y, &err), 0); /* escaped */
	ck_assert_ptr_nonnull(strstr(y, "<source dir='/x&apos;y'/>"));
	free(y);
}
END_TEST

START_TEST(test_cmdline)
{
	struct orch_error err = {0};
	struct lv_domain_config c = base_config();
	_cleanup_free_ char *a = NULL;
	ck_assert_int_eq(lv_kernel_cmdline("console=ttyS0 quiet", &c, 4, &a, &err), 0);
	ck_assert_str_eq(a, "console=ttyS0 quiet orch.name=orch-dev "
			    "orch.connect=serial:/dev/virtio-ports/org.orch.control orch.slots=4 "
			    "orch.workspace=workspace");

	c.transport = LV_TRANSPORT_VSOCK;
	c.cid = 7;
	c.n_ports = 0;
	c.workspace_dir = NULL;
	_cleanup_free_ char *b = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 0, &b, &err), 0);
	ck_assert_str_eq(b, "orch.name=orch-dev orch.connect=vsock:2:700 orch.workspace=none");

	c.vsock_port = 707;
	_cleanup_free_ char *p = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 0, &p, &err), 0);
	ck_assert_str_eq(p, "orch.name=orch-dev orch.connect=vsock:2:707 orch.workspace=none");

	c.shells = true;
	_cleanup_free_ char *v = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &c, 0, &v, &err), 0);
	ck_assert_ptr_nonnull(strstr(v, " orch.shell=vsock"));
	struct lv_domain_config s = base_config();
	s.shells = true;
	_cleanup_free_ char *w = NULL;
	ck_assert_int_eq(lv_kernel_cmdline(NULL, &s, 2, &w, &err), 0);
	ck_assert_ptr_nonnull(strstr(w, " orch.shell=serial"));

	char *bad = NULL;
	ck_assert_int_eq(lv_kernel_cmdline("x\ty", &c, 0, &bad, &err), -EINVAL);
	ck_assert_ptr_null(bad);
}
END_TEST

/* The guest's end of a virtio-serial port, as libvirt's live XML shows it. */
START_TEST(test_channel_state)
{
	const char *xml =
		"<domain><devices>\n"
		"    <channel type='unix'>\n"
		"      <source mode='bind' path='/x/chan/control.sock'/>\n"
		"      <target type='virtio' name='org.orch.control' state='disconnected'/>\n"
		"    </channel>\n"
		"    <channel type='unix'>\n"
		"      <target type='virtio' name='org.orch.shell.0' state='connected'/>\n"
		"    </channel>\n"
		"    <channel type='unix'>\n"
		"      <target type='virtio' name='org.orch.llm'/>\n"
		"    </channel>\n"
		"    <channel type='unix'>\n"
		"      <target type='virtio' name='org.orch.egress' state='maybe'/>\n"
		"    </channel>\n"
		"</devices></domain>\n";
	ck_assert_int_eq(lv_channel_state_xml(xml, "org.orch.control"), 0);
	ck_assert_int_eq(lv_channel_state_xml(xml, "org.orch.shell.0"), 1);
	ck_assert_int_eq(lv_channel_state_xml(xml, "org.orch.llm"), -1);    /* no state */
	ck_assert_int_eq(lv_channel_state_xml(xml, "org.orch.egress"), -1); /* unknown */
	ck_assert_int_eq(lv_channel_state_xml(xml, "org.orch"), -1);	    /* a prefix only */
	ck_assert_int_eq(lv_channel_state_xml(xml, "org.orch.shell.1"), -1);
	ck_assert_int_eq(lv_channel_state_xml(NULL, "org.orch.control"), -1);
}
END_TEST

/* Memory hot-plug: the boot memory is NUMA node 0's, the rest a virtio-mem device. */
START_TEST(test_memory_hotplug)
{
	struct lv_domain_config c = base_config();
	c.memory_mib = 2048;
	c.boot_memory_mib = 256;
	_cleanup_free_ char *xml = xml_of(&c);
	ck_assert_ptr_nonnull(strstr(xml, "<maxMemory slots='1' unit='MiB'>2048</maxMemory>"));
	ck_assert_ptr_nonnull(strstr(xml, "<memory unit='MiB'>256</memory>"));
	ck_assert_ptr_nonnull(strstr(xml, "<cpu mode='maximum' migratable='off'>\n    <numa>\n"
					  "      <cell id='0' cpus='0-1' memory='256' unit='MiB' "
					  "memAccess='shared'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<memory model='virtio-mem'>\n      <target>\n"
					  "        <size unit='MiB'>1792</size>\n"
					  "        <node>0</node>\n"
					  "        <block unit='MiB'>2</block>\n"
					  "        <requested unit='MiB'>0</requested>"));
	/* still memfd, shared: virtiofsd maps the plugged memory too */
	ck_assert_ptr_nonnull(strstr(xml, "<source type='memfd'/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<access mode='shared'/>"));

	c.accel = LV_ACCEL_KVM;
	c.vcpus = 4;
	_cleanup_free_ char *kvm = xml_of(&c);
	ck_assert_ptr_nonnull(strstr(kvm, "<cpu mode='host-passthrough'>\n    <numa>\n"
					  "      <cell id='0' cpus='0-3' memory='256'"));

	_cleanup_free_ char *cmdline = NULL;
	struct orch_error err = {0};
	ck_assert_int_eq(lv_kernel_cmdline("console=ttyS0", &c, 1, &cmdline, &err), 0);
	ck_assert_ptr_nonnull(strstr(cmdline, " orch.mem=virtio memhp_default_state=online "
					      "memory_hotplug.online_policy=auto-movable "
					      "swiotlb=noforce"));

	/* without: none of it */
	c.boot_memory_mib = 0;
	_cleanup_free_ char *plain = xml_of(&c), *cmd2 = NULL;
	ck_assert_ptr_null(strstr(plain, "maxMemory"));
	ck_assert_ptr_null(strstr(plain, "virtio-mem"));
	ck_assert_ptr_null(strstr(plain, "<numa>"));
	ck_assert_ptr_nonnull(strstr(plain, "<memory unit='MiB'>2048</memory>"));
	ck_assert_ptr_nonnull(strstr(plain, "<cpu mode='host-passthrough'/>"));
	ck_assert_int_eq(lv_kernel_cmdline("console=ttyS0", &c, 1, &cmd2, &err), 0);
	ck_assert_ptr_null(strstr(cmd2, "orch.mem"));
	ck_assert_ptr_null(strstr(cmd2, "swiotlb"));
}
END_TEST

START_TEST(test_memory_hotplug_invalid)
{
	struct lv_domain_config c = base_config();
	c.memory_mib = 512;
	/* too small, all of memory_mib or more, a device not a whole number of the guest's
	 * 128 MiB memory blocks */
	const uint64_t bad[] = {1, 63, 512, 513, 4096, 192, 510, 384 + 2};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		c.boot_memory_mib = bad[i];
		ck_assert_int_eq(xml_fails(&c, "boot_memory_mib must be"), -EINVAL);
	}
	const uint64_t good[] = {128, 256, 384};
	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		c.boot_memory_mib = good[i];
		free(xml_of(&c));
	}
	c.memory_mib = 192;
	c.boot_memory_mib = LV_MIN_BOOT_MEMORY_MIB;
	free(xml_of(&c));
}
END_TEST

/* The virtio-mem device as libvirt's live XML shows it, and the element handed back to
 * virDomainUpdateDeviceFlags with a new requested size. */
START_TEST(test_virtio_mem_xml)
{
	const char *xml = "<domain><devices>\n"
			  "    <memballoon model='virtio' freePageReporting='on'>\n"
			  "      <alias name='balloon0'/>\n"
			  "    </memballoon>\n"
			  "    <memory model='virtio-mem'>\n"
			  "      <target>\n"
			  "        <size unit='KiB'>1900544</size>\n"
			  "        <node>0</node>\n"
			  "        <block unit='KiB'>2048</block>\n"
			  "        <requested unit='KiB'>0</requested>\n"
			  "        <current unit='KiB'>4096</current>\n"
			  "      </target>\n"
			  "      <alias name='virtiomem0'/>\n"
			  "      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' "
			  "function='0x0'/>\n"
			  "    </memory>\n"
			  "</devices></domain>\n";
	uint64_t cur = 1, req = 1;
	_cleanup_free_ char *dev = NULL;
	ck_assert_int_eq(lv_virtio_mem_xml(xml, 0, NULL, &cur, &req), 0);
	ck_assert_uint_eq(cur, 4096);
	ck_assert_uint_eq(req, 0);
	ck_assert_int_eq(lv_virtio_mem_xml(xml, 1900544, &dev, NULL, NULL), 0);
	ck_assert_str_eq(dev, "<memory model='virtio-mem'>\n"
			      "      <target>\n"
			      "        <size unit='KiB'>1900544</size>\n"
			      "        <node>0</node>\n"
			      "        <block unit='KiB'>2048</block>\n"
			      "        <requested unit='KiB'>1900544</requested>\n"
			      "        <current unit='KiB'>4096</current>\n"
			      "      </target>\n"
			      "      <alias name='virtiomem0'/>\n"
			      "      <address type='pci' domain='0x0000' bus='0x00' slot='0x07' "
			      "function='0x0'/>\n"
			      "    </memory>");

	/* no device; no size asked for; a size that is not a number; one past the element */
	ck_assert_int_eq(lv_virtio_mem_xml("<domain><devices/></domain>", 0, NULL, &cur, &req),
			 -ENODEV);
	ck_assert_int_eq(lv_virtio_mem_xml(NULL, 0, NULL, &cur, &req), -ENODEV);
	ck_assert_int_eq(lv_virtio_mem_xml("<memory model='virtio-mem'><target>"
					   "<requested unit='KiB'>x</requested></target></memory>",
					   0, NULL, &cur, &req),
			 -EPROTO);
	ck_assert_int_eq(
		lv_virtio_mem_xml("<memory model='virtio-mem'><target>"
				  "<requested unit='KiB'>99999999999999999999999</requested>"
				  "</target></memory>",
				  0, NULL, &cur, &req),
		-EPROTO);
	ck_assert_int_eq(lv_virtio_mem_xml("<memory model='virtio-mem'><target></target></memory>"
					   "<requested unit='KiB'>0</requested>",
					   0, NULL, &cur, &req),
			 -EPROTO);
	ck_assert_int_eq(lv_virtio_mem_xml("<memory model='virtio-mem'><target>"
					   "<requested unit='KiB'>0</requested></target>",
					   0, NULL, &cur, &req),
			 -ENODEV);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("libvirt_domain_xml");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_tcg_virtio_serial);
	tcase_add_test(tc, test_kvm_vsock);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_invalid);
	tcase_add_test(tc, test_cmdline);
	tcase_add_test(tc, test_llm_channel);
	tcase_add_test(tc, test_egress_lane);
	tcase_add_test(tc, test_agents_share);
	tcase_add_test(tc, test_snapshot_template);
	tcase_add_test(tc, test_filesystem_xml);
	tcase_add_test(tc, test_channel_state);
	tcase_add_test(tc, test_memory_hotplug);
	tcase_add_test(tc, test_memory_hotplug_invalid);
	tcase_add_test(tc, test_virtio_mem_xml);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return orch_check_run(suite());
}
