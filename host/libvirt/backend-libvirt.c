/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt backend (host/core/backend.h): every VM is a transient libvirt domain named
 * "orch-<vm>" booted from the guest image, its supervisor reached over the virtio-serial
 * control port (a unix socket libvirt binds under <state_dir>/vm/<vm>/chan/, a directory
 * only root and QEMU can enter) or, with vsock, dialling orchd's lanes (lanes.h: reserved
 * host ports shared by all VMs, connections dispatched by the peer CID). Readiness is the
 * supervisor's hello (vm.c); this file adds the boot timeout (with the console's tail in
 * the error) and turns libvirt lifecycle events into vm_gone. Compiled into orchd. */
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

#include "backend-libvirt.h"
#include "backend.h"
#include "fs-util.h"
#include "choose.h"
#include "cid.h"
#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "virt-event-loop.h"
#include "events.h"
#include "image.h"
#include "lanes.h"
#include "log.h"
#include "orch-config.h"
#include "orchd.h"
#include "reaper.h"
#include "snapshot.h"
#include "transport.h"
#include "virtiofsd.h"
#include "workspace-dirs.h"

#define LV_PROBE_TIMEOUT_MS 10000

static void lanes_unregister(struct lvb *l)
{
	if (l->registered && l->vm->d->lv_lanes)
		lv_lanes_unregister(l->vm->d->lv_lanes, l->cid);
	l->registered = false;
}

static int lvb_init(struct orchd *d, struct orch_error *err)
{
	/* libvirt's events (lifecycle, keepalive) run on orchd's loop. */
	int r = orchd_event_libvirt_register(d->loop);
	if (r < 0 && r != -EALREADY)
		return orch_errno(err, r, "cannot register the event loop with libvirt");
	return 0;
}

/* orchd stops: its vsock lanes close (the VMs' domains keep running to be adopted). */
static void lvb_shutdown(struct orchd *d)
{
	lvb_state_free(d);
	lv_lanes_free(d->lv_lanes);
	d->lv_lanes = NULL;
}

