/* SPDX-License-Identifier: Apache-2.0 */
/* What the control methods that read a recorded result do: task.diff (the patch) and task.bundle
 * (a git bundle of branch orch/task-<id> over its base, which `orch checkout` fetches
 * into the user's clone), and workspaces.list / workspaces.rm. A diff or bundle is made
 * once per result, into <git.dir>/tmp (bounded: git.max_diff_mib, git.max_result_mib),
 * and served in chunks of at most 1 MiB (base64 in the reply); requests that come while
 * it is made wait for it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "git-int.h"
#include "git-ws.h"
#include "log.h"
#include "orchd-git.h"
#include "schema.h"

#define CHUNK_MAX (1024 * 1024)

enum gop_kind { GOP_DIFF, GOP_BUNDLE };

struct gop_wait {
	struct gop_wait *next;
	struct orch_rpc_req *req;
	int64_t offset, max;
};

struct gop {
	struct gop *next;
	struct git_mod *m;
	enum gop_kind kind;
	int64_t task;
	char *path, *tmp;
	int fd;
	struct gproc *proc;
	struct gop_wait *waits;
};

int gctl_recorded_row(struct git_mod *m, int64_t task, struct git_row **ret, struct orch_error *err)
{
	struct git_row *row = NULL;
	int r;
	if (!m)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "orchd has no repository support");
	r = git_store_get(m->d->store, task, &row, err);
	if (r == -ENOENT)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "task %lld is not a repository task",
				(long long)task);
	if (r < 0)
		return r;
	if (strcmp(row->state, "recorded") != 0) {
		r = orch_err(err, ORCH_RPC_CONFLICT, "task %lld has no recorded result (%s%s%s)",
			     (long long)task, row->state, row->error ? ": " : "",
			     row->error ? row->error : "");
		git_row_free(row);
		return r;
	}
	*ret = row;
	return 0;
}

static void reply_chunk(struct orch_rpc_req *req, const char *path, int64_t task, int64_t off,
			int64_t max, bool truncated)
{
	_cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	struct stat st = {0};
	if (path && (fd < 0 || fstat(fd, &st) < 0)) {
		orch_rpc_reply_error(req, ORCH_RPC_INTERNAL_ERROR, "cannot read the result file",
				     NULL);
		return;
	}
	int64_t size = st.st_size, n = 0;
	if (off > size)
		off = size;
	int64_t want = size - off < max ? size - off : max;
	_cleanup_free_ unsigned char *buf = malloc(want > 0 ? (size_t)want : 1);
	if (!buf) {
		orch_rpc_reply_error(req, ORCH_RPC_INTERNAL_ERROR, "out of memory", NULL);
		return;
	}
	while (n < want) {
		ssize_t k = pread(fd, buf + n, (size_t)(want - n), off + n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += k;
	}
	_cleanup_free_ char *b64 = orch_b64_encode(buf, (size_t)n);
	orch_rpc_reply(req,
		       json_pack("{sIsIsIsssbsb}", "id", (json_int_t)task, "offset",
				 (json_int_t)off, "size", (json_int_t)size, "data", b64 ? b64 : "",
				 "eof", off + n >= size, "truncated", truncated));
}

static void op_free(struct gop *o)
{
	for (struct gop **l = &o->m->ops; *l; l = &(*l)->next)
		if (*l == o) {
			*l = o->next;
			break;
		}
	gproc_cancel(o->proc);
	if (o->fd >= 0)
		close(o->fd);
	while (o->waits) {
		struct gop_wait *w = o->waits;
		o->waits = w->next;
		orch_rpc_reply_error(w->req, ORCH_RPC_INTERNAL_ERROR, "orchd is stopping", NULL);
		orch_rpc_req_unref(w->req);
		free(w);
	}
	if (o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	free(o);
}

static void on_made(const struct gproc_result *res, void *data)
{
	struct gop *o = data;
	char why[300];
	o->proc = NULL;
	close(o->fd);
	o->fd = -1;
	bool cut = WIFSIGNALED(res->status) && WTERMSIG(res->status) == SIGXFSZ;
	bool ok = gproc_ok(res) || (cut && o->kind == GOP_DIFF);
	if (ok && rename(o->tmp, o->path) == 0) {
		free(o->tmp);
		o->tmp = NULL;
		if (cut) { /* remembered by a marker beside it */
			char mark[4200];
			snprintf(mark, sizeof(mark), "%s.truncated", o->path);
			int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (fd >= 0)
				close(fd);
		}
	} else {
		ok = false;
		if (cut)
			snprintf(why, sizeof(why), "the bundle is larger than git.max_result_mib");
		else
			gproc_describe(res, why, sizeof(why));
	}
	while (o->waits) {
		struct gop_wait *w = o->waits;
		o->waits = w->next;
		if (ok)
			reply_chunk(w->req, o->path, o->task, w->offset, w->max, cut);
		else
			orch_rpc_reply_error(w->req, ORCH_RPC_INTERNAL_ERROR, why, NULL);
		orch_rpc_req_unref(w->req);
		free(w);
	}
	op_free(o);
}

