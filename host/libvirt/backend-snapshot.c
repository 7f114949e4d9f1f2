/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshot templates of pooled classes, and their VMs restored from them (docs/VM.md,
 * "Snapshots"; snapshot.h for the mechanism).
 *
 * A class with vms.<name>.snapshot has one template at a time, <state_dir>/vm/<class>.tmpl/
 * (template.save, the XML it holds, and the key it was made for: its domain XML and the
 * image's stamp). It is made in the background the first time one of the class's VMs
 * starts and finds none for its configuration (that VM boots cold meanwhile): a domain
 * orch-<class>.tmpl boots without shares, its frozen supervisor (vm.freeze after hello)
 * is left without its host, and libvirt saves it (the domain goes). From then on the
 * class's VMs are restored from it (paused, their shares hot-plugged, resumed) and thawed
 * after their hello (vm.thaw: fresh entropy, the clock, their name, the shares mounted).
 * A template that fails is tried again after a minute; one whose key no longer matches
 * (the config or the image changed) is made again. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend-libvirt.h"
#include "backend-snapshot.h"
#include "cid.h"
#include "console.h"
#include "domain.h"
#include "lanes.h"
#include "log.h"
#include "orchd.h"
#include "peer.h"
#include "reaper.h"
#include "save-image.h"
#include "save-stream.h"
#include "snapshot.h"

#define TMPL_RETRY_MS 60000
#define TMPL_KEY_MAX (1024 * 1024)

enum tmpl_state { TMPL_NONE = 0, TMPL_MAKING, TMPL_READY, TMPL_FAILED };
static const char *const tmpl_state_names[] = {"none", "making", "ready", "failed"};

struct lv_template {
	enum lvb_owner owner; /* LVB_OWNER_TEMPLATE: lanes.h hands it back */
	struct orchd *d;
	const struct orchd_vm_config *cls;
	enum tmpl_state state;
	char name[ORCHD_NAME_MAX + 8]; /* <class>.tmpl */
	char dir[PATH_MAX], save[PATH_MAX + 32], xml_path[PATH_MAX + 32], key_path[PATH_MAX + 32];
	char *key; /* what it is (being) made for */
	char *xml; /* TMPL_READY: the domain XML it holds, for clones */
	virConnectPtr conn;
	virDomainPtr dom;
	struct lv_peer *peer;
	struct orch_timer *timer; /* the boot timeout, then the save */
	bool freeze_sent, freeze_done, freeze_ok, saving;
	bool serial;		     /* its channel is virtio-serial (not vsock) */
	uint64_t host_gone_ms;	     /* when its host end closed, before the save (0: not yet) */
	struct lv_restore *save_job; /* a child saves it (reaper.h) */
	bool bzimage;		     /* booted from a bzImage: saved without its RAM's zero pages */
	uint32_t cid;		     /* vsock */
	bool registered;	     /* vsock: its CID's connections come here */
	char console[PATH_MAX + 32], sock[PATH_MAX + 32];
	uint64_t started_ms, took_ms, retry_after;
	int64_t restores;
	char error[256];
};

/* ---- files ---- */

static char *slurp(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > TMPL_KEY_MAX)
		return NULL;
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size) {
		free(buf);
		return NULL;
	}
	buf[st.st_size] = 0;
	return buf;
}

static int spit(const char *path, const char *text)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n || fsync(fd) < 0 || rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r ? r : -EIO;
	}
	return 0;
}

static void forget_files(struct lv_template *t)
{
	unlink(t->save);
	unlink(t->xml_path);
	unlink(t->key_path);
	free(t->xml);
	t->xml = NULL;
}

/* ---- the registry ---- */

static struct lv_template *template_of(struct orchd *d, const struct orchd_vm_config *cls)
{
	struct lvb_state *s = lvb_state(d);

	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->t[i]->cls == cls)
			return s->t[i];
	struct lv_template **v = realloc(s->t, (s->n + 1) * sizeof(*v));
	struct lv_template *t = calloc(1, sizeof(*t));
	if (!v || !t) {
		free(t);
		if (v)
			s->t = v;
		return NULL;
	}
	s->t = v;
	t->owner = LVB_OWNER_TEMPLATE;
	t->d = d;
	t->cls = cls;
	snprintf(t->name, sizeof(t->name), "%s.tmpl", cls->name);
	snprintf(t->dir, sizeof(t->dir), "%s/vm/%s", d->cfg->state_dir, t->name);
	snprintf(t->save, sizeof(t->save), "%s/template.save", t->dir);
	snprintf(t->xml_path, sizeof(t->xml_path), "%s/template.xml", t->dir);
	snprintf(t->key_path, sizeof(t->key_path), "%s/template.key", t->dir);
	snprintf(t->console, sizeof(t->console), "%s/console.log", t->dir);
	snprintf(t->sock, sizeof(t->sock), "%s/chan/control.sock", t->dir);
	s->t[s->n++] = t;
	return t;
}

