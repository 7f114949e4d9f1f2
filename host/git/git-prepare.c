/* SPDX-License-Identifier: Apache-2.0 */
/* A repository task's workspace, made after the lease and before task.run:
 *   1. what an earlier attempt left (its mount, its image) goes
 *   2. the cache is fetched when stale and the ref resolved to a commit (git-cache.c)
 *   3. a sparse image of git.workspace_mib gets an ext4 file system whose root is the
 *      agent's, mounted at <VM workspace>/task-<id> (git-ws.c)
 *   4. git clone --no-checkout copies the cache's mirror into it (no hardlinks: nothing
 *      in the workspace shares an inode with the cache); origin is the upstream
 *   5. .git becomes the agent's; the checkout of branch orch/task-<id> at the commit runs
 *      as the agent's uid in a sandbox that sees only the workspace
 *   6. the row is "ready" with its base commit, and task.run names the workspace.
 * Any failure ends the task failed with the reason; the slot may be gone meanwhile (the
 * VM went down, the task was requeued), and then the work is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "git-int.h"
#include "git-ws.h"
#include "log.h"

enum prep_step { P_CLEAN, P_CACHE, P_MKFS, P_MOUNT, P_CLONE, P_CONFIG, P_CHECKOUT };

struct gprep {
	struct gprep *next;
	struct git_mod *m;
	struct vm *vm;
	int64_t slot, task, attempt;
	struct git_row *row;
	char *image, *mount, *base;
	char name[32];
	struct gcache_paths p;
	uid_t uid;
	gid_t gid;
	enum prep_step step;
	struct gproc *proc;
	int ws_fd;
	int cleans;
	uint64_t started_ms;
};

static void prep_free(struct gprep *p)
{
	struct git_mod *m = p->m;
	for (struct gprep **l = &m->preps; *l; l = &(*l)->next)
		if (*l == p) {
			*l = p->next;
			break;
		}
	gcache_forget(m, p);
	gproc_cancel(p->proc);
	if (p->ws_fd >= 0)
		close(p->ws_fd);
	git_row_free(p->row);
	gcache_paths_done(&p->p);
	free(p->image);
	free(p->mount);
	free(p->base);
	free(p);
}

/* Whether the slot still holds this attempt of the task on a ready VM. */
static bool slot_ours(struct gprep *p)
{
	return vm_slot_holds(p->vm, p->slot, p->task, p->attempt) && p->vm->state == VM_READY &&
	       p->vm->rpc;
}

/* Ends the leased task failed (it never ran), with the reason. */
static void fail_leased(struct vm *vm, int64_t slot, const char *why)
{
	struct task_result res = {.state = TASK_FAILED, .exit_code = -1, .reason = why};
	vm_slot_run_failed(vm, slot, &res);
}

