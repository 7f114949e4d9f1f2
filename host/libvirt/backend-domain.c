/* SPDX-License-Identifier: Apache-2.0 */
/* The domain configuration of a VM, or of a class's snapshot template (backend-libvirt.h):
 * direct kernel boot of the image, the workspace and agents shares (virtio-fs through
 * orch-virtiofsd and orch-virtiofsd-ro), the channels (virtio-serial ports bound under
 * <state_dir>/vm/<name>/chan/, or vsock), the kernel command line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend-libvirt.h"
#include "backend.h"
#include "cleanup.h"
#include "fs-util.h"
#include "log.h"
#include "orchd.h"
#include "virtiofsd.h"
#include "workspace-dirs.h"

#define LV_DEFAULT_CMDLINE "console=ttyS0 panic=-1 quiet"

void lvb_domain_free(struct lvb_domain *dom)
{
	if (!dom)
		return;
	free(dom->virtiofsd);
	free(dom->ro_virtiofsd);
	free(dom->cmdline);
	free(dom);
}

/* The shares of a VM: its workspace (made private: workspace-dirs.h) through
 * orch-virtiofsd, and the agents directory, read-only on the host, through
 * orch-virtiofsd-ro (made now, so agents installed later appear in the running VM too;
 * never shared without the read-only helper). */
static int shares(const struct lvb_domain_in *in, struct lvb_domain *dom, struct orch_error *err)
{
	const struct orchd_vm_config *c = in->c;
	const char *agents = in->d->cfg->agents_dir;
	struct orch_error ro_err = {0};
	bool tightened = false;
	int r;

	if ((r = orchd_workspace_private(in->d->cfg, c, &tightened, err)) < 0)
		return r;
	if (tightened)
		orch_log(ORCH_LOG_INFO, "libvirt", "made the workspace's parent private (0700)",
			 "vm", in->name, "workspace", c->workspace, NULL);
	if ((r = lv_virtiofsd_wrapper(&dom->virtiofsd, err)) < 0)
		return orch_err_prefix(err, "vm %s", in->name);
	dom->agents_share = orchd_mkdir_p(agents, 0755) == 0;
	if (dom->agents_share && lv_virtiofsd_ro_wrapper(&dom->ro_virtiofsd, &ro_err) < 0) {
		orch_log(ORCH_LOG_WARN, "libvirt", "the VM gets no agents share", "vm", in->name,
			 "error", ro_err.msg, NULL);
		dom->agents_share = false;
	}
	return 0;
}