/* The domain configuration of the class's template for a VM's choices. */
static int template_domain(struct lv_template *t, const struct lvb *l, const struct lv_image *im,
			   bool dry, struct lvb_domain **ret, struct orch_error *err)
{
	struct lvb_domain_in in = {
		.d = t->d,
		.c = t->cls,
		.name = t->name,
		.im = im,
		.accel = l->accel,
		.transport = l->transport,
		.cid = t->cid,
		.llm = l->llm,
		.egress = l->egress,
		.template = true,
		.dry = dry,
	};
	return lvb_domain_new(&in, ret, err);
}

/* What a template for these choices is made for: its domain XML and the image's stamp. */
static char *template_key(struct lv_template *t, const struct lvb *l, const struct lv_image *im,
			  struct orch_error *err)
{
	_cleanup_(lvb_domain_freep) struct lvb_domain *dom = NULL;
	_cleanup_free_ char *xml = NULL, *stamp_path = NULL, *stamp = NULL;
	char *key = NULL;

	if (template_domain(t, l, im, true, &dom, err) < 0 ||
	    lv_domain_xml(&dom->dc, &xml, err) < 0)
		return NULL;
	if (asprintf(&stamp_path, "%s/stamp", im->dir) < 0)
		return NULL;
	stamp = slurp(stamp_path);
	if (asprintf(&key, "%s\nimage %s\n", xml, stamp ? stamp : "(no stamp)\n") < 0)
		return NULL;
	return key;
}

/* ---- making one ---- */

static void template_fail(struct lv_template *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void template_drop(struct lv_template *t)
{
	struct orch_error err = {0};

	if (t->registered && t->d->lv_lanes)
		lv_lanes_unregister(t->d->lv_lanes, t->cid);
	t->registered = false;
	lv_peer_free(t->peer);
	t->peer = NULL;
	if (t->save_job) { /* its files are forgotten after */
		lv_restore_cancel(t->save_job);
		t->save_job = NULL;
	}
	if (t->dom) {
		lv_domain_stop(t->dom, true, &err);
		virDomainFree(t->dom);
		t->dom = NULL;
	}
}

static void template_fail(struct lv_template *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof(t->error), fmt, ap);
	va_end(ap);
	orch_log(ORCH_LOG_WARN, "libvirt", "cannot make the snapshot template", "class",
		 t->cls->name, "error", t->error, NULL);
	template_drop(t);
	forget_files(t);
	t->state = TMPL_FAILED;
	t->retry_after = orch_now_ms() + TMPL_RETRY_MS;
}

/* The template saved (by a child, or in line): its XML and key written, it is ready. */
static void template_saved(struct lv_template *t, uint64_t dropped)
{
	struct orch_error err = {0};
	_cleanup_free_ char *xml = NULL;

	virDomainFree(t->dom); /* saved: the domain is gone */
	t->dom = NULL;
	if (t->registered && t->d->lv_lanes)
		lv_lanes_unregister(t->d->lv_lanes, t->cid);
	t->registered = false;
	if (lv_save_image_xml(t->save, &xml, &err) < 0) {
		template_fail(t, "%s", err.msg);
		return;
	}
	int r = spit(t->xml_path, xml);
	if (r == 0)
		r = spit(t->key_path, t->key);
	if (r < 0) {
		template_fail(t, "cannot write %s: %s", t->dir, strerror(-r));
		return;
	}
	t->xml = TAKE_PTR(xml);
	t->state = TMPL_READY;
	t->took_ms = orch_now_ms() - t->started_ms;
	t->error[0] = 0;
	char ms[24], zero[24];
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)t->took_ms);
	snprintf(zero, sizeof(zero), "%llu", (unsigned long long)dropped);
	orch_log(ORCH_LOG_INFO, "libvirt", "snapshot template made", "class", t->cls->name, "ms",
		 ms, "zero_pages_left_out", zero, NULL);
}