static void fail(struct gprep *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct gprep *p, const char *fmt, ...)
{
	char msg[600], why[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(why, sizeof(why), "workspace: %s", msg);
	struct vm *vm = p->vm;
	int64_t slot = p->slot;
	bool ours = slot_ours(p);
	prep_free(p);
	if (ours)
		fail_leased(vm, slot, why);
}

static void next(struct gprep *p);

static void on_proc(const struct gproc_result *res, void *data)
{
	struct gprep *p = data;
	char why[300];
	p->proc = NULL;
	if (!slot_ours(p)) {
		prep_free(p);
		return;
	}
	if (p->step == P_CLEAN && gproc_ok(res) && p->cleans++ < 3) {
		next(p); /* unmounted: now remove it */
		return;
	}
	if (!gproc_ok(res)) {
		gproc_describe(res, why, sizeof(why));
		switch (p->step) {
		case P_CLEAN:
			fail(p, "cannot unmount the earlier attempt's workspace: %s", why);
			return;
		case P_MKFS:
			fail(p, "mkfs.ext4 failed: %s", why);
			return;
		case P_MOUNT:
			fail(p, "cannot mount the workspace image: %s", why);
			return;
		case P_CLONE:
			fail(p, "cannot copy the repository into the workspace: %s", why);
			return;
		case P_CONFIG:
			fail(p, "git config failed: %s", why);
			return;
		case P_CHECKOUT:
			fail(p, "checkout of %.64s failed: %s", p->base, why);
			return;
		case P_CACHE:
			break;
		}
		fail(p, "%s", why);
		return;
	}
	p->step++;
	next(p);
}

static void on_cache(int r, const char *msg, const char *oid, const struct gcache_paths *paths,
		     void *data)
{
	struct gprep *p = data;
	if (!slot_ours(p)) {
		prep_free(p);
		return;
	}
	if (r < 0) {
		fail(p, "%s", msg);
		return;
	}
	if (!(p->base = strdup(oid)) || !(p->p.dir = strdup(paths->dir)) ||
	    !(p->p.mirror = strdup(paths->mirror)) || !(p->p.results = strdup(paths->results))) {
		fail(p, "out of memory");
		return;
	}
	p->step = P_MKFS;
	next(p);
}

static int chown_at(int dirfd, uid_t uid, gid_t gid, int depth)
{
	struct dirent *de;
	int r = 0;
	if (depth > 32)
		return -ELOOP;
	if (fchown(dirfd, uid, gid) < 0)
		return -errno;
	int fd = dup(dirfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (r >= 0 && (de = readdir(dir))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR) {
			int sub = openat(dirfd, de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = sub < 0 ? -errno : chown_at(sub, uid, gid, depth + 1);
			if (sub >= 0)
				close(sub);
		} else if (fchownat(dirfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
			r = -errno;
		}
	}
	closedir(dir);
	return r;
}

/* .git as git clone made it (root's) becomes the agent's. Nothing else writes there
 * now; symlinks are never followed. */
static int chown_tree(const char *dir, uid_t uid, gid_t gid)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return chown_at(fd, uid, gid, 0);
}

/* The other tasks' images, for the free-space check. */
static char **other_images(struct git_mod *m, int64_t task)
{
	_cleanup_json_ json_t *ws = NULL;
	struct orch_error err = {0};
	if (git_store_ws_list(m->d->store, &ws, &err) < 0)
		return NULL;
	char **v = calloc(json_array_size(ws) + 1, sizeof(char *));
	size_t n = 0, i;
	json_t *o;
	if (!v)
		return NULL;
	json_array_foreach(ws, i, o)
	{
		const char *img = json_string_value(json_object_get(o, "image"));
		if (json_integer_value(json_object_get(o, "task")) != task && img && *img)
			v[n++] = strdup(img);
	}
	return v;
}

static int start_mkfs(struct gprep *p, struct orch_error *err)
{
	struct git_mod *m = p->m;
	char **imgs = other_images(m, p->task);
	char dir[4200];
	int r;
	snprintf(dir, sizeof(dir), "%s/images", m->g.cfg->dir);
	if ((r = orchd_mkdir(dir, 0700)) < 0)
		r = orch_errno(err, r, "cannot create %s", dir);
	else
		r = ws_space_check(m->g.cfg, imgs, err);
	for (size_t i = 0; imgs && imgs[i]; i++)
		free(imgs[i]);
	free(imgs);
	if (r < 0 || (r = ws_image_create(m->g.cfg, p->image, err)) < 0 ||
	    (r = git_store_preparing(m->d->store, p->task, p->vm->cfg->name, p->slot, p->image,
				     p->mount, err)) < 0)
		return r;
	return ws_mkfs_start(&m->g, p->image, p->uid, p->gid, on_proc, p, &p->proc, err);
}

static int start_clone(struct gprep *p, struct orch_error *err)
{
	struct git_mod *m = p->m;
	struct gstrv argv = {0}, env = {0};
	git_argv(&m->g, &argv);
	gstrv_push(&argv, "clone");
	gstrv_push(&argv, "--quiet");
	gstrv_push(&argv, "--no-checkout");
	gstrv_push(&argv, "--no-hardlinks");
	gstrv_push(&argv, "--local");
	gstrv_push(&argv, "-c");
	gstrv_push(&argv, "user.name=orch agent");
	gstrv_push(&argv, "-c");
	gstrv_pushf(&argv, "user.email=task-%lld@orch.invalid", (long long)p->task);
	gstrv_push(&argv, "--");
	gstrv_push(&argv, p->p.mirror);
	gstrv_push(&argv, p->mount);
	git_env(&m->g, NULL, &env);
	struct git_spawn_opts o = {.out_fd = -1, .out_max = 65536};
	return git_spawn(&m->g, &argv, &env, &o, on_proc, p, &p->proc, err);
}

static int start_config(struct gprep *p, struct orch_error *err)
{
	struct git_mod *m = p->m;
	struct gstrv argv = {0}, env = {0};
	git_argv(&m->g, &argv);
	gstrv_push(&argv, "--git-dir");
	gstrv_pushf(&argv, "%s/.git", p->mount);
	gstrv_push(&argv, "config");
	gstrv_push(&argv, "remote.origin.url");
	gstrv_push(&argv, p->row->repo);
	git_env(&m->g, NULL, &env);
	struct git_spawn_opts o = {.out_fd = -1, .out_max = 65536};
	return git_spawn(&m->g, &argv, &env, &o, on_proc, p, &p->proc, err);
}

static int start_checkout(struct gprep *p, struct orch_error *err)
{
	struct git_mod *m = p->m;
	struct gstrv argv = {0}, env = {0};
	char dotgit[4200];
	int r;
	snprintf(dotgit, sizeof(dotgit), "%s/.git", p->mount);
	if ((r = chown_tree(dotgit, p->uid, p->gid)) < 0)
		return orch_errno(err, r, "cannot give %s to the agent", dotgit);
	p->ws_fd = open(p->mount, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (p->ws_fd < 0)
		return orch_errno(err, -errno, "cannot open %s", p->mount);
	git_sandbox_argv(&m->g, p->uid, p->gid, true, 0, &argv);
	git_argv(&m->g, &argv);
	gstrv_push(&argv, "-C");
	gstrv_push(&argv, "/w");
	gstrv_push(&argv, "checkout");
	gstrv_push(&argv, "--quiet");
	gstrv_push(&argv, "-B");
	gstrv_pushf(&argv, "orch/task-%lld", (long long)p->task);
	gstrv_push(&argv, p->base);
	gstrv_push(&argv, "--");
	git_sandbox_env(&env);
	struct git_spawn_opts o = {
		.out_fd = -1, .out_max = 65536, .fds = &p->ws_fd, .n_fds = 1, .umask = 022};
	return git_spawn(&m->g, &argv, &env, &o, on_proc, p, &p->proc, err);
}

static void done(struct gprep *p)
{
	struct orch_error err = {0};
	char tb[24], ms[24];
	int r;
	if (p->ws_fd >= 0) {
		close(p->ws_fd);
		p->ws_fd = -1;
	}
	r = git_store_ready(p->m->d->store, p->task, p->base, &err);
	if (r < 0) {
		if (r == -ESTALE) /* the task ended meanwhile */
			prep_free(p);
		else
			fail(p, "%s", err.msg);
		return;
	}
	snprintf(tb, sizeof(tb), "%lld", (long long)p->task);
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(orch_now_ms() - p->started_ms));
	orch_log(ORCH_LOG_INFO, "git", "workspace ready", "task", tb, "base", p->base, "ms", ms,
		 NULL);
	struct vm *vm = p->vm;
	int64_t slot = p->slot, task = p->task, attempt = p->attempt;
	char name[32];
	snprintf(name, sizeof(name), "%s", p->name);
	prep_free(p);
	if ((r = sched_send_run(vm, slot, task, attempt, name, &err)) < 0 &&
	    vm_slot_holds(vm, slot, task, attempt))
		fail_leased(vm, slot, err.msg);
}

static void next(struct gprep *p)
{
	struct orch_error err = {0};
	struct git_mod *m = p->m;
	int r = 0;

	switch (p->step) {
	case P_CLEAN:
		if (ws_mounted(p->mount)) {
			if (p->cleans >= 3) {
				r = orch_err(&err, -EBUSY, "%s stays mounted", p->mount);
				break;
			}
			r = ws_umount_start(&m->g, p->mount, false, on_proc, p, &p->proc, &err);
			break;
		}
		if ((r = ws_remove(p->image, p->mount, &err)) < 0 ||
		    (r = git_store_ws_gone(m->d->store, p->task, &err)) < 0)
			break;
		p->step = P_CACHE;
		r = gcache_resolve(m, p->row->repo, (uid_t)p->row->uid, (gid_t)p->row->gid,
				   p->row->ref, on_cache, p, &err);
		break;
	case P_CACHE:
		return; /* on_cache moves on */
	case P_MKFS:
		r = start_mkfs(p, &err);
		break;
	case P_MOUNT:
		if ((r = ws_mountpoint(p->mount, &err)) >= 0)
			r = ws_mount_start(&m->g, p->image, p->mount, false, on_proc, p, &p->proc,
					   &err);
		break;
	case P_CLONE:
		if ((r = ws_after_mount(p->mount, &err)) >= 0)
			r = start_clone(p, &err);
		break;
	case P_CONFIG:
		r = start_config(p, &err);
		break;
	case P_CHECKOUT:
		r = start_checkout(p, &err);
		break;
	default:
		done(p);
		return;
	}
	if (r < 0)
		fail(p, "%s", err.msg);
}

int gprep_start(struct git_mod *m, struct vm *vm, int64_t slot, int64_t task,
		struct orch_error *err)
{
	int r;
	/* a prep of an earlier attempt (lost, requeued) must not race this one */
	for (struct gprep *o = m->preps; o; o = o->next)
		if (o->task == task) {
			prep_free(o);
			break;
		}
	struct gprep *p = calloc(1, sizeof(*p));
	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	p->m = m;
	p->vm = vm;
	p->slot = slot;
	p->task = task;
	p->attempt = vm_slot_attempt(vm, slot);
	p->ws_fd = -1;
	p->uid = git_agent_uid(vm, slot);
	p->gid = (gid_t)p->uid;
	p->started_ms = orch_now_ms();
	ws_name(task, p->name, sizeof(p->name));
	if ((r = git_store_get(m->d->store, task, &p->row, err)) < 0 ||
	    (r = ws_paths(m->g.cfg, vm->cfg->workspace, task, &p->image, &p->mount, err)) < 0) {
		git_row_free(p->row);
		free(p);
		return r;
	}
	p->next = m->preps;
	m->preps = p;
	p->step = P_CLEAN;
	next(p);
	return 0;
}

void gprep_free_all(struct git_mod *m)
{
	while (m->preps)
		prep_free(m->preps);
}