static int start_make(struct git_mod *m, struct gop *o, const struct git_row *row,
		      struct orch_error *err)
{
	struct gcache_paths p = {0};
	struct gstrv argv = {0}, env = {0};
	char branch[64];
	int r;
	if ((r = gcache_paths(m, row->repo, (uid_t)row->uid, &p, err)) < 0)
		return r;
	o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (o->fd < 0) {
		gcache_paths_done(&p);
		return orch_errno(err, -errno, "cannot create %s", o->tmp);
	}
	snprintf(branch, sizeof(branch), "refs/heads/orch/task-%lld", (long long)o->task);
	git_argv(&m->g, &argv);
	gstrv_push(&argv, "--git-dir");
	gstrv_push(&argv, p.results);
	if (o->kind == GOP_DIFF) {
		gstrv_push(&argv, "diff");
		gstrv_push(&argv, "--no-ext-diff");
		gstrv_push(&argv, "--no-textconv");
		gstrv_push(&argv, "--no-color");
		gstrv_push(&argv, "--binary");
		gstrv_push(&argv, "--no-renames");
		gstrv_push(&argv, row->base);
		gstrv_push(&argv, row->commit);
	} else {
		/* the bundle of the new commit: "-" is stdout (our file) */
		gstrv_push(&argv, "bundle");
		gstrv_push(&argv, "create");
		gstrv_push(&argv, "-q");
		gstrv_push(&argv, "-");
		gstrv_push(&argv, branch);
		gstrv_pushf(&argv, "^%s", row->base);
	}
	gcache_paths_done(&p);
	git_env(&m->g, NULL, &env);
	uint64_t max = (uint64_t)(o->kind == GOP_DIFF ? m->g.cfg->max_diff_mib
						      : m->g.cfg->max_result_mib) *
		       1024 * 1024;
	struct git_spawn_opts so = {.out_fd = o->fd, .fsize_max = max};
	return git_spawn(&m->g, &argv, &env, &so, on_made, o, &o->proc, err);
}