static void drop_domain(struct lvb *l)
{
	lanes_unregister(l); /* its CID may go to someone else's VM now */
	orch_timer_free(l->boot_timer);
	l->boot_timer = NULL;
	lvb_memory_free(l);
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
int lvb_find_image(struct orchd *d, struct lv_image *ret, struct orch_error *err)
{
	_cleanup_free_ char *out = NULL, *state = NULL, *data = NULL, *src = NULL;
	const char *o = getenv("ORCH_VM_OUT");
	if ((o && o[0] && asprintf(&out, "%s/image", o) < 0) ||
	    asprintf(&state, "%s/image", d->cfg->state_dir) < 0 ||
	    asprintf(&data, "%s/image", ORCH_DATADIR) < 0 ||
	    asprintf(&src, "%s/vm-images/out/image", ORCH_SOURCEDIR) < 0)
		return -ENOMEM;
	const char *cands[] = {getenv("ORCH_VM_IMAGE"), out, state, data, src};
	return lv_image_find(cands, ELEMENTSOF(cands), ret, err);
}

/* The directory for the channel sockets: QEMU (libvirt's qemu user) binds them, and
 * nobody but root and QEMU may enter it (the debug shells' ports are here: users reach
 * them only through orchd's relay, shell-relay.c). */
int lvb_make_chan_dir(const char *dir, struct orch_error *err)
{
	struct passwd *pw = getpwnam("libvirt-qemu");
	int r = orchd_dir_private(dir, pw ? pw->pw_uid : 0, 0, 0750);
	if (r < 0)
		return orch_errno(err, r, "cannot make %s (libvirt-qemu:root, 0750)", dir);
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
	bool fell_back = false;
	lv_transport_choose(forced, NULL, &l->transport, why, sizeof(why));
	if (l->transport == LV_TRANSPORT_VSOCK) {
		struct orch_error lerr = {0};
		int r = lvb_lanes_open(l->vm->d, &lerr);
		if (r < 0 && forced)
			return orch_err(err, r, "vm %s: transport vsock: %s", c->name, lerr.msg);
		if (r < 0) {
			snprintf(why, sizeof(why), "vsock unusable: %.200s", lerr.msg);
			l->transport = LV_TRANSPORT_VIRTIO_SERIAL;
			fell_back = true;
		}
	}
	orch_log(fell_back ? ORCH_LOG_WARN : ORCH_LOG_INFO, "libvirt",
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

/* The guest was booted with an LLM channel (orch.llm=) and orchd can serve it (an adopted
 * domain may have been booted by an orchd with an LLM proxy that this one lacks). */
static bool want_llm(const struct lvb *l)
{
	return l->llm && orchd_lane_wanted(l->vm->d, ORCHD_LANE_LLM);
}

/* The VM runs without its LLM channel (its agents' LLM calls get 503): said, not fatal. */
static void llm_channel_failed(struct lvb *l, const struct orch_error *err)
{
	orch_log(ORCH_LOG_WARN, "libvirt", "no LLM channel", "vm", l->vm->cfg->name, "error",
		 err->msg, NULL);
}

/* A connection on one of orchd's vsock lanes from this VM's CID. The CID alone says
 * which VM it is, as long as this VM's domain holds it: while the domain runs, nobody
 * else can start a guest with that CID. */
static int on_lane_conn(void *owner, enum lv_lane lane, int fd, const struct orch_vsock_peer *peer,
			struct orch_error *err)
{
	if (*(const enum lvb_owner *)owner == LVB_OWNER_TEMPLATE)
		return lvb_template_lane_conn(owner, (int)lane, fd, err);
	struct lvb *l = owner;
	if (!l->dom || virDomainIsActive(l->dom) != 1) {
		close(fd);
		return orch_err(err, -ESRCH, "vm %s: its domain is not running", l->vm->cfg->name);
	}
	if (lane == LV_LANE_LLM && !want_llm(l)) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP, "vm %s was booted without an LLM channel",
				l->vm->cfg->name);
	}
	if (lane == LV_LANE_LLM) {
		if (vm_lane_attach(l->vm, ORCHD_LANE_LLM, fd, err) < 0)
			llm_channel_failed(l, err);
		return 0;
	}
	if (lane == LV_LANE_EGRESS) {
		if (!l->egress || !orchd_lane_wanted(l->vm->d, ORCHD_LANE_EGRESS)) {
			close(fd);
			return orch_err(err, -EOPNOTSUPP, "vm %s was booted without an egress lane",
					l->vm->cfg->name);
		}
		if (vm_lane_attach(l->vm, ORCHD_LANE_EGRESS, fd, err) < 0)
			orch_log(ORCH_LOG_WARN, "libvirt", "no egress lane", "vm", l->vm->cfg->name,
				 "error", err->msg, NULL);
		return 0;
	}
	if (vm_attach_channel(l->vm, fd, err) < 0)
		orch_log(ORCH_LOG_WARN, "libvirt", "cannot attach the channel", "vm",
			 l->vm->cfg->name, "error", err->msg, NULL);
	return 0;
}

static void on_lane_refused(enum lv_lane lane, const struct orch_vsock_peer *peer, const char *why,
			    void *data)
{
	char cid[16], port[16];
	snprintf(cid, sizeof(cid), "%u", peer->cid);
	snprintf(port, sizeof(port), "%u", peer->port);
	orch_log(ORCH_LOG_WARN, "libvirt", "vsock connection refused", "lane", lv_lane_name(lane),
		 "peer_cid", cid, "peer_port", port, "why", why, NULL);
}

/* orchd's vsock lanes, opened by the first VM that uses vsock and kept for orchd's life:
 * the control port and, when orchd answers LLM calls, the LLM port (vsock.* in the
 * config). A port that cannot be bound is an error naming it. */
int lvb_lanes_open(struct orchd *d, struct orch_error *err)
{
	if (d->lv_lanes)
		return 0;
	struct lv_lanes_opts o = {
		.port = {[LV_LANE_CONTROL] = (uint32_t)d->cfg->vsock.control_port,
			 [LV_LANE_LLM] = orchd_lane_wanted(d, ORCHD_LANE_LLM)
						 ? (uint32_t)d->cfg->vsock.llm_port
						 : 0,
			 [LV_LANE_EGRESS] = orchd_lane_wanted(d, ORCHD_LANE_EGRESS)
						    ? (uint32_t)d->cfg->vsock.egress_port
						    : 0},
		.port_name = {[LV_LANE_CONTROL] = "vsock.control_port",
			      [LV_LANE_LLM] = "vsock.llm_port",
			      [LV_LANE_EGRESS] = "vsock.egress_port"},
		.listen_cid = ORCH_VSOCK_CID_ANY,
		.on_conn = on_lane_conn,
		.on_refused = on_lane_refused,
	};
	int r = lv_lanes_new(d->loop, &o, &d->lv_lanes, err);
	if (r < 0)
		return r;
	char cp[16], lp[16], ep[16];
	snprintf(cp, sizeof(cp), "%u", o.port[LV_LANE_CONTROL]);
	snprintf(lp, sizeof(lp), "%u", o.port[LV_LANE_LLM]);
	snprintf(ep, sizeof(ep), "%u", o.port[LV_LANE_EGRESS]);
	orch_log(ORCH_LOG_INFO, "libvirt", "vsock lanes listening", "control_port", cp, "llm_port",
		 o.port[LV_LANE_LLM] ? lp : "none", "egress_port",
		 o.port[LV_LANE_EGRESS] ? ep : "none", NULL);
	return 0;
}

/* vsock: the guest dials orchd's lanes; from now on its CID's connections come here. */
static int vsock_listen(struct lvb *l, struct orch_error *err)
{
	int r = lvb_lanes_open(l->vm->d, err);
	if (r < 0)
		return orch_err_prefix(err, "vm %s", l->vm->cfg->name);
	if (!l->registered) {
		r = lv_lanes_register(l->vm->d->lv_lanes, l->cid, l);
		if (r < 0)
			return orch_errno(err, r,
					  "vm %s: CID %u is taken by another VM of this orchd",
					  l->vm->cfg->name, l->cid);
		l->registered = true;
	}
	if (want_llm(l) && !lv_lanes_serves(l->vm->d->lv_lanes, LV_LANE_LLM)) {
		struct orch_error lerr = {0};
		orch_err(&lerr, -EOPNOTSUPP, "orchd's vsock LLM lane is not open");
		llm_channel_failed(l, &lerr);
	}
	return 0;
}

int lvb_connect_channel(struct lvb *l, struct orch_error *err)
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
	if (r < 0)
		return r;
	struct orch_error lerr = {0};
	if (want_llm(l) && ((fd = dial(l->llm_sock, &lerr)) < 0 ||
			    vm_lane_attach(l->vm, ORCHD_LANE_LLM, fd, &lerr) < 0))
		llm_channel_failed(l, &lerr);
	lerr = (struct orch_error){0};
	if (l->egress && orchd_lane_wanted(l->vm->d, ORCHD_LANE_EGRESS) &&
	    ((fd = dial(l->egress_sock, &lerr)) < 0 ||
	     vm_lane_attach(l->vm, ORCHD_LANE_EGRESS, fd, &lerr) < 0))
		orch_log(ORCH_LOG_WARN, "libvirt", "no egress lane", "vm", l->vm->cfg->name,
			 "error", lerr.msg, NULL);
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
		char cid[48], port[64];
		snprintf(cid, sizeof(cid), "<cid auto='no' address='%u'/>", l->cid);
		snprintf(port, sizeof(port), "orch.connect=vsock:2:%u ",
			 (unsigned)l->vm->d->cfg->vsock.control_port);
		if (xml && asprintf(&want, "path='%s'", l->sock) >= 0)
			ours = strstr(xml, want) != NULL;
		/* With vsock: the CID recorded for this VM, its guest dialling our lanes. */
		if (xml && !ours && l->cid)
			ours = strstr(xml, cid) != NULL && strstr(xml, port) != NULL;
		if (ours) {
			l->accel = strstr(xml, "<domain type='kvm'") ? LV_ACCEL_KVM : LV_ACCEL_TCG;
			l->transport = strstr(xml, "<vsock") ? LV_TRANSPORT_VSOCK
							     : LV_TRANSPORT_VIRTIO_SERIAL;
			l->llm = strstr(xml, "orch.llm=") != NULL; /* as it was booted */
			l->egress = strstr(xml, "orch.egress=") != NULL;
		}
	}
	if (ours) {
		l->dom = old;
		l->stopping = false;
		orch_log(ORCH_LOG_INFO, "libvirt", "adopted a running domain", "vm", name, "domain",
			 l->domain, NULL);
		int r = lvb_connect_channel(l, err);
		return r < 0 ? r : 1;
	}
	orch_log(ORCH_LOG_WARN, "libvirt", "destroying a stale domain", "vm", name, "domain",
		 l->domain, NULL);
	virDomainDestroy(old);
	virDomainFree(old);
	return 0;
}

