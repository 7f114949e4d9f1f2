/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt backend (host/backend.h): every VM is a transient libvirt domain named
 * "orch-<vm>" booted from the guest image, its supervisor reached over the virtio-serial
 * control port (a unix socket libvirt binds under <state_dir>/vm/<vm>/chan/). Readiness is
 * the supervisor's hello (vm.c); this file adds the boot timeout (with the console's tail
 * in the error) and turns libvirt lifecycle events into vm_gone. Compiled into orchd. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "fs-util.h"
#include "choose.h"
#include "cid.h"
#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "event-libvirt.h"
#include "events.h"
#include "helpers.h"
#include "image.h"
#include "log.h"
#include "orch-config.h"
#include "orchd-llm.h"
#include "orchd.h"
#include "transport.h"

#define LV_DEFAULT_CMDLINE "console=ttyS0 panic=-1 quiet"
#define LV_PROBE_TIMEOUT_MS 10000
/* With vsock each VM's supervisor dials the host on its own ports, 5000 + 2 * CID for the
 * control channel and the neighbour, 5001 + 2 * CID, for the LLM channel, so that every VM
 * has its own listeners (accepting only its CID) and no state is shared. */
#define LV_VSOCK_PORT_BASE 5000u
#define LV_VSOCK_PORT(cid) (LV_VSOCK_PORT_BASE + 2u * (cid))

struct lvb {
	struct vm *vm;
	virConnectPtr conn;
	int ev_id;
	virDomainPtr dom;
	bool stopping; /* a stop we asked for: its lifecycle event is not a failure */
	struct orch_timer *boot_timer;
	uint64_t start_ms; /* when lvb_start began (vm.c's hello timer runs from about then) */
	char domain[80];
	char uuid[VIR_UUID_STRING_BUFLEN]; /* of l->dom */
	char dir[PATH_MAX];
	char console[PATH_MAX + 32];
	char sock[PATH_MAX + 32];
	char llm_sock[PATH_MAX + 32]; /* virtio-serial: the LLM channel's port */
	bool llm; /* the guest has an LLM channel of its own (orchd has an LLM proxy) */
	enum lv_accel accel;
	enum lv_transport transport;
	uint32_t cid;  /* vsock */
	int listen_fd; /* vsock: the listener for this VM's port, -1 when none */
	struct orch_io *listen_io;
	int llm_listen_fd; /* vsock: the listener for its LLM port, -1 when none */
	struct orch_io *llm_listen_io;
};

static int lvb_init(struct orchd *d, struct orch_error *err)
{
	/* libvirt's events (lifecycle, keepalive) run on orchd's loop. */
	int r = orchd_event_libvirt_register(d->loop);
	if (r < 0 && r != -EALREADY)
		return orch_errno(err, r, "cannot register the event loop with libvirt");
	return 0;
}

static void drop_domain(struct lvb *l)
{
	orch_timer_free(l->boot_timer);
	l->boot_timer = NULL;
	if (l->dom) {
		virDomainFree(l->dom);
		l->dom = NULL;
	}
}

static void on_event(const char *domain, const struct lv_event *ev, void *data)
{
	struct lvb *l = data;
	if (strcmp(domain, l->domain) != 0 || ev->kind != LV_EV_STOPPED)
		return;
	if (l->stopping || !l->dom)
		return;
	if (ev->uuid[0] && l->uuid[0] && strcmp(ev->uuid, l->uuid) != 0)
		return; /* a late event of an earlier domain of this name */
	char what[160];
	struct orch_error err = {0};
	snprintf(what, sizeof(what), "domain %s stopped (%s)%s", domain, ev->reason,
		 l->vm->state == VM_STARTING ? " before the supervisor's hello" : "");
	/* A crash, or a guest that gave up while booting: the console says why. */
	if (ev->crashed || l->vm->state == VM_STARTING)
		lv_console_error(&err, -EIO, l->console, what);
	else
		orch_err(&err, -EIO, "%s", what);
	drop_domain(l);
	vm_gone(l->vm, err.msg);
}

static void on_boot_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct lvb *l = data;
	if (l->vm->state != VM_STARTING)
		return;
	struct orch_error err = {0};
	char what[128];
	snprintf(what, sizeof(what), "no hello from the supervisor within %lld ms",
		 (long long)l->vm->cfg->boot_timeout_ms);
	lv_console_error(&err, -ETIMEDOUT, l->console, what);
	vm_gone(l->vm, err.msg);
}