static void on_template_saved(int r, const char *said, void *data)
{
	struct lv_template *t = data;
	const char *n = said ? strstr(said, LV_SAVE_SAID_DROPPED) : NULL;

	t->save_job = NULL;
	if (r < 0) {
		template_fail(t, "%s", said ? said : "the save failed");
		return;
	}
	template_saved(t, n ? strtoull(n + strlen(LV_SAVE_SAID_DROPPED), NULL, 10) : 0);
}

static void template_save(struct lv_template *t)
{
	struct orch_error err = {0};
	char uuid[VIR_UUID_STRING_BUFLEN];

	/* Without its host the frozen supervisor redials every few milliseconds: each
	 * restored copy finds its own host at once. Over virtio-serial the save waits until
	 * the guest has seen its host go (it closed its end of the port, which libvirt shows):
	 * a snapshot taken before would hold a supervisor that believes its channel up, and a
	 * copy whose host connects before QEMU tells it otherwise waits SV_FROZEN_THAW_WAIT_MS
	 * (2 s) for a vm.thaw on a channel nobody holds. */
	if (!t->host_gone_ms) {
		lv_peer_free(t->peer);
		t->peer = NULL;
		t->host_gone_ms = orch_now_ms();
	}
	if (t->serial && lv_domain_channel_state(t->dom, LV_PORT_CONTROL) == 1 &&
	    orch_now_ms() - t->host_gone_ms < LV_SNAPSHOT_HOST_GONE_MS) {
		orch_timer_rearm(t->timer, LV_SNAPSHOT_HOST_GONE_POLL_MS);
		return;
	}
	/* Saved by a child (reaper.h): QEMU writes the guest's memory, then the image is
	 * rewritten without its zero pages, most of a second or more. */
	struct lvb_state *st = lvb_state(t->d);
	if (st && st->reaper && virDomainGetUUIDString(t->dom, uuid) == 0) {
		struct lv_save_in in = {.uuid = uuid, .path = t->save, .drop_zero = t->bzimage};
		if (lv_reaper_save(st->reaper, &in, on_template_saved, t, &t->save_job, &err) == 0)
			return;
		orch_log(ORCH_LOG_WARN, "libvirt", "saving the snapshot template in line", "class",
			 t->cls->name, "error", err.msg, NULL);
		err = (struct orch_error){0};
	}
	uint64_t dropped = 0;
	if (lv_snapshot_save(t->dom, t->save, t->bzimage, NULL, &dropped, &err) < 0) {
		template_fail(t, "%s", err.msg);
		return;
	}
	template_saved(t, dropped);
}

static void on_template_timer(struct orch_loop *loop, struct orch_timer *timer, void *data)
{
	struct lv_template *t = data;

	if (t->state != TMPL_MAKING)
		return;
	if (t->freeze_done && t->freeze_ok) {
		template_save(t);
		return;
	}
	struct orch_error err = {0};
	lv_console_error(&err, -ETIMEDOUT, t->console,
			 t->freeze_done ? "vm.freeze refused" : "no hello within boot_timeout_ms");
	template_fail(t, "%s", err.msg);
}

/* The template's channel: hello, then vm.freeze; the save runs from the timer (never
 * inside the peer's own callback, which it frees). */
static void on_peer_change(struct lv_peer *p, void *data)
{
	struct lv_template *t = data;
	const struct lv_peer_state *st = lv_peer_state(p);

	if (t->state != TMPL_MAKING || t->saving)
		return;
	if (t->freeze_done) {
		t->saving = true;
		orch_timer_rearm(t->timer, 0);
		return;
	}
	if (st->closed) {
		t->freeze_done = true;
		t->freeze_ok = false;
		orch_timer_rearm(t->timer, 0);
		return;
	}
	if (st->hello && !t->freeze_sent) {
		t->freeze_sent = true;
		if (lv_peer_freeze(p, &t->freeze_done, &t->freeze_ok) < 0) {
			t->freeze_done = true;
			orch_timer_rearm(t->timer, 0);
		}
	}
}