bool lvb_take_domain(struct lvb *l)
{
	char uuid[VIR_UUID_STRING_BUFLEN];

	l->dom = virDomainLookupByName(l->conn, l->domain);
	if (l->dom && virDomainGetUUIDString(l->dom, uuid) == 0 && !strcmp(uuid, l->uuid))
		return true;
	if (l->dom) /* another domain of that name: not orch's to stop */
		virDomainFree(l->dom);
	l->dom = NULL;
	return false;
}

void lvb_start_cancel(struct lvb *l)
{
	if (!l->starting)
		return;
	lv_restore_cancel(l->starting);
	l->starting = NULL;
	l->uuid[0] = 0;
}

/* The child started the domain (lvb_start): its channel. */
static void on_created(int r, const char *error, void *data)
{
	struct lvb *l = data;
	struct vm *vm = l->vm;
	struct orch_error err = {0};

	l->starting = NULL;
	if (r < 0) {
		orch_err(&err, r, "%s", error ? error : "the domain could not be started");
		goto fail;
	}
	if (!lvb_take_domain(l)) {
		/* Gone at once (a QEMU that quit while starting): the console says why. */
		lv_console_error(&err, -EIO, l->console, "the started domain is not there");
		orch_err_prefix(&err, "vm %s", vm->cfg->name);
		goto fail;
	}
	char ms[24];
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(orch_now_ms() - l->start_ms));
	orch_log(ORCH_LOG_INFO, "libvirt", "domain started", "vm", vm->cfg->name, "domain",
		 l->domain, "accel", lv_accel_name(l->accel), "by", "child", "ms", ms, NULL);
	if (lvb_connect_channel(l, &err) < 0)
		goto fail;
	return;