/* The image: $ORCH_VM_IMAGE, $ORCH_VM_OUT/image (vm-images/build's output directory),
 * <state_dir>/image, <datadir>/orch/image (installed), the build tree's
 * vm-images/out/image (as `orch doctor` looks, plus the first and the third). */
static int find_image(struct vm *vm, struct lv_image *ret, struct orch_error *err)
{
	_cleanup_free_ char *out = NULL, *state = NULL, *data = NULL, *src = NULL;
	const char *o = getenv("ORCH_VM_OUT");
	if ((o && o[0] && asprintf(&out, "%s/image", o) < 0) ||
	    asprintf(&state, "%s/image", vm->d->cfg->state_dir) < 0 ||
	    asprintf(&data, "%s/image", ORCH_DATADIR) < 0 ||
	    asprintf(&src, "%s/vm-images/out/image", ORCH_SOURCEDIR) < 0)
		return -ENOMEM;
	const char *cands[] = {getenv("ORCH_VM_IMAGE"), out, state, data, src};
	return lv_image_find(cands, ELEMENTSOF(cands), ret, err);
}

/* The directory for the channel sockets: QEMU (libvirt's qemu user) binds them. */
static int make_chan_dir(const char *dir, struct orch_error *err)
{
	int r = orchd_mkdir_p(dir, 0750);
	if (r < 0)
		return orch_errno(err, r, "cannot create %s", dir);
	struct passwd *pw = getpwnam("libvirt-qemu");
	if (pw && chown(dir, pw->pw_uid, 0) < 0)
		return orch_errno(err, -errno, "cannot hand %s to libvirt-qemu", dir);
	return 0;
}