int lvb_template_lane_conn(void *owner, int lane, int fd, struct orch_error *err)
{
	struct lv_template *t = owner;

	if (lane != LV_LANE_CONTROL || t->peer || t->state != TMPL_MAKING) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP,
				"the snapshot template of %s takes one control "
				"connection",
				t->cls->name);
	}
	return lv_peer_new(t->d->loop, fd, t->name, on_peer_change, t, &t->peer, err);
}

static void template_make(struct lv_template *t, const struct lvb *l, const struct lv_image *im,
			  char *key)
{
	struct orch_error err = {0};
	_cleanup_(lvb_domain_freep) struct lvb_domain *dom = NULL;
	int r;

	free(t->key);
	t->key = key;
	forget_files(t);
	t->state = TMPL_MAKING;
	t->started_ms = orch_now_ms();
	t->freeze_sent = t->freeze_done = t->freeze_ok = t->saving = false;
	t->host_gone_ms = 0;
	t->bzimage = lv_kernel_is_bzimage(im->kernel);
	t->serial = l->transport != LV_TRANSPORT_VSOCK;
	orch_log(ORCH_LOG_INFO, "libvirt", "making a snapshot template", "class", t->cls->name,
		 NULL);
	if (!t->conn && lv_connect(NULL, &t->conn, &err) < 0) {
		template_fail(t, "%s", err.msg);
		return;
	}
	char dname[ORCHD_NAME_MAX + 16];
	snprintf(dname, sizeof(dname), "orch-%s", t->name);
	virDomainPtr old = virDomainLookupByName(t->conn, dname);
	if (old) { /* an earlier orchd's, given up */
		virDomainDestroy(old);
		virDomainFree(old);
	}
	if ((r = template_domain(t, l, im, false, &dom, &err)) < 0 ||
	    (r = lv_domain_start(t->conn, &dom->dc, true, &t->dom, &err)) < 0) {
		template_fail(t, "%s", err.msg);
		return;
	}
	if (!t->timer && orch_timer_add(t->d->loop, 0, 0, on_template_timer, t, &t->timer) < 0) {
		template_fail(t, "cannot arm a timer");
		return;
	}
	orch_timer_rearm(t->timer, (uint64_t)t->cls->boot_timeout_ms);
	if (l->transport == LV_TRANSPORT_VSOCK) {
		if ((r = lvb_lanes_open(t->d, &err)) < 0 ||
		    (r = lv_lanes_register(t->d->lv_lanes, t->cid, t)) < 0) {
			template_fail(t, "vsock lanes: %s", r == -EEXIST ? "CID taken" : err.msg);
			return;
		}
		t->registered = true;
		return; /* the guest dials in */
	}
	int fd = lv_dial_unix(t->sock, 5000, &err);
	if (fd < 0 || lv_peer_new(t->d->loop, fd, t->name, on_peer_change, t, &t->peer, &err) < 0)
		template_fail(t, "%s", err.msg);
}

/* ---- VMs restored from it ---- */

/* The child restored the domain, paused, its shares attached: its channel, then resume. */
static void on_restored(int r, const char *error, void *data)
{
	struct lvb *l = data;
	struct vm *vm = l->vm;
	struct orch_error err = {0};

	l->starting = NULL;
	if (r < 0) {
		orch_err(&err, r, "vm %s: %s", vm->cfg->name, error ? error : "restore failed");
		goto fail;
	}
	if (!lvb_take_domain(l)) {
		orch_err(&err, -EIO, "vm %s: the restored domain %s is not there", vm->cfg->name,
			 l->domain);
		goto fail;
	}
	/* Resumed before its channel is dialled: QEMU tells the guest whether its host is
	 * connected only at the first tick after the resume, by comparing with the state it
	 * was saved in (connected). Dialled first, the host was often already there: the
	 * frozen supervisor saw no change, believed its template's channel still up and
	 * waited 2 s for a vm.thaw before it dialled again. Dialled after, it sees its host
	 * leave and come back, and says hello at once. */
	if (virDomainResume(l->dom) < 0) {
		orch_err(&err, -EIO, "vm %s: cannot resume the restored domain: %s", vm->cfg->name,
			 lv_last_error());
		goto fail;
	}
	if (lvb_connect_channel(l, &err) < 0)
		goto fail;
	l->from->restores++;
	char ms[24];
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(orch_now_ms() - l->start_ms));
	orch_log(ORCH_LOG_INFO, "libvirt", "domain restored from the snapshot", "vm", vm->cfg->name,
		 "domain", l->domain, "ms", ms, NULL);
	return;
