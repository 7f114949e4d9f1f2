/* SPDX-License-Identifier: Apache-2.0 */
/* Removing task workspaces (orch workspaces rm, retention): unmount (lazily when
 * something still holds it), then the mount point and the image. The newest
 * git.keep_workspaces finished tasks keep their images; older ones are removed after
 * every recorded result and at start. A running task's workspace is never removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "git-int.h"
#include "git-ws.h"
#include "log.h"

struct gwsop {
	struct gwsop *next;
	struct git_mod *m;
	int64_t task;
	char *image, *mount;
	bool lazy;
	struct gproc *proc;
	gws_done_cb cb;
	void *data;
};

static void op_free(struct gwsop *o)
{
	for (struct gwsop **l = &o->m->wsops; *l; l = &(*l)->next)
		if (*l == o) {
			*l = o->next;
			break;
		}
	gproc_cancel(o->proc);
	free(o->image);
	free(o->mount);
	free(o);
}

static void op_end(struct gwsop *o, int r, const char *msg)
{
	char tb[24];
	snprintf(tb, sizeof(tb), "%lld", (long long)o->task);
	if (r < 0)
		orch_log(ORCH_LOG_WARN, "git", "cannot remove a workspace", "task", tb, "error",
			 msg, NULL);
	else
		orch_log(ORCH_LOG_INFO, "git", "workspace removed", "task", tb, NULL);
	if (o->cb)
		o->cb(r, msg, o->data);
	op_free(o);
}

static void unmounted(const struct gproc_result *res, void *data);

static void go(struct gwsop *o)
{
	struct orch_error err = {0};
	int r;
	if (o->mount && ws_mounted(o->mount)) {
		if ((r = ws_umount_start(&o->m->g, o->mount, o->lazy, unmounted, o, &o->proc,
					 &err)) < 0)
			op_end(o, r, err.msg);
		return;
	}
	if ((r = ws_remove(o->image, o->mount, &err)) < 0 ||
	    (r = git_store_ws_gone(o->m->d->store, o->task, &err)) < 0) {
		op_end(o, r, err.msg);
		return;
	}
	gws_drop_files(o->m, o->task);
	op_end(o, 0, NULL);
}

static void unmounted(const struct gproc_result *res, void *data)
{
	struct gwsop *o = data;
	char why[300];
	o->proc = NULL;
	if (!gproc_ok(res)) {
		if (!o->lazy) { /* busy: detach it now, freed when let go */
			o->lazy = true;
			go(o);
			return;
		}
		gproc_describe(res, why, sizeof(why));
		op_end(o, -EBUSY, why);
		return;
	}
	if (ws_mounted(o->mount) && !o->lazy) {
		o->lazy = true; /* one more mount on top: detach what is left */
	} else if (ws_mounted(o->mount)) {
		op_end(o, -EBUSY, "the workspace stays mounted");
		return;
	}
	go(o);
}

int gws_remove(struct git_mod *m, int64_t task, gws_done_cb cb, void *data, struct orch_error *err)
{
	struct git_row *row = NULL;
	struct task_row *t = NULL;
	int r;
	for (struct gwsop *o = m->wsops; o; o = o->next)
		if (o->task == task)
			return orch_err(err, -EALREADY, "task %lld's workspace is being removed",
					(long long)task);
	if ((r = git_store_get(m->d->store, task, &row, err)) < 0)
		return r == -ENOENT ? orch_err(err, -ENOENT, "task %lld has no workspace",
					       (long long)task)
				    : r;
	r = store_task_get(m->d->store, task, &t, err);
	if (r >= 0 && (!task_state_final(t->state) || grec_running(m, task) ||
		       strcmp(row->state, "pending") == 0))
		r = orch_err(err, -EBUSY,
			     "task %lld is %s; its workspace is removed after it ends and its "
			     "result is recorded",
			     (long long)task, task_state_name(t->state));
	if (r >= 0 && !row->ws_present)
		r = orch_err(err, -ENOENT, "task %lld has no workspace (any more)",
			     (long long)task);
	struct gwsop *o = r >= 0 ? calloc(1, sizeof(*o)) : NULL;
	if (r >= 0 && !o)
		r = orch_err(err, -ENOMEM, "out of memory");
	if (r < 0) {
		git_row_free(row);
		task_row_free(t);
		return r;
	}
	o->m = m;
	o->task = task;
	o->image = row->image ? strdup(row->image) : NULL;
	o->mount = row->mount ? strdup(row->mount) : NULL;
	o->cb = cb;
	o->data = data;
	git_row_free(row);
	task_row_free(t);
	o->next = m->wsops;
	m->wsops = o;
	go(o);
	return 0;
}

void gws_retention(struct git_mod *m)
{
	struct orch_error err = {0};
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0;
	if (git_store_ws_expired(m->d->store, m->g.cfg->keep_workspaces, &ids, &n, &err) < 0) {
		orch_log(ORCH_LOG_WARN, "git", "retention failed", "error", err.msg, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool busy = false;
		for (struct gwsop *o = m->wsops; o; o = o->next)
			busy = busy || o->task == ids[i];
		if (!busy && gws_remove(m, ids[i], NULL, NULL, &err) < 0 && err.code != -EBUSY)
			orch_log(ORCH_LOG_WARN, "git", "retention: cannot remove a workspace",
				 "error", err.msg, NULL);
	}
}

void gws_free_all(struct git_mod *m)
{
	while (m->wsops)
		op_free(m->wsops);
}

void gws_drop_files(struct git_mod *m, int64_t task)
{
	char dir[4200], prefix[64];
	snprintf(dir, sizeof(dir), "%s/tmp", m->g.cfg->dir);
	snprintf(prefix, sizeof(prefix), "task-%lld-", (long long)task);
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	/* the diffs and bundles made for orch diff / orch checkout, made again when asked */
	while ((de = readdir(d)))
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}