static int dial(const char *path, struct orch_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return orch_err(err, -ENAMETOOLONG, "socket path %s is too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return orch_errno(err, -errno, "socket");
	/* libvirt has bound and is listening by the time the domain runs: no EINPROGRESS
	 * for a local stream socket. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return orch_errno(err, -errno, "cannot connect to %s", path);
	return TAKE_FD(fd);
}

static int choose(struct lvb *l, const struct lv_image *im, struct orch_error *err)
{
	const struct orchd_vm_config *c = l->vm->cfg;
	char why[256];
	int forced = c->transport == ORCHD_TRANSPORT_VSOCK	     ? LV_TRANSPORT_VSOCK
		     : c->transport == ORCHD_TRANSPORT_VIRTIO_SERIAL ? LV_TRANSPORT_VIRTIO_SERIAL
								     : 0;
	lv_transport_choose(forced, NULL, &l->transport, why, sizeof(why));
	orch_log(ORCH_LOG_INFO, "libvirt",
		 l->transport == LV_TRANSPORT_VSOCK ? "transport vsock" : "transport virtio-serial",
		 "vm", c->name, "why", why, NULL);
	if (l->transport == LV_TRANSPORT_VSOCK) {
		_cleanup_free_ char *path = NULL;
		struct lv_cid_file *f = NULL;
		if (asprintf(&path, "%s/vm/cids.json", l->vm->d->cfg->state_dir) < 0)
			return -ENOMEM;
		int r = lv_cid_file_open(path, &f, err);
		if (r < 0)
			return r;
		struct lv_cid_store st = lv_cid_file_store(f);
		r = lv_cid_for_vm(&st, c->name, &l->cid, err);
		lv_cid_file_free(f);
		if (r < 0)
			return r;
		if (l->cid > (0xffff0000u - LV_VSOCK_PORT_BASE) / 2 - 1)
			return orch_err(err, -ERANGE, "vm %s: CID %u leaves no vsock port", c->name,
					l->cid);
	}

	_cleanup_free_ char *cache = NULL;
	if (asprintf(&cache, "%s/vm/accel-probe.json", l->vm->d->cfg->state_dir) < 0)
		return -ENOMEM;
	struct lv_accel_probe p = {.kernel = im->kernel,
				   .initrd = im->baseline,
				   .timeout_ms = LV_PROBE_TIMEOUT_MS,
				   .cache_path = cache};
	int fa = c->accel == ORCHD_ACCEL_KVM   ? LV_ACCEL_KVM
		 : c->accel == ORCHD_ACCEL_TCG ? LV_ACCEL_TCG
					       : 0;
	bool cached = false;
	int r = lv_accel_choose(fa, &p, &l->accel, &cached, why, sizeof(why), err);
	if (r < 0)
		return r;
	orch_log(l->accel == LV_ACCEL_KVM ? ORCH_LOG_INFO : ORCH_LOG_WARN, "libvirt",
		 l->accel == LV_ACCEL_KVM ? "accelerator kvm" : "accelerator tcg (slow: no KVM)",
		 "vm", c->name, "why", why, NULL);
	return 0;
}

static void accept_all(struct lvb *l, int fd, bool llm)
{
	struct orch_error err = {0};
	for (;;) {
		uint32_t peer = 0;
		int c = orch_transport_accept(fd, ORCH_TRANSPORT_VSOCK, l->cid, &peer, &err);
		if (c == -EAGAIN)
			return;
		if (c < 0) {
			char cid[16];
			snprintf(cid, sizeof(cid), "%u", peer);
			orch_log(ORCH_LOG_WARN, "libvirt", "vsock connection refused", "vm",
				 l->vm->cfg->name, "peer_cid", cid, "error", err.msg, NULL);
			if (c == -EPERM)
				continue;
			return;
		}
		if ((llm ? vm_attach_llm_channel(l->vm, c, &err)
			 : vm_attach_channel(l->vm, c, &err)) < 0)
			orch_log(ORCH_LOG_WARN, "libvirt",
				 llm ? "cannot attach the LLM channel"
				     : "cannot attach the channel",
				 "vm", l->vm->cfg->name, "error", err.msg, NULL);
	}
}

static void on_vsock_accept(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			    void *data)
{
	accept_all(data, fd, false);
}

static void on_vsock_accept_llm(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
				void *data)
{
	accept_all(data, fd, true);
}

/* The guest was booted with an LLM channel (orch.llm=) and orchd can serve it (an adopted
 * domain may have been booted by an orchd with an LLM proxy that this one lacks). */
static bool want_llm(const struct lvb *l)
{
	return l->llm && orchd_llm_enabled(l->vm->d);
}

/* The VM runs without its LLM channel (its agents' LLM calls get 503): said, not fatal. */
static void llm_channel_failed(struct lvb *l, const struct orch_error *err)
{
	orch_log(ORCH_LOG_WARN, "libvirt", "no LLM channel", "vm", l->vm->cfg->name, "error",
		 err->msg, NULL);
}

/* vsock: listens on one of this VM's ports (once; kept across restarts of the domain). */
static int vsock_listen_port(struct lvb *l, uint32_t port, orch_io_cb cb, int *listen_fd,
			     struct orch_io **io, struct orch_error *err)
{
	if (*listen_fd >= 0)
		return 0;
	struct orch_addr a = {
		.kind = ORCH_TRANSPORT_VSOCK, .cid = ORCH_VSOCK_CID_ANY, .port = port};
	int fd = orch_transport_listen(&a, 0, err);
	if (fd < 0)
		return fd;
	int r = orch_io_add(l->vm->d->loop, fd, EPOLLIN, cb, l, io);
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "watching the vsock listener");
	}
	*listen_fd = fd;
	return 0;
}

static int vsock_listen(struct lvb *l, struct orch_error *err)
{
	int r = vsock_listen_port(l, LV_VSOCK_PORT(l->cid), on_vsock_accept, &l->listen_fd,
				  &l->listen_io, err);
	if (r < 0 || !want_llm(l))
		return r;
	struct orch_error lerr = {0};
	if (vsock_listen_port(l, LV_VSOCK_PORT(l->cid) + 1, on_vsock_accept_llm, &l->llm_listen_fd,
			      &l->llm_listen_io, &lerr) < 0)
		llm_channel_failed(l, &lerr);
	return 0;
}