fail:
	/* Restored but unusable: gone, it fails like a boot (vm_gone stops l->dom). */
	if (!l->dom && r == 0 && vm->d->lv_state && vm->d->lv_state->reaper) {
		struct orch_error kerr = {0};
		lv_reaper_destroy(vm->d->lv_state->reaper, l->uuid, &kerr);
	}
	vm_gone(vm, err.msg);
}

/* Starts the restore in a child (reaper.h): returns 1, or < 0 when none could start. */
static int restore(struct lv_template *t, struct lvb *l, const struct lv_image *im,
		   struct orch_error *err)
{
	const struct orchd_vm_config *c = l->vm->cfg;
	struct lvb_state *st = lvb_state(l->vm->d);
	char uuid[LV_UUID_LEN + 1];
	_cleanup_free_ char *xml = NULL, *ws_xml = NULL, *ag_xml = NULL;
	_cleanup_(lvb_domain_freep) struct lvb_domain *dom = NULL;
	struct lvb_domain_in in = {
		.d = l->vm->d,
		.c = c,
		.name = c->name,
		.im = im,
		.accel = l->accel,
		.transport = l->transport,
		.cid = l->cid,
		.llm = l->llm,
		.egress = l->egress,
	};
	int r;

	if (!st || !st->reaper)
		return orch_err(err, -ENOMEM, "vm %s: out of memory", c->name);
	if ((r = lvb_domain_new(&in, &dom, err)) < 0 || (r = lv_uuid_new(uuid)) < 0)
		return r < 0 && r != -EIO ? r : orch_err(err, -EIO, "cannot make a UUID");
	struct lv_clone clone = {
		.name = l->domain,
		.uuid = uuid,
		.from_dir = t->dir,
		.to_dir = l->dir,
		.cid = l->transport == LV_TRANSPORT_VSOCK ? l->cid : 0,
	};
	struct lv_fs_config ws = {
		.dir = c->workspace, .tag = LV_WORKSPACE_TAG_DEFAULT, .virtiofsd = dom->virtiofsd};
	struct lv_fs_config ag = {.dir = l->vm->d->cfg->agents_dir,
				  .tag = LV_AGENTS_TAG,
				  .virtiofsd = dom->ro_virtiofsd};
	if ((r = lv_clone_xml(t->xml, &clone, &xml, err)) < 0 ||
	    (r = lv_filesystem_xml(&ws, &ws_xml, err)) < 0 ||
	    (dom->agents_share && (r = lv_filesystem_xml(&ag, &ag_xml, err)) < 0))
		return orch_err_prefix(err, "vm %s", c->name);
	struct lv_restore_in rin = {
		.save = t->save,
		.xml = xml,
		.name = l->domain,
		.uuid = uuid,
		.fs_xml = {ws_xml, ag_xml},
		.n_fs = ag_xml ? 2 : 1,
	};
	if ((r = lv_reaper_restore(st->reaper, &rin, on_restored, l, &l->starting, err)) < 0)
		return orch_err_prefix(err, "vm %s", c->name);
	snprintf(l->uuid, sizeof(l->uuid), "%s", uuid);
	l->from = t;
	l->restored = true;
	l->agents_share = dom->agents_share;
	return 1;
}