int lvb_domain_new(const struct lvb_domain_in *in, struct lvb_domain **ret, struct orch_error *err)
{
	const struct orchd_vm_config *c = in->c;
	struct orchd *d = in->d;
	int r;

	_cleanup_(lvb_domain_freep) struct lvb_domain *dom = calloc(1, sizeof(*dom));
	if (!dom)
		return orch_err(err, -ENOMEM, "out of memory");
	snprintf(dom->domain, sizeof(dom->domain), "orch-%s", in->name);
	if ((size_t)snprintf(dom->dir, sizeof(dom->dir), "%s/vm/%s", d->cfg->state_dir, in->name) >=
	    sizeof(dom->dir))
		return orch_err(err, -ENAMETOOLONG, "vm %s: state path too long", in->name);
	snprintf(dom->console, sizeof(dom->console), "%s/console.log", dom->dir);
	snprintf(dom->sock, sizeof(dom->sock), "%s/chan/control.sock", dom->dir);
	snprintf(dom->llm_sock, sizeof(dom->llm_sock), "%s/chan/llm.sock", dom->dir);
	snprintf(dom->egress_sock, sizeof(dom->egress_sock), "%s/chan/egress.sock", dom->dir);
	char chan[PATH_MAX + 8];
	snprintf(chan, sizeof(chan), "%s/chan", dom->dir);
	if (!in->dry) {
		if ((r = orchd_mkdir_p(dom->dir, 0755)) < 0)
			return orch_errno(err, r, "vm %s: cannot create %s", in->name, dom->dir);
		if ((r = lvb_make_chan_dir(chan, err)) < 0)
			return r;
		if (!in->template && (r = shares(in, dom, err)) < 0)
			return r;
		unlink(dom->console); /* this boot's console only */
		unlink(dom->sock);
		unlink(dom->llm_sock);
		unlink(dom->egress_sock);
	}

	/* virtio-serial: the control port, the LLM port, the egress port, then one
	 * debug-shell port per agent slot (host side <dir>/chan/shell-N.sock). */
	int64_t n_shells = c->slots < ORCH_MAX_SLOTS ? c->slots : ORCH_MAX_SLOTS;
	size_t n_ports = 0;
	dom->ports[n_ports++] = (struct lv_port){LV_PORT_CONTROL, dom->sock};
	if (in->llm)
		dom->ports[n_ports++] = (struct lv_port){LV_PORT_LLM, dom->llm_sock};
	if (in->egress)
		dom->ports[n_ports++] = (struct lv_port){LV_PORT_EGRESS, dom->egress_sock};
	for (int64_t i = 0; i < n_shells; i++) {
		snprintf(dom->shell_names[i], sizeof(dom->shell_names[i]),
			 LV_PORT_SHELL_PREFIX "%lld", (long long)i);
		if (orchd_shell_socket_path(d->cfg->state_dir, in->name, i, dom->shell_paths[i],
					    sizeof(dom->shell_paths[i])) < 0)
			return orch_err(err, -ENAMETOOLONG, "vm %s: state path too long", in->name);
		if (!in->dry)
			unlink(dom->shell_paths[i]);
		dom->ports[n_ports++] = (struct lv_port){dom->shell_names[i], dom->shell_paths[i]};
	}
	const char *agents = d->cfg->agents_dir;
	bool share = !in->template && dom->agents_share;
	dom->dc = (struct lv_domain_config){
		.name = dom->domain,
		.accel = in->accel,
		.vcpus = (unsigned)c->vcpus,
		.memory_mib = (uint64_t)c->memory_mib,
		.boot_memory_mib = (uint64_t)c->boot_memory_mib, /* a template's too: its copies */
		.kernel = c->kernel ? c->kernel : in->im->kernel,
		.initrd = c->initrd ? c->initrd : in->im->initrd,
		.rootfs = in->im->rootfs,
		.workspace_dir = in->template ? NULL : c->workspace,
		.virtiofsd = dom->virtiofsd,
		.agents_dir = share ? agents : NULL,
		.agents_path = agents,
		.agents_virtiofsd = dom->ro_virtiofsd,
		.console_log = dom->console,
		.transport = in->transport,
		.cid = in->cid,
		.vsock_port = (uint32_t)d->cfg->vsock.control_port,
		.vsock_llm_port = (uint32_t)d->cfg->vsock.llm_port,
		.vsock_egress_port = (uint32_t)d->cfg->vsock.egress_port,
		.ports = in->transport == LV_TRANSPORT_VIRTIO_SERIAL ? dom->ports : NULL,
		.n_ports = in->transport == LV_TRANSPORT_VIRTIO_SERIAL ? n_ports : 0,
		.shells = true,
		.llm = in->llm,
		.egress = in->egress,
		.snapshot = in->template,
	};
	_cleanup_free_ char *base = NULL;
	if (asprintf(&base, "%s root=/dev/vda rootfstype=%s orch.uidbase=%lld%s",
		     c->cmdline ? c->cmdline : LV_DEFAULT_CMDLINE, in->im->rootfs_type,
		     (long long)c->uid_base,
		     orch_log_level >= ORCH_LOG_DEBUG ? " orch.loglevel=debug" : "") < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = lv_kernel_cmdline(base, &dom->dc, (unsigned)c->slots, &dom->cmdline, err)) < 0)
		return orch_err_prefix(err, "vm %s", in->name);
	dom->dc.cmdline = dom->cmdline;
	*ret = TAKE_PTR(dom);
	return 0;
}
