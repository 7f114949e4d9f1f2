/* SPDX-License-Identifier: Apache-2.0 */
/* Repository caches (git-cache.h). Each cache runs one git process at a time for
 * itself (init, fetch); the requests waiting on it are resolved (rev-parse) after. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "cleanup.h"
#include "fs-util.h"
#include "git-int.h"
#include "log.h"

struct greq {
	struct greq *next;
	struct gcache_state *c;
	char *ref; /* NULL: the upstream's HEAD */
	gcache_cb cb;
	void *data;
	bool fetched;	 /* a fetch ran since it came */
	bool need_fetch; /* its ref is not in the cache yet */
	struct gproc *proc;
};

struct gcache_state {
	struct gcache_state *next;
	struct git_mod *m;
	char *repo;
	uid_t uid;
	gid_t gid;
	struct gcache_paths p;
	bool ready;
	int init_step;
	uint64_t fetched_ms;
	struct gproc *proc;
	struct greq *waiting, *resolving;
};

static void kick(struct gcache_state *c);

void gcache_paths_done(struct gcache_paths *p)
{
	free(p->dir);
	free(p->mirror);
	free(p->results);
	*p = (struct gcache_paths){0};
}

int gcache_paths(struct git_mod *m, const char *repo, uid_t uid, struct gcache_paths *ret,
		 struct orch_error *err)
{
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hl = 0;
	char hex[33];
	_cleanup_free_ char *key = NULL;
	/* a local repository's cache is its submitter's own */
	if (asprintf(&key, "%s%c%u", repo, 0, git_repo_is_local(repo) ? (unsigned)uid : 0u) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	size_t kl = strlen(repo) + 1 + strlen(key + strlen(repo) + 1);
	if (!EVP_Digest(key, kl, h, &hl, EVP_sha256(), NULL) || hl < 16)
		return orch_err(err, -EIO, "cannot hash the repository's name");
	for (int i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	*ret = (struct gcache_paths){0};
	if (asprintf(&ret->dir, "%s/repos/%s", m->g.cfg->dir, hex) < 0 ||
	    asprintf(&ret->mirror, "%s/cache.git", ret->dir) < 0 ||
	    asprintf(&ret->results, "%s/results.git", ret->dir) < 0) {
		gcache_paths_done(ret);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

char *gcache_as_user(struct git_mod *m, const char *prog, uid_t uid, gid_t gid)
{
	char *s = NULL;
	if (uid == 0)
		return NULL;
	/* with the user's groups when the user database knows it */
	bool known = getpwuid(uid) != NULL;
	if (asprintf(&s, "%s --reuid=%u --regid=%u %s -- %s", m->g.setpriv, (unsigned)uid,
		     (unsigned)gid, known ? "--init-groups" : "--clear-groups", prog) < 0)
		return NULL;
	return s;
}

static void req_free(struct greq *q)
{
	gproc_cancel(q->proc);
	free(q->ref);
	free(q);
}

static void fail_all(struct greq **list, int r, const char *msg)
{
	while (*list) {
		struct greq *q = *list;
		*list = q->next;
		if (q->cb)
			q->cb(r, msg, NULL, &q->c->p, q->data);
		req_free(q);
	}
}

static void unlink_req(struct greq **list, struct greq *q)
{
	for (; *list; list = &(*list)->next)
		if (*list == q) {
			*list = q->next;
			return;
		}
}

static void on_init(const struct gproc_result *res, void *data)
{
	struct gcache_state *c = data;
	char why[300];
	c->proc = NULL;
	if (!gproc_ok(res)) {
		gproc_describe(res, why, sizeof(why));
		char msg[400];
		snprintf(msg, sizeof(msg), "cannot create the repository cache: git init: %s", why);
		c->init_step = 0;
		fail_all(&c->waiting, -EIO, msg);
		return;
	}
	c->init_step++;
	kick(c);
}

static int start_git(struct gcache_state *c, struct gstrv *argv, const char *url, gproc_cb cb,
		     void *data, struct gproc **ret, uint64_t fsize, struct orch_error *err)
{
	struct gstrv env = {0};
	git_env(&c->m->g, url, &env);
	struct git_spawn_opts o = {.out_fd = -1, .out_max = 65536, .fsize_max = fsize};
	return git_spawn(&c->m->g, argv, &env, &o, cb, data, ret, err);
}

/* Creates the two bare repositories, one git init at a time. */
static int init_step(struct gcache_state *c, struct orch_error *err)
{
	struct gstrv argv = {0};
	char path[4200];
	int r;
	if (c->init_step == 0) {
		snprintf(path, sizeof(path), "%s/repos", c->m->g.cfg->dir);
		if ((r = orchd_mkdir_p(path, 0700)) < 0 || (r = orchd_mkdir(c->p.dir, 0700)) < 0)
			return orch_errno(err, r, "cannot create %s", c->p.dir);
		snprintf(path, sizeof(path), "%s/HEAD", c->p.mirror);
		if (access(path, F_OK) == 0) {
			c->init_step = 1;
			return init_step(c, err);
		}
		git_argv(&c->m->g, &argv);
		gstrv_push(&argv, "init");
		gstrv_push(&argv, "--bare");
		gstrv_push(&argv, "--quiet");
		gstrv_push(&argv, c->p.mirror);
		return start_git(c, &argv, NULL, on_init, c, &c->proc, 0, err);
	}
	if (c->init_step == 1) {
		snprintf(path, sizeof(path), "%s/HEAD", c->p.results);
		if (access(path, F_OK) == 0) {
			c->init_step = 2;
			return init_step(c, err);
		}
		git_argv(&c->m->g, &argv);
		gstrv_push(&argv, "init");
		gstrv_push(&argv, "--bare");
		gstrv_push(&argv, "--quiet");
		gstrv_push(&argv, c->p.results);
		return start_git(c, &argv, NULL, on_init, c, &c->proc, 0, err);
	}
	/* results.git borrows the mirror's objects; the URL is kept for humans */
	snprintf(path, sizeof(path), "%s/objects/info/alternates", c->p.results);
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || dprintf(fd, "%s/objects\n", c->p.mirror) < 0)
		return orch_errno(err, -errno, "cannot write %s", path);
	snprintf(path, sizeof(path), "%s/url", c->p.dir);
	_cleanup_close_ int uf =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (uf >= 0)
		(void)dprintf(uf, "%s\n", c->repo);
	c->ready = true;
	return 0;
}

static void on_fetch(const struct gproc_result *res, void *data)
{
	struct gcache_state *c = data;
	char why[300], msg[600];
	c->proc = NULL;
	if (!gproc_ok(res)) {
		gproc_describe(res, why, sizeof(why));
		snprintf(msg, sizeof(msg), "cannot fetch %.200s: %s", c->repo, why);
		orch_log(ORCH_LOG_WARN, "git", "fetch failed", "repo", c->repo, "error", why, NULL);
		fail_all(&c->waiting, -EIO, msg);
		kick(c);
		return;
	}
	c->fetched_ms = orch_now_ms();
	for (struct greq *q = c->waiting; q; q = q->next) {
		q->fetched = true;
		q->need_fetch = false;
	}
	orch_log(ORCH_LOG_INFO, "git", "fetched", "repo", c->repo, NULL);
	kick(c);
}

static int start_fetch(struct gcache_state *c, struct orch_error *err)
{
	struct git_mod *m = c->m;
	struct gstrv argv = {0};
	const char *url = c->repo;
	_cleanup_free_ char *up = NULL, *prog = NULL;
	git_argv(&m->g, &argv);
	gstrv_push(&argv, "--git-dir");
	gstrv_push(&argv, c->p.mirror);
	gstrv_push(&argv, "fetch");
	gstrv_push(&argv, "--quiet");
	gstrv_push(&argv, "--prune");
	gstrv_push(&argv, "--no-tags");
	gstrv_push(&argv, "--no-write-fetch-head");
	gstrv_push(&argv, "--no-auto-gc");
	if (git_repo_is_local(c->repo)) {
		/* read with the submitter's permissions, never root's */
		if (asprintf(&prog, "%s-upload-pack", m->g.git) < 0)
			prog = NULL;
		up = prog ? gcache_as_user(m, prog, c->uid, c->gid) : NULL;
		if (c->uid != 0 && !up) {
			gstrv_free(&argv);
			return orch_err(err, -ENOMEM, "out of memory");
		}
		if (up)
			gstrv_pushf(&argv, "--upload-pack=%s", up);
	}
	gstrv_push(&argv, "--end-of-options");
	gstrv_push(&argv, url);
	gstrv_push(&argv, "+HEAD:refs/orch/head");
	gstrv_push(&argv, "+refs/heads/*:refs/heads/*");
	gstrv_push(&argv, "+refs/tags/*:refs/tags/*");
	/* a full commit id not advertised by any ref: servers that allow it send it */
	for (struct greq *q = c->waiting; q; q = q->next)
		if (q->need_fetch && q->ref && git_oid_valid(q->ref))
			gstrv_pushf(&argv, "+%s:refs/orch/want/%s", q->ref, q->ref);
	orch_log(ORCH_LOG_DEBUG, "git", "fetching", "repo", c->repo, NULL);
	return start_git(c, &argv, url, on_fetch, c, &c->proc,
			 (uint64_t)m->g.cfg->max_repo_mib * 1024 * 1024, err);
}

static void on_resolved(const struct gproc_result *res, void *data)
{
	struct greq *q = data;
	struct gcache_state *c = q->c;
	q->proc = NULL;
	char oid[80] = "";
	if (gproc_ok(res)) {
		snprintf(oid, sizeof(oid), "%.*s", (int)strcspn(res->out, "\n"), res->out);
		if (git_oid_valid(oid)) {
			unlink_req(&c->resolving, q);
			if (q->cb)
				q->cb(0, NULL, oid, &c->p, q->data);
			req_free(q);
			return;
		}
	}
	unlink_req(&c->resolving, q);
	if (!q->fetched) {
		/* not in the cache yet: fetch once more for it */
		q->need_fetch = true;
		q->next = c->waiting;
		c->waiting = q;
		kick(c);
		return;
	}
	char msg[400];
	snprintf(msg, sizeof(msg), "%.200s has no branch, tag or commit '%.100s'", c->repo,
		 q->ref ? q->ref : "HEAD");
	if (q->cb)
		q->cb(-ENOENT, msg, NULL, &c->p, q->data);
	req_free(q);
}

static int start_resolve(struct greq *q, struct orch_error *err)
{
	struct gcache_state *c = q->c;
	struct gstrv argv = {0};
	git_argv(&c->m->g, &argv);
	gstrv_push(&argv, "--git-dir");
	gstrv_push(&argv, c->p.mirror);
	gstrv_push(&argv, "rev-parse");
	gstrv_push(&argv, "--verify");
	gstrv_push(&argv, "--quiet");
	gstrv_push(&argv, "--end-of-options");
	gstrv_pushf(&argv, "%s^{commit}", q->ref ? q->ref : "refs/orch/head");
	return start_git(c, &argv, NULL, on_resolved, q, &q->proc, 0, err);
}

static void kick(struct gcache_state *c)
{
	struct orch_error err = {0};
	int r;
	if (c->proc)
		return;
	while (!c->ready && c->waiting) {
		if ((r = init_step(c, &err)) < 0) {
			fail_all(&c->waiting, r, err.msg);
			return;
		}
		if (c->proc)
			return;
	}
	if (!c->waiting)
		return;
	bool stale = !c->fetched_ms ||
		     orch_now_ms() - c->fetched_ms >= (uint64_t)c->m->g.cfg->fetch_interval_ms;
	bool need = false;
	for (struct greq *q = c->waiting; q; q = q->next)
		need = need || (!q->fetched && (stale || q->need_fetch));
	if (need) {
		if ((r = start_fetch(c, &err)) < 0)
			fail_all(&c->waiting, r, err.msg);
		return;
	}
	while (c->waiting) {
		struct greq *q = c->waiting;
		c->waiting = q->next;
		q->next = c->resolving;
		c->resolving = q;
		if ((r = start_resolve(q, &err)) < 0) {
			unlink_req(&c->resolving, q);
			if (q->cb)
				q->cb(r, err.msg, NULL, &c->p, q->data);
			req_free(q);
		}
	}
}

int gcache_resolve(struct git_mod *m, const char *repo, uid_t uid, gid_t gid, const char *ref,
		   gcache_cb cb, void *data, struct orch_error *err)
{
	bool local = git_repo_is_local(repo);
	struct gcache_state *c;
	int r;
	for (c = m->caches; c; c = c->next)
		if (strcmp(c->repo, repo) == 0 && (!local || c->uid == uid))
			break;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || !(c->repo = strdup(repo))) {
			free(c);
			return orch_err(err, -ENOMEM, "out of memory");
		}
		c->m = m;
		c->uid = uid;
		c->gid = gid;
		if ((r = gcache_paths(m, repo, uid, &c->p, err)) < 0) {
			free(c->repo);
			free(c);
			return r;
		}
		c->next = m->caches;
		m->caches = c;
	}
	if (local && (c->uid != uid || c->gid != gid)) {
		c->uid = uid;
		c->gid = gid;
	}
	struct greq *q = calloc(1, sizeof(*q));
	if (!q || (ref && !(q->ref = strdup(ref)))) {
		free(q);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	q->c = c;
	q->cb = cb;
	q->data = data;
	/* a local repository is read again for every task: permissions may have changed */
	q->need_fetch = local;
	q->next = c->waiting;
	c->waiting = q;
	kick(c);
	return 0;
}

void gcache_forget(struct git_mod *m, void *data)
{
	for (struct gcache_state *c = m->caches; c; c = c->next) {
		for (struct greq *q = c->waiting; q; q = q->next)
			if (q->data == data)
				q->cb = NULL;
		for (struct greq *q = c->resolving; q; q = q->next)
			if (q->data == data)
				q->cb = NULL;
	}
}

void gcache_free_all(struct git_mod *m)
{
	while (m->caches) {
		struct gcache_state *c = m->caches;
		m->caches = c->next;
		gproc_cancel(c->proc);
		for (struct greq **l = &c->waiting; *l;) {
			struct greq *q = *l;
			*l = q->next;
			req_free(q);
		}
		for (struct greq **l = &c->resolving; *l;) {
			struct greq *q = *l;
			*l = q->next;
			req_free(q);
		}
		gcache_paths_done(&c->p);
		free(c->repo);
		free(c);
	}
}