int lvb_snapshot_start(struct lvb *l, const struct lv_image *im, struct orch_error *err)
{
	struct orchd *d = l->vm->d;
	const struct orchd_vm_config *cls = orchd_config_vm(d->cfg, vm_class_name(l->vm));
	struct lv_template *t = cls ? template_of(d, cls) : NULL;
	struct orch_error kerr = {0};

	if (!t)
		return 0;
	if (l->transport == LV_TRANSPORT_VSOCK && !t->cid) {
		_cleanup_free_ char *path = NULL;
		struct lv_cid_file *f = NULL;
		if (asprintf(&path, "%s/vm/cids.json", d->cfg->state_dir) >= 0 &&
		    lv_cid_file_open(path, &f, &kerr) == 0) {
			struct lv_cid_store st = lv_cid_file_store(f);
			if (lv_cid_for_vm(&st, t->name, &t->cid, &kerr) < 0)
				t->cid = 0;
			lv_cid_file_free(f);
		}
	}
	char *key = template_key(t, l, im, &kerr);
	if (!key) {
		orch_log(ORCH_LOG_WARN, "libvirt", "no snapshot for this VM", "vm",
			 l->vm->cfg->name, "error", kerr.msg[0] ? kerr.msg : "out of memory", NULL);
		return 0;
	}
	if (t->state == TMPL_NONE) { /* an earlier orchd's, if it fits */
		_cleanup_free_ char *old = slurp(t->key_path);
		if (old && !strcmp(old, key) && access(t->save, R_OK) == 0 &&
		    (t->xml = slurp(t->xml_path))) {
			t->key = strdup(key);
			t->state = t->key ? TMPL_READY : TMPL_NONE;
		}
	}
	if (t->state == TMPL_READY && !strcmp(t->key, key)) {
		free(key);
		return restore(t, l, im, err);
	}
	/* None that fits: this VM boots, and one is made for the next ones. */
	if (t->state == TMPL_READY)
		t->state = TMPL_NONE;
	if (t->state == TMPL_NONE || (t->state == TMPL_FAILED && orch_now_ms() >= t->retry_after)) {
		template_make(t, l, im, key);
		return 0;
	}
	free(key);
	return 0;
}

/* ---- after the restore ---- */

int lvb_thaw(struct vm *vm, bool frozen, struct orch_vm_thaw *ret, struct orch_error *err)
{
	struct lvb *l = vm->backend;

	if (!l || (!l->restored && !frozen))
		return 0;
	if (!frozen)
		return orch_err(err, -EPROTO,
				"vm %s was restored from a snapshot, but its supervisor does not "
				"wait for vm.thaw (was it restarted?)",
				vm->cfg->name);
	if (!l->restored && l->dom) { /* adopted before its thaw: its shares say which */
		_cleanup_free_ char *xml = virDomainGetXMLDesc(l->dom, 0);
		l->agents_share = xml && strstr(xml, "<target dir='" LV_AGENTS_TAG "'/>");
		l->restored = true;
	}
	*ret = (struct orch_vm_thaw){.name = vm->cfg->name};
	ret->mounts[ret->n_mounts++] =
		(struct orch_thaw_mount){LV_WORKSPACE_TAG_DEFAULT, "/workspace", false};
	if (l->agents_share)
		ret->mounts[ret->n_mounts++] =
			(struct orch_thaw_mount){LV_AGENTS_TAG, vm->d->cfg->agents_dir, true};
	return 1;
}

void lvb_snapshot_describe(struct orchd *d, const struct orchd_vm_config *cls, json_t *obj)
{
	struct lvb_state *s = d->lv_state;
	const struct lv_template *t = NULL;

	for (size_t i = 0; s && i < s->n; i++)
		if (s->t[i]->cls == cls)
			t = s->t[i];
	json_object_set_new(obj, "snapshot",
			    json_pack("{s:s, s:I, s:I, s:o}", "state",
				      tmpl_state_names[t ? t->state : TMPL_NONE], "took_ms",
				      (json_int_t)(t ? t->took_ms : 0), "restores",
				      (json_int_t)(t ? t->restores : 0), "error",
				      t && t->error[0] ? json_string(t->error) : json_null()));
}

void lvb_state_free(struct orchd *d)
{
	struct lvb_state *s = d->lv_state;

	if (!s)
		return;
	lv_reaper_free(s->reaper);
	for (size_t i = 0; i < s->n; i++) {
		struct lv_template *t = s->t[i];
		if (t->state == TMPL_MAKING) { /* given up: the next orchd makes it again */
			template_drop(t);
			forget_files(t);
		}
		orch_timer_free(t->timer);
		if (t->conn)
			virConnectClose(t->conn);
		free(t->key);
		free(t->xml);
		free(t);
	}
	free(s->t);
	free(s);
	d->lv_state = NULL;
}

struct lvb_state *lvb_state(struct orchd *d)
{
	if (!d->lv_state && (d->lv_state = calloc(1, sizeof(*d->lv_state))) &&
	    lv_reaper_new(d->loop, &d->lv_state->reaper) < 0)
		d->lv_state->reaper = NULL; /* domains are destroyed in line then */
	return d->lv_state;
}