static int connect_channel(struct lvb *l, struct orch_error *err)
{
	if (virDomainGetUUIDString(l->dom, l->uuid) < 0)
		l->uuid[0] = 0;
	/* vm.c arms a generic hello timer of boot_timeout_ms just before calling start; this
	 * one fires a moment earlier (counted from the start of lvb_start) so that the VM's
	 * error carries the console's last lines. */
	uint64_t timeout = (uint64_t)l->vm->cfg->boot_timeout_ms;
	uint64_t early = timeout / 100 < 200 ? timeout / 100 : 200;
	uint64_t spent = orch_now_ms() - l->start_ms + (early ? early : 1);
	int r = orch_timer_add(l->vm->d->loop, spent < timeout ? timeout - spent : 0, 0,
			       on_boot_timeout, l, &l->boot_timer);
	if (r < 0)
		return orch_errno(err, r, "boot timer");
	if (l->transport == LV_TRANSPORT_VSOCK)
		return vsock_listen(l, err); /* the guest dials in */
	int fd = dial(l->sock, err);
	if (fd < 0)
		return fd;
	r = vm_attach_channel(l->vm, fd, err); /* drops any LLM channel: attach it after */
	if (r < 0 || !want_llm(l))
		return r;
	struct orch_error lerr = {0};
	if ((fd = dial(l->llm_sock, &lerr)) < 0 || vm_attach_llm_channel(l->vm, fd, &lerr) < 0)
		llm_channel_failed(l, &lerr);
	return 0;
}

/* The vsock CID recorded for this VM, 0 when none. */
static uint32_t recorded_cid(struct vm *vm)
{
	_cleanup_free_ char *path = NULL;
	struct lv_cid_file *f = NULL;
	struct orch_error err = {0};
	uint32_t cid = 0;
	if (asprintf(&path, "%s/vm/cids.json", vm->d->cfg->state_dir) < 0 ||
	    lv_cid_file_open(path, &f, &err) < 0)
		return 0;
	struct lv_cid_store st = lv_cid_file_store(f);
	if (st.get(st.data, vm->cfg->name, &cid) < 0)
		cid = 0;
	lv_cid_file_free(f);
	return cid;
}

/* A domain of this VM that is still running (orchd was restarted, even by kill -9) is
 * adopted when it is ours, i.e. its control channel is this VM's socket: the supervisor
 * says hello again with its running tasks, and orchd reconciles them. Anything else with
 * the name is destroyed. Returns 1 when adopted, 0 when a fresh start is needed. */
static int adopt_or_clear(struct lvb *l, struct orch_error *err)
{
	const char *name = l->vm->cfg->name;
	virDomainPtr old = virDomainLookupByName(l->conn, l->domain);
	if (!old)
		return 0;
	bool ours = false;
	if (virDomainIsActive(old) == 1) {
		_cleanup_free_ char *xml = virDomainGetXMLDesc(old, 0);
		_cleanup_free_ char *want = NULL;
		char cid[48];
		snprintf(cid, sizeof(cid), "<cid auto='no' address='%u'/>", l->cid);
		if (xml && asprintf(&want, "path='%s'", l->sock) >= 0)
			ours = strstr(xml, want) != NULL;
		/* With vsock: the CID recorded for this VM. */
		if (xml && !ours && l->cid)
			ours = strstr(xml, cid) != NULL;
		if (ours) {
			l->accel = strstr(xml, "<domain type='kvm'") ? LV_ACCEL_KVM : LV_ACCEL_TCG;
			l->transport = strstr(xml, "<vsock") ? LV_TRANSPORT_VSOCK
							     : LV_TRANSPORT_VIRTIO_SERIAL;
			l->llm = strstr(xml, "orch.llm=") != NULL; /* as it was booted */
		}
	}
	if (ours) {
		l->dom = old;
		l->stopping = false;
		orch_log(ORCH_LOG_INFO, "libvirt", "adopted a running domain", "vm", name, "domain",
			 l->domain, NULL);
		int r = connect_channel(l, err);
		return r < 0 ? r : 1;
	}
	orch_log(ORCH_LOG_WARN, "libvirt", "destroying a stale domain", "vm", name, "domain",
		 l->domain, NULL);
	virDomainDestroy(old);
	virDomainFree(old);
	return 0;
}