fail:
	/* Started but unusable: it fails like a boot (vm_gone stops l->dom). */
	vm_gone(vm, err.msg);
}

static int lvb_start(struct vm *vm, struct orch_error *err)
{
	const struct orchd_vm_config *c = vm->cfg;
	struct lvb *l = vm->backend;
	int r;

	if (!l) {
		if (!(l = calloc(1, sizeof(*l))))
			return -ENOMEM;
		l->owner = LVB_OWNER_VM;
		l->vm = vm;
		l->ev_id = -1;
		vm->backend = l;
	}
	if (l->dom || l->starting)
		return orch_err(err, -EBUSY, "vm %s: domain %s is already running", c->name,
				l->domain);
	l->start_ms = orch_now_ms();
	l->restored = false;
	l->agents_share = false;
	snprintf(l->domain, sizeof(l->domain), "orch-%s", c->name);
	if ((size_t)snprintf(l->dir, sizeof(l->dir), "%s/vm/%s", vm->d->cfg->state_dir, c->name) >=
	    sizeof(l->dir))
		return orch_err(err, -ENAMETOOLONG, "vm %s: state path too long", c->name);
	snprintf(l->console, sizeof(l->console), "%s/console.log", l->dir);
	snprintf(l->sock, sizeof(l->sock), "%s/chan/control.sock", l->dir);
	snprintf(l->llm_sock, sizeof(l->llm_sock), "%s/chan/llm.sock", l->dir);
	snprintf(l->egress_sock, sizeof(l->egress_sock), "%s/chan/egress.sock", l->dir);

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
	if ((r = lvb_find_image(vm->d, &im, err)) < 0 ||
	    (r = lv_image_check_packages(&im, vm->d->cfg->image_packages,
					 vm->d->cfg->n_image_packages, err)) < 0)
		return r;
	if ((r = orchd_mkdir_p(l->dir, 0755)) < 0)
		return orch_errno(err, r, "vm %s: cannot create %s", c->name, l->dir);
	if ((r = choose(l, &im, err)) < 0)
		return r;
	/* The LLM channel of its own when orchd answers LLM calls at all; the egress lane
	 * when orchd has an egress gateway. */
	l->llm = orchd_lane_wanted(vm->d, ORCHD_LANE_LLM);
	l->egress = orchd_lane_wanted(vm->d, ORCHD_LANE_EGRESS);
	l->stopping = false;
	if (c->snapshot && (r = lvb_snapshot_start(l, &im, err)) != 0)
		return r < 0 ? r : 0;

	struct lvb_domain_in in = {
		.d = vm->d,
		.c = c,
		.name = c->name,
		.im = &im,
		.accel = l->accel,
		.transport = l->transport,
		.cid = l->cid,
		.llm = l->llm,
		.egress = l->egress,
	};
	_cleanup_(lvb_domain_freep) struct lvb_domain *dom = NULL;
	if ((r = lvb_domain_new(&in, &dom, err)) < 0)
		return r;
	l->agents_share = dom->agents_share;
	/* Started by a child (reaper.h): libvirt's create blocks until QEMU runs. */
	struct lvb_state *st = lvb_state(vm->d);
	char uuid[LV_UUID_LEN + 1];
	_cleanup_free_ char *xml = NULL;
	if (st && st->reaper && lv_uuid_new(uuid) == 0) {
		dom->dc.uuid = uuid;
		if ((r = lv_domain_xml(&dom->dc, &xml, err)) < 0)
			return orch_err_prefix(err, "vm %s", c->name);
		struct lv_restore_in job = {.name = l->domain, .uuid = uuid, .xml = xml};
		if (lv_reaper_create(st->reaper, &job, on_created, l, &l->starting, err) == 0) {
			snprintf(l->uuid, sizeof(l->uuid), "%s", uuid);
			return 0;
		}
		orch_log(ORCH_LOG_WARN, "libvirt", "starting the domain in line", "vm", c->name,
			 "error", err->msg, NULL);
		*err = (struct orch_error){0};
	}
	if ((r = lv_domain_start(l->conn, &dom->dc, false, &l->dom, err)) < 0)
		return r; /* nothing ran yet: libvirt's message says why */
	orch_log(ORCH_LOG_INFO, "libvirt", "domain started", "vm", c->name, "domain", l->domain,
		 "accel", lv_accel_name(l->accel), NULL);
	return lvb_connect_channel(l, err);
}

