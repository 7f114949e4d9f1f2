/* SPDX-License-Identifier: Apache-2.0 */
/* vm.freeze and vm.thaw (thaw.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "dialer.h"
#include "extras.h"
#include "jail.h"
#include "llm-channel.h"
#include "log.h"
#include "schema-vm.h"
#include "supervisor.h"
#include "thaw.h"
#include "warm.h"

struct sv_thaw {
	struct supervisor *sv;
	struct orch_rpc_req *req;
	struct orch_timer *timer;
	uint64_t deadline;
	bool warm; /* a throwaway jail before the answer (warm.h) */
	size_t n_mounts;
	struct orch_thaw_mount mounts[ORCH_THAW_MAX_MOUNTS];
	char buf[ORCH_THAW_MAX_MOUNTS][ORCH_THAW_TAG_MAX + ORCH_THAW_PATH_MAX + 2];
};

int sv_reseed(const void *seed, size_t len, struct orch_error *err)
{
	_cleanup_close_ int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open /dev/urandom");
	if (len) {
		_cleanup_free_ struct rand_pool_info *info = malloc(sizeof(*info) + len + 4);
		if (!info)
			return orch_err(err, -ENOMEM, "out of memory");
		info->entropy_count = (int)(len * 8);
		info->buf_size = (int)len;
		memcpy(info->buf, seed, len);
		int r = ioctl(fd, RNDADDENTROPY, info);
		r = r < 0 ? -errno : 0;
		explicit_bzero(info->buf, len);
		if (r < 0)
			return orch_errno(err, r, "cannot add the host's seed (RNDADDENTROPY)");
	}
	if (ioctl(fd, RNDRESEEDCRNG) < 0)
		return orch_errno(err, -errno,
				  "cannot reseed the kernel's generator (RNDRESEEDCRNG)");
	return 0;
}

void sv_thaw_before_hello(struct supervisor *sv)
{
	struct orch_error err = {0};
	char id[sizeof(sv->boot_id)];

	if (!sv->frozen)
		return;
	if (sv_reseed(NULL, 0, &err) < 0)
		orch_log(ORCH_LOG_DEBUG, "thaw", "reseed before hello failed", "error", err.msg,
			 NULL);
	if (sv_read_boot_id(id, sizeof(id)) == 0)
		memcpy(sv->boot_id, id, sizeof(id));
}

static void on_thaw_wait(struct orch_loop *loop, struct orch_timer *timer, void *data)
{
	struct supervisor *sv = data;

	if (!sv->frozen || sv->thaw || !sv->rpc || !sv->ready || sv->hellos != sv->thaw_wait_hello)
		return;
	orch_log(ORCH_LOG_INFO, "thaw", "frozen and no vm.thaw: dialling again", NULL);
	orch_rpc_close(sv->rpc); /* close_cb schedules the redial */
}

void sv_thaw_wait(struct supervisor *sv)
{
	if (!sv->frozen)
		return;
	sv->thaw_wait_hello = sv->hellos;
	if (sv->thaw_wait)
		orch_timer_rearm(sv->thaw_wait, SV_FROZEN_THAW_WAIT_MS);
	else if (orch_timer_add(sv->loop, SV_FROZEN_THAW_WAIT_MS, 0, on_thaw_wait, sv,
				&sv->thaw_wait) < 0)
		sv->thaw_wait = NULL;
}

int sv_thaw_m_freeze(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err)
{
	struct supervisor *sv = data;
	int r;

	if (!req)
		return orch_err(err, ORCH_RPC_INVALID_REQUEST, "vm.freeze must be a request");
	if ((r = orch_vm_freeze_parse(params, err)) < 0)
		return r;
	if (sv->addr.kind == ORCH_TRANSPORT_FD)
		return orch_err(err, ORCH_RPC_CONFLICT,
				"vm.freeze: a channel inherited as a descriptor cannot be dialled "
				"again after a restore");
	if (sv->thaw)
		return orch_err(err, ORCH_RPC_CONFLICT, "vm.freeze: a vm.thaw is in progress");
	for (unsigned i = 0; i < sv->cfg->slots; i++)
		if (sv->slots[i].task)
			return orch_err(err, ORCH_RPC_CONFLICT, "vm.freeze: slot %u runs a task",
					i);
	if (sv->exits)
		return orch_err(err, ORCH_RPC_CONFLICT,
				"vm.freeze: a task's exit is not acknowledged yet");
	sv->frozen = true;
	orch_dialer_set_fixed(sv->dialer, SV_FROZEN_REDIAL_MS);
	sv_thaw_wait(sv);
	orch_log(ORCH_LOG_INFO, "thaw", "frozen: waiting for a snapshot's restore", NULL);
	return orch_rpc_reply(req, json_object());
}