static int lvb_start(struct vm *vm, struct orch_error *err)
{
	const struct orchd_vm_config *c = vm->cfg;
	struct lvb *l = vm->backend;
	int r;

	if (!l) {
		if (!(l = calloc(1, sizeof(*l))))
			return -ENOMEM;
		l->vm = vm;
		l->ev_id = -1;
		l->listen_fd = -1;
		l->llm_listen_fd = -1;
		vm->backend = l;
	}
	if (l->dom)
		return orch_err(err, -EBUSY, "vm %s: domain %s is already running", c->name,
				l->domain);
	l->start_ms = orch_now_ms();
	snprintf(l->domain, sizeof(l->domain), "orch-%s", c->name);
	if ((size_t)snprintf(l->dir, sizeof(l->dir), "%s/vm/%s", vm->d->cfg->state_dir, c->name) >=
	    sizeof(l->dir))
		return orch_err(err, -ENAMETOOLONG, "vm %s: state path too long", c->name);
	snprintf(l->console, sizeof(l->console), "%s/console.log", l->dir);
	snprintf(l->sock, sizeof(l->sock), "%s/chan/control.sock", l->dir);
	snprintf(l->llm_sock, sizeof(l->llm_sock), "%s/chan/llm.sock", l->dir);

	if (!l->conn) {
		if ((r = lv_connect(NULL, &l->conn, err)) < 0)
			return r;
		if ((r = lv_events_subscribe(l->conn, NULL, on_event, l, &l->ev_id, err)) < 0)
			return r;
	}
	l->cid = recorded_cid(vm);
	if ((r = adopt_or_clear(l, err)) != 0)
		return r < 0 ? r : 0;

	struct lv_image im;
	if ((r = find_image(vm, &im, err)) < 0 ||
	    (r = lv_image_check_packages(&im, vm->d->cfg->image_packages,
					 vm->d->cfg->n_image_packages, err)) < 0)
		return r;
	if ((r = orchd_mkdir_p(l->dir, 0755)) < 0)
		return orch_errno(err, r, "vm %s: cannot create %s", c->name, l->dir);
	if ((r = choose(l, &im, err)) < 0)
		return r;

	char chan[PATH_MAX + 8];
	snprintf(chan, sizeof(chan), "%s/chan", l->dir);
	if ((r = make_chan_dir(chan, err)) < 0)
		return r;
	if ((r = orchd_mkdir_p(c->workspace, 0755)) < 0)
		return orch_errno(err, r, "vm %s: cannot create workspace %s", c->name,
				  c->workspace);
	unlink(l->console); /* this boot's console only */
	unlink(l->sock);
	unlink(l->llm_sock);
	/* The LLM channel of its own when orchd answers LLM calls at all. */
	l->llm = orchd_llm_enabled(vm->d);

	/* virtio-serial: the control port, the LLM port (host side <dir>/chan/llm.sock), then
	 * one debug-shell port per agent slot (host side <dir>/chan/shell-N.sock). */
	struct port_names {
		char name[32];
		char path[PATH_MAX + 48];
	};
	int64_t n_shells = c->slots < ORCH_MAX_SLOTS ? c->slots : ORCH_MAX_SLOTS;
	struct lv_port ports[2 + ORCH_MAX_SLOTS];
	_cleanup_free_ struct port_names *pn = calloc((size_t)n_shells, sizeof(*pn));
	size_t n_ports = 0;
	if (!pn)
		return -ENOMEM;
	ports[n_ports++] = (struct lv_port){LV_PORT_CONTROL, l->sock};
	if (l->llm)
		ports[n_ports++] = (struct lv_port){LV_PORT_LLM, l->llm_sock};
	for (int64_t i = 0; i < n_shells; i++) {
		snprintf(pn[i].name, sizeof(pn[i].name), LV_PORT_SHELL_PREFIX "%lld", (long long)i);
		snprintf(pn[i].path, sizeof(pn[i].path), "%s/chan/shell-%lld.sock", l->dir,
			 (long long)i);
		unlink(pn[i].path);
		ports[n_ports++] = (struct lv_port){pn[i].name, pn[i].path};
	}
	/* The agents share, read-only on the host (made now, so agents installed later
	 * appear in the running VM too); never shared without the read-only helper. */
	char ro[PATH_MAX] = "";
	const char *agents = vm->d->cfg->agents_dir;
	bool share = orchd_mkdir_p(agents, 0755) == 0;
	if (share && lv_virtiofsd_ro_path(ro, sizeof(ro)) < 0) {
		orch_log(ORCH_LOG_WARN, "libvirt",
			 "orch-virtiofsd-ro not found: the VM gets no agents share", "vm", c->name,
			 NULL);
		share = false;
	}
	struct lv_domain_config dc = {
		.name = l->domain,
		.accel = l->accel,
		.vcpus = (unsigned)c->vcpus,
		.memory_mib = (uint64_t)c->memory_mib,
		.kernel = c->kernel ? c->kernel : im.kernel,
		.initrd = c->initrd ? c->initrd : im.initrd,
		.rootfs = im.rootfs,
		.workspace_dir = c->workspace,
		.agents_dir = share ? agents : NULL,
		.agents_path = agents,
		.agents_virtiofsd = ro,
		.console_log = l->console,
		.transport = l->transport,
		.cid = l->cid,
		.vsock_port = LV_VSOCK_PORT(l->cid),
		.vsock_llm_port = LV_VSOCK_PORT(l->cid) + 1,
		.ports = l->transport == LV_TRANSPORT_VIRTIO_SERIAL ? ports : NULL,
		.n_ports = l->transport == LV_TRANSPORT_VIRTIO_SERIAL ? n_ports : 0,
		.shells = true,
		.llm = l->llm,
	};
	_cleanup_free_ char *base = NULL, *cmdline = NULL;
	if (asprintf(&base, "%s root=/dev/vda rootfstype=%s orch.uidbase=%lld%s",
		     c->cmdline ? c->cmdline : LV_DEFAULT_CMDLINE, im.rootfs_type,
		     (long long)vm->d->cfg->uid_base,
		     orch_log_level >= ORCH_LOG_DEBUG ? " orch.loglevel=debug" : "") < 0)
		return -ENOMEM;
	if ((r = lv_kernel_cmdline(base, &dc, (unsigned)c->slots, &cmdline, err)) < 0)
		return orch_err_prefix(err, "vm %s", c->name);
	dc.cmdline = cmdline;

	l->stopping = false;
	if ((r = lv_domain_start(l->conn, &dc, false, &l->dom, err)) < 0)
		return r; /* nothing ran yet: libvirt's message says why */
	orch_log(ORCH_LOG_INFO, "libvirt", "domain started", "vm", c->name, "domain", l->domain,
		 "accel", lv_accel_name(l->accel), NULL);

	return connect_channel(l, err);
}