static void lvb_stop(struct vm *vm, bool force)
{
	struct lvb *l = vm->backend;
	struct orch_error err = {0};
	/* A restore or start under way: its child destroys the domain. */
	if (l)
		lvb_start_cancel(l);
	if (!l || !l->dom)
		return;
	/* The guest keeps nothing that a power cut would lose (the root is read-only, the
	 * workspace is the host's own directory), so a stop is a destroy. A pooled VM's name
	 * never comes back: its domain goes in a child, not blocking the loop (reaper.h). */
	l->stopping = true;
	/* Not made here: after the backend's shutdown (orchd's teardown) it is gone, and the
	 * domain goes in line. */
	struct lvb_state *st =
		vm->owner && l->uuid[0] && !vm->d->quitting ? lvb_state(vm->d) : vm->d->lv_state;
	if (st && st->reaper && lv_reaper_destroy(st->reaper, l->uuid, &err) == 0) {
		drop_domain(l);
		return;
	}
	if (lv_domain_stop(l->dom, true, &err) < 0)
		orch_log(ORCH_LOG_WARN, "libvirt", "cannot stop domain", "vm", vm->cfg->name,
			 "error", err.msg, NULL);
	drop_domain(l);
}

/* A pooled VM retired (not orchd stopping, when it is kept to be adopted): its name never
 * comes back, nor may its CID stay taken. */
static void forget_cid(struct vm *vm)
{
	_cleanup_free_ char *path = NULL;
	struct lv_cid_file *f = NULL;
	struct orch_error err = {0};
	if (!vm->owner || vm->d->quitting ||
	    asprintf(&path, "%s/vm/cids.json", vm->d->cfg->state_dir) < 0 ||
	    lv_cid_file_open(path, &f, &err) < 0)
		return;
	lv_cid_file_remove(f, vm->cfg->name);
	lv_cid_file_free(f);
}

static void lvb_free(struct vm *vm)
{
	struct lvb *l = vm->backend;
	if (!l)
		return;
	lvb_stop(vm, true);
	lanes_unregister(l);
	forget_cid(vm);
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
	if (l->restored)
		json_object_set_new(obj, "restored", json_true());
	lvb_memory_describe(l, obj);
}

static int lvb_shell_endpoint(const struct vm *vm, unsigned slot, struct orch_addr *ret,
			      struct orch_error *err)
{
	const struct lvb *l = vm->backend;
	struct orch_addr a = {0};

	if (!l || !l->dom)
		return orch_err(err, -ENOTCONN, "its domain is not running");
	if (l->transport == LV_TRANSPORT_VSOCK) {
		a.kind = ORCH_TRANSPORT_VSOCK;
		a.cid = l->cid;
		a.port = ORCH_VSOCK_SHELL_PORT_BASE + slot;
	} else {
		a.kind = ORCH_TRANSPORT_UNIX;
		if (orchd_shell_socket_path(vm->d->cfg->state_dir, vm->cfg->name, slot, a.path,
					    sizeof(a.path)) < 0)
			return orch_err(err, -ENAMETOOLONG, "its shell's socket path is too long");
	}
	*ret = a;
	return 0;
}

const struct orchd_backend_ops orchd_backend_libvirt = {
	.name = "libvirt",
	.init = lvb_init,
	.shutdown = lvb_shutdown,
	.start = lvb_start,
	.stop = lvb_stop,
	.free = lvb_free,
	.console_path = lvb_console_path,
	.describe = lvb_describe,
	.shell_endpoint = lvb_shell_endpoint,
	.thaw = lvb_thaw,
	.task_leased = lvb_task_leased,
};