static void thaw_free(struct sv_thaw *t)
{
	if (!t)
		return;
	orch_timer_free(t->timer);
	orch_rpc_req_unref(t->req);
	free(t);
}

static int mkdir_p(const char *path)
{
	char p[ORCH_THAW_PATH_MAX + 1];
	snprintf(p, sizeof(p), "%s", path);
	for (char *c = p + 1;; c++) {
		if (*c != '/' && *c)
			continue;
		char save = *c;
		*c = 0;
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		if (!save)
			return 0;
		*c = save;
	}
}

static bool mounted(const struct supervisor *sv, const struct orch_thaw_mount *m)
{
	for (size_t i = 0; i < sv->n_thaw_mounted; i++)
		if (!strcmp(sv->thaw_mounted[i], m->path))
			return true;
	return false;
}

/* Mounts what is not mounted yet; 1 when all are, 0 to try again, < 0 on failure. */
static int mount_all(struct sv_thaw *t, struct orch_error *err)
{
	struct supervisor *sv = t->sv;
	int pending = 0;

	for (size_t i = 0; i < t->n_mounts; i++) {
		const struct orch_thaw_mount *m = &t->mounts[i];
		unsigned long fl = MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0);
		int r;

		if (mounted(sv, m))
			continue;
		if ((r = mkdir_p(m->path)) < 0)
			return orch_errno(err, r, "cannot create the mount point %s", m->path);
		if (mount(m->tag, m->path, "virtiofs", fl, NULL) < 0) {
			r = -errno;
			/* virtio-fs answers EINVAL for a tag whose device has not appeared
			 * yet: the hot-plugged device is still being probed. */
			if (r == -EINVAL || r == -ENOENT || r == -ENXIO) {
				orch_log(ORCH_LOG_DEBUG, "thaw", "share not there yet", "tag",
					 m->tag, NULL);
				pending++;
				continue;
			}
			return orch_errno(err, r, "cannot mount virtio-fs tag %s on %s", m->tag,
					  m->path);
		}
		if (sv->n_thaw_mounted < ORCH_THAW_MAX_MOUNTS)
			snprintf(sv->thaw_mounted[sv->n_thaw_mounted++],
				 sizeof(sv->thaw_mounted[0]), "%s", m->path);
		orch_log(ORCH_LOG_INFO, "thaw", "mounted", "tag", m->tag, "path", m->path, NULL);
	}
	return pending ? 0 : 1;
}

static void thaw_finish(struct sv_thaw *t, int r, const struct orch_error *e)
{
	struct supervisor *sv = t->sv;
	char id[sizeof(sv->boot_id)];

	sv->thaw = NULL;
	if (r < 0) {
		orch_log(ORCH_LOG_ERROR, "thaw", "vm.thaw failed", "error", e->msg, NULL);
		orch_rpc_reply_error(t->req, orch_rpc_is_rpc_code(r) ? r : ORCH_RPC_INTERNAL_ERROR,
				     e->msg, NULL);
		thaw_free(t);
		return;
	}
	/* The agents' directories in the workspace just mounted (the debug shells made theirs
	 * in the template's placeholder below it). */
	for (unsigned i = 0; i < sv->cfg->slots; i++) {
		struct orch_error werr = {0};
		_cleanup_free_ char *ws = NULL;
		if (sv_workspace_prepare(sv->cfg->workspace_root, i, sv->slots[i].uid,
					 sv->slots[i].uid, &ws, &werr) < 0)
			orch_log(ORCH_LOG_WARN, "thaw", "cannot prepare a workspace", "error",
				 werr.msg, NULL);
	}
	struct orch_vm_thaw_result res = {.warm_ms = -1};
	if (t->warm) {
		struct orch_error werr = {0};
		uint64_t w0 = orch_now_ms();
		if (sv_warm(sv, &werr) < 0)
			orch_log(ORCH_LOG_WARN, "thaw", "warm-up failed", "error", werr.msg, NULL);
		else
			res.warm_ms = (int64_t)(orch_now_ms() - w0);
	}
	/* A boot id drawn after the host's seed: no other copy of the snapshot has it. */
	if (sv_read_boot_id(id, sizeof(id)) == 0)
		memcpy(sv->boot_id, id, sizeof(id));
	sv->frozen = false;
	sv->template = false;
	sv->n_thaw_mounted = 0;
	orch_dialer_set_fixed(sv->dialer, 0);
	res.boot_id = sv->boot_id;
	orch_rpc_reply(t->req, orch_vm_thaw_result_build(&res));
	thaw_free(t);
	orch_log(ORCH_LOG_INFO, "thaw", "thawed", "boot_id", sv->boot_id, NULL);
	/* The other channels were down during the snapshot: their host is back now. */
	sv_llm_channel_redial(sv);
	sv_extras_redial(sv);
}