static void lvb_stop(struct vm *vm, bool force)
{
	struct lvb *l = vm->backend;
	struct orch_error err = {0};
	if (!l || !l->dom)
		return;
	/* The guest keeps nothing that a power cut would lose (the root is read-only, the
	 * workspace is the host's own directory), so a stop is a destroy. */
	l->stopping = true;
	if (lv_domain_stop(l->dom, true, &err) < 0)
		orch_log(ORCH_LOG_WARN, "libvirt", "cannot stop domain", "vm", vm->cfg->name,
			 "error", err.msg, NULL);
	drop_domain(l);
}

static void lvb_free(struct vm *vm)
{
	struct lvb *l = vm->backend;
	if (!l)
		return;
	lvb_stop(vm, true);
	orch_io_free(l->listen_io);
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	orch_io_free(l->llm_listen_io);
	if (l->llm_listen_fd >= 0)
		close(l->llm_listen_fd);
	if (l->conn) {
		lv_events_unsubscribe(l->conn, l->ev_id);
		virConnectClose(l->conn);
	}
	free(l);
	vm->backend = NULL;
}

static const char *lvb_console_path(const struct vm *vm)
{
	const struct lvb *l = vm->backend;
	return l && l->console[0] ? l->console : NULL;
}

static void lvb_describe(const struct vm *vm, json_t *obj)
{
	const struct lvb *l = vm->backend;
	if (!l)
		return;
	json_object_set_new(obj, "domain", json_string(l->domain));
	json_object_set_new(obj, "running", json_boolean(l->dom != NULL));
	if (l->dom) {
		json_object_set_new(obj, "accel", json_string(lv_accel_name(l->accel)));
		json_object_set_new(obj, "transport", json_string(lv_transport_name(l->transport)));
		if (l->transport == LV_TRANSPORT_VSOCK)
			json_object_set_new(obj, "cid", json_integer(l->cid));
	}
	if (l->console[0])
		json_object_set_new(obj, "console", json_string(l->console));
}

const struct orchd_backend_ops orchd_backend_libvirt = {
	.name = "libvirt",
	.init = lvb_init,
	.start = lvb_start,
	.stop = lvb_stop,
	.free = lvb_free,
	.console_path = lvb_console_path,
	.describe = lvb_describe,
};