int orchd_git_result_file(struct orchd *d, struct orch_rpc_req *req, int64_t id, bool bundle,
			  int64_t off, int64_t max, struct orch_error *err)
{
	struct git_mod *m = d->git;
	struct git_row *row = NULL;
	enum gop_kind kind = bundle ? GOP_BUNDLE : GOP_DIFF;
	int r;
	if (max <= 0 || max > CHUNK_MAX)
		max = CHUNK_MAX;
	if ((r = gctl_recorded_row(m, id, &row, err)) < 0)
		return r;
	if (!row->commit) { /* no changes: an empty diff, no bundle */
		git_row_free(row);
		if (kind == GOP_BUNDLE)
			return orch_err(
				err, ORCH_RPC_CONFLICT,
				"task %lld changed nothing: there is no branch to check out",
				(long long)id);
		reply_chunk(req, NULL, id, 0, max, false);
		return 0;
	}
	_cleanup_free_ char *path = NULL, *mark = NULL;
	const char *ext = kind == GOP_DIFF ? "diff" : "bundle";
	if (asprintf(&path, "%s/tmp/task-%lld-%s.%s", m->g.cfg->dir, (long long)id, row->commit,
		     ext) < 0 ||
	    asprintf(&mark, "%s.truncated", path) < 0) {
		git_row_free(row);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	if (access(path, F_OK) == 0) {
		git_row_free(row);
		reply_chunk(req, path, id, off, max, access(mark, F_OK) == 0);
		return 0;
	}
	struct gop *o;
	for (o = m->ops; o; o = o->next)
		if (o->task == id && o->kind == kind)
			break;
	struct gop_wait *w = calloc(1, sizeof(*w));
	if (!w) {
		git_row_free(row);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	w->req = orch_rpc_req_ref(req);
	w->offset = off;
	w->max = max;
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o || !(o->path = strdup(path)) || asprintf(&o->tmp, "%s.tmp", path) < 0) {
			if (o)
				free(o->path);
			free(o);
			orch_rpc_req_unref(w->req);
			free(w);
			git_row_free(row);
			return orch_err(err, -ENOMEM, "out of memory");
		}
		o->m = m;
		o->kind = kind;
		o->task = id;
		o->fd = -1;
		o->next = m->ops;
		m->ops = o;
		o->waits = w;
		r = start_make(m, o, row, err);
		git_row_free(row);
		if (r < 0) {
			o->waits = NULL;
			orch_rpc_req_unref(w->req);
			free(w);
			op_free(o);
			return r;
		}
		return 0;
	}
	git_row_free(row);
	w->next = o->waits;
	o->waits = w;
	return 0;
}

void gop_free_all(struct git_mod *m)
{
	while (m->ops)
		op_free(m->ops);
}

int orchd_git_workspaces(struct orchd *d, json_t **ret, struct orch_error *err)
{
	json_t *ws = NULL, *o;
	size_t i;
	int r;
	if (!d->git) {
		*ret = json_array();
		return *ret ? 0 : orch_err(err, -ENOMEM, "out of memory");
	}
	if ((r = git_store_ws_list(d->store, &ws, err)) < 0)
		return r;
	json_array_foreach(ws, i, o)
	{
		const char *img = json_string_value(json_object_get(o, "image"));
		const char *mnt = json_string_value(json_object_get(o, "mount"));
		json_object_set_new(o, "used_bytes", json_integer(img ? ws_image_used(img) : 0));
		json_object_set_new(o, "size_bytes",
				    json_integer(d->cfg->git->workspace_mib * 1024 * 1024));
		json_object_set_new(o, "mounted", json_boolean(mnt && *mnt && ws_mounted(mnt)));
	}
	*ret = ws;
	return 0;
}

static void on_removed(int r, const char *msg, void *data)
{
	struct orch_rpc_req *req = data;
	if (r < 0)
		orch_rpc_reply_error(req, ORCH_RPC_INTERNAL_ERROR, msg ? msg : "failed", NULL);
	else
		orch_rpc_reply(req, json_pack("{sb}", "removed", 1));
	orch_rpc_req_unref(req);
}

int orchd_git_workspace_rm(struct orchd *d, struct orch_rpc_req *req, int64_t id,
			   struct orch_error *err)
{
	int r;
	if (!d->git)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "orchd has no repository support");
	orch_rpc_req_ref(req);
	r = gws_remove(d->git, id, on_removed, req, err);
	if (r < 0) {
		orch_rpc_req_unref(req);
		if (r == -ENOENT)
			err->code = ORCH_RPC_NOT_FOUND;
		else if (r == -EBUSY || r == -EALREADY)
			err->code = ORCH_RPC_CONFLICT;
		return err->code;
	}
	return 0;
}