static void on_mount_timer(struct orch_loop *loop, struct orch_timer *timer, void *data)
{
	struct sv_thaw *t = data;
	struct orch_error err = {0};
	int r;

	if (orch_rpc_is_closed(orch_rpc_req_rpc(t->req))) {
		/* The host went away mid-thaw; the next connection's vm.thaw starts over (the
		 * shares mounted so far stay). */
		t->sv->thaw = NULL;
		thaw_free(t);
		return;
	}
	r = mount_all(t, &err);
	if (r == 0 && orch_now_ms() >= t->deadline)
		r = orch_err(&err, -ETIMEDOUT,
			     "the virtio-fs shares did not appear within %d ms (were they "
			     "attached after the restore?)",
			     SV_THAW_MOUNT_TIMEOUT_MS);
	if (r == 0) {
		orch_timer_rearm(t->timer, SV_THAW_MOUNT_RETRY_MS);
		return;
	}
	thaw_finish(t, r, &err);
}

int sv_thaw_m_thaw(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	struct supervisor *sv = data;
	struct orch_vm_thaw th = {0};
	struct timespec ts;
	int r;

	if (!req)
		return orch_err(err, ORCH_RPC_INVALID_REQUEST, "vm.thaw must be a request");
	if ((r = orch_vm_thaw_parse(params, &th, err)) < 0)
		return r;
	if (!sv->frozen || sv->thaw) {
		orch_vm_thaw_done(&th);
		return orch_err(err, ORCH_RPC_CONFLICT,
				sv->thaw ? "vm.thaw: one is in progress already"
					 : "vm.thaw: this supervisor was not frozen (vm.freeze)");
	}
	r = sv_reseed(th.seed, th.seed_len, err);
	orch_vm_thaw_done(&th); /* the seed is wiped */
	if (r < 0)
		return orch_err_prefix(err, "vm.thaw");
	ts.tv_sec = (time_t)(th.time_ns / 1000000000);
	ts.tv_nsec = (long)(th.time_ns % 1000000000);
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "vm.thaw: cannot set the clock: %s",
				strerror(errno));
	if (sethostname(th.name, strlen(th.name)) < 0)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR,
				"vm.thaw: cannot set the hostname: %s", strerror(errno));

	orch_log(ORCH_LOG_DEBUG, "thaw", "seeded, clock and name set: mounting", NULL);
	struct sv_thaw *t = calloc(1, sizeof(*t));
	if (!t)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "out of memory");
	t->sv = sv;
	t->warm = th.warm;
	t->n_mounts = th.n_mounts;
	for (size_t i = 0; i < th.n_mounts; i++) {
		/* params are freed when this handler returns: keep copies. */
		size_t tl = strlen(th.mounts[i].tag) + 1;
		memcpy(t->buf[i], th.mounts[i].tag, tl);
		snprintf(t->buf[i] + tl, sizeof(t->buf[i]) - tl, "%s", th.mounts[i].path);
		t->mounts[i] =
			(struct orch_thaw_mount){t->buf[i], t->buf[i] + tl, th.mounts[i].readonly};
	}
	t->deadline = orch_now_ms() + SV_THAW_MOUNT_TIMEOUT_MS;
	t->req = orch_rpc_req_ref(req);
	if ((r = orch_timer_add(sv->loop, 0, 0, on_mount_timer, t, &t->timer)) < 0) {
		thaw_free(t);
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "vm.thaw: timer: %s", strerror(-r));
	}
	sv->thaw = t;
	return 0; /* answered by thaw_finish */
}

void sv_thaw_stop(struct supervisor *sv)
{
	orch_timer_free(sv->thaw_wait);
	sv->thaw_wait = NULL;
	thaw_free(sv->thaw);
	sv->thaw = NULL;
}
