/* SPDX-License-Identifier: Apache-2.0 */
/* The git gate: task.push sends a recorded result's commit upstream with orchd's
 * credentials, after its policy (git.push, docs/WORKSPACES.md) lets it. Each refusal
 * names its rule:
 *   refs            the destination ref must match git.push.refs (default "orch/" and any name)
 *   protected_paths no changed path below one of them unless the push allows it
 *   max_files, max_bytes, max_file_bytes   the size of the change
 *   secrets         no added line holds a line of any configured key file or matches a
 *                   git.push.secret_patterns expression
 *   no_force        never a force push: an existing remote ref must be an ancestor
 * Checks run on results.git (orchd's own repository); the diff is never shown to a
 * program the repository could choose (no external diff, no textconv). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "strv.h"
#include "git-int.h"
#include "git-policy.h"
#include "log.h"
#include "orchd-git.h"

enum push_step { G_RAW, G_SIZES, G_SCAN, G_REMOTE, G_ANCESTOR, G_PUSH, G_DONE };

struct gpush {
	struct gpush *next;
	struct git_mod *m;
	struct orch_rpc_req *req;
	int64_t task;
	uid_t uid; /* the caller: a local remote is written as this user */
	gid_t gid;
	struct git_row *row;
	struct gcache_paths p;
	char *url, *remote, *ref;
	char **allow; /* paths the caller allows to change */
	enum push_step step;
	struct gproc *proc;
	char *oids; /* new blobs, one a line, for the size check */
	size_t oids_len;
	char **paths; /* their paths, same order */
	size_t n_oids;
	char remote_oid[80];
};

static void push_free(struct gpush *p)
{
	for (struct gpush **l = &p->m->pushes; *l; l = &(*l)->next)
		if (*l == p) {
			*l = p->next;
			break;
		}
	gproc_cancel(p->proc);
	if (p->req) {
		orch_rpc_reply_error(p->req, ORCH_RPC_INTERNAL_ERROR, "orchd is stopping", NULL);
		orch_rpc_req_unref(p->req);
	}
	git_row_free(p->row);
	gcache_paths_done(&p->p);
	free(p->url);
	free(p->remote);
	free(p->ref);
	orch_strv_free(p->allow);
	free(p->oids);
	for (size_t i = 0; i < p->n_oids; i++)
		free(p->paths[i]);
	free(p->paths);
	free(p);
}

static void refuse(struct gpush *p, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void refuse(struct gpush *p, const char *rule, const char *fmt, ...)
{
	char msg[700], full[800], tb[24];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "push refused (%s): %s", rule, msg);
	snprintf(tb, sizeof(tb), "%lld", (long long)p->task);
	orch_log(ORCH_LOG_WARN, "git", "push refused", "task", tb, "rule", rule, "reason", msg,
		 NULL);
	orch_rpc_reply_error(p->req, ORCH_RPC_LIMIT, full, json_pack("{ss}", "rule", rule));
	orch_rpc_req_unref(p->req);
	p->req = NULL;
	push_free(p);
}

static void failed(struct gpush *p, const char *what, const struct gproc_result *res)
{
	char why[300], msg[500];
	gproc_describe(res, why, sizeof(why));
	snprintf(msg, sizeof(msg), "%s: %s", what, why);
	orch_rpc_reply_error(p->req, ORCH_RPC_INTERNAL_ERROR, msg, NULL);
	orch_rpc_req_unref(p->req);
	p->req = NULL;
	push_free(p);
}

static void next(struct gpush *p);

/* ":oldmode newmode oldoid newoid status\0path\0" per change. */
static void check_raw(struct gpush *p, const struct gproc_result *res)
{
	const struct git_push_policy *pp = &p->m->g.cfg->push;
	const char *end = res->out + res->out_len;
	size_t files = 0, cap = 0;
	if (res->out_truncated) {
		refuse(p, "max_files", "the change is too large to list");
		return;
	}
	for (const char *q = res->out; q < end && *q == ':';) {
		char newmode[8] = "", newoid[80] = "", status[4] = "";
		if (sscanf(q, ":%*7s %7s %*64s %64s %3s", newmode, newoid, status) != 3)
			break;
		q += strlen(q) + 1;
		if (q >= end)
			break;
		const char *path = q;
		q += strlen(q) + 1;
		files++;
		const char *prot = git_path_protected(pp, p->allow, path);
		if (prot) {
			refuse(p, "protected_paths",
			       "%.300s changes, and %.100s may change only with an explicit allow "
			       "(orch push --allow %.100s)",
			       path, prot, prot);
			return;
		}
		if (status[0] == 'D' || strcmp(newmode, "160000") == 0)
			continue;
		if (p->n_oids == cap) {
			cap = cap ? cap * 2 : 64;
			char **v = realloc(p->paths, cap * sizeof(char *));
			char *o = realloc(p->oids, cap * 65 + 1);
			if (v)
				p->paths = v;
			if (o)
				p->oids = o;
			if (!v || !o) {
				refuse(p, "max_files", "out of memory");
				return;
			}
		}
		p->paths[p->n_oids] = strdup(path);
		p->oids_len += (size_t)sprintf(p->oids + p->oids_len, "%.64s\n", newoid);
		p->n_oids++;
	}
	if (pp->max_files && (int64_t)files > pp->max_files) {
		refuse(p, "max_files", "%zu files change, more than git.push.max_files (%lld)",
		       files, (long long)pp->max_files);
		return;
	}
	p->step = G_SIZES;
	next(p);
}

static void check_sizes(struct gpush *p, const struct gproc_result *res)
{
	const struct git_push_policy *pp = &p->m->g.cfg->push;
	long long total = 0;
	size_t i = 0;
	for (const char *q = res->out; *q && i < p->n_oids; i++) {
		long long sz = strtoll(q, NULL, 10);
		if (pp->max_file_bytes && sz > pp->max_file_bytes) {
			refuse(p, "max_file_bytes",
			       "%.300s has %lld bytes, more than git.push.max_file_bytes (%lld)",
			       p->paths[i], sz, (long long)pp->max_file_bytes);
			return;
		}
		total += sz;
		q += strcspn(q, "\n");
		if (*q)
			q++;
	}
	if (pp->max_bytes && total > pp->max_bytes) {
		refuse(p, "max_bytes",
		       "the new and changed files hold %lld bytes, more than git.push.max_bytes "
		       "(%lld)",
		       total, (long long)pp->max_bytes);
		return;
	}
	p->step = G_SCAN;
	next(p);
}

/* Every added line of the diff against the key files' lines and the patterns. */
static void check_secrets(struct gpush *p, const struct gproc_result *res)
{
	const struct git_push_policy *pp = &p->m->g.cfg->push;
	struct git_scan_hit hit = {0};
	if (res->out_truncated) {
		refuse(p, "max_bytes", "the diff is too large to check");
		return;
	}
	int r = git_scan_diff(res->out, res->out_len, p->m->secrets, p->m->n_secrets,
			      pp->secret_patterns, pp->n_secret_patterns, &hit);
	if (r < 0) {
		refuse(p, "secrets", "cannot check the diff: %s", strerror(-r));
		return;
	}
	if (r > 0) {
		if (hit.pattern >= 0)
			refuse(p, "secrets",
			       "an added line of %s matches git.push.secret_patterns[%ld]",
			       hit.file[0] ? hit.file : "the change", hit.pattern);
		else
			refuse(p, "secrets",
			       "an added line of %s holds a line of a configured key file",
			       hit.file[0] ? hit.file : "the change");
		return;
	}
	p->step = G_REMOTE;
	next(p);
}

static void on_proc(const struct gproc_result *res, void *data)
{
	struct gpush *p = data;
	p->proc = NULL;
	switch (p->step) {
	case G_RAW:
		if (!gproc_ok(res)) {
			failed(p, "git diff-tree", res);
			return;
		}
		check_raw(p, res);
		return;
	case G_SIZES:
		if (!gproc_ok(res)) {
			failed(p, "git cat-file", res);
			return;
		}
		check_sizes(p, res);
		return;
	case G_SCAN:
		if (!gproc_ok(res)) {
			failed(p, "git diff", res);
			return;
		}
		check_secrets(p, res);
		return;
	case G_REMOTE:
		if (!gproc_ok(res)) {
			failed(p, "cannot reach the remote", res);
			return;
		}
		p->remote_oid[0] = '\0';
		if (res->out_len)
			sscanf(res->out, "%64[0-9a-f]", p->remote_oid);
		if (p->remote_oid[0] && strcmp(p->remote_oid, p->row->commit) == 0) {
			p->step = G_DONE; /* already there */
			next(p);
			return;
		}
		p->step = p->remote_oid[0] ? G_ANCESTOR : G_PUSH;
		next(p);
		return;
	case G_ANCESTOR:
		if (!gproc_ok(res)) {
			refuse(p, "no_force",
			       "%.200s is at %.12s on the remote, which the result does not "
			       "contain: pushing would rewrite it",
			       p->ref, p->remote_oid);
			return;
		}
		p->step = G_PUSH;
		next(p);
		return;
	case G_PUSH:
		if (!gproc_ok(res)) {
			failed(p, "git push", res);
			return;
		}
		p->step = G_DONE;
		next(p);
		return;
	case G_DONE:
		return;
	}
}

static int run(struct gpush *p, struct gstrv *argv, const char *url, const void *in, size_t in_len,
	       size_t out_max, struct orch_error *err)
{
	struct gstrv env = {0};
	git_env(&p->m->g, url, &env);
	struct git_spawn_opts o = {.out_fd = -1, .out_max = out_max, .in = in, .in_len = in_len};
	return git_spawn(&p->m->g, argv, &env, &o, on_proc, p, &p->proc, err);
}

static void results_argv(struct gpush *p, struct gstrv *argv)
{
	git_argv(&p->m->g, argv);
	gstrv_push(argv, "--git-dir");
	gstrv_push(argv, p->p.results);
}

/* --upload-pack / --receive-pack for a local remote: as the caller, never as root. */
static int as_caller(struct gpush *p, struct gstrv *argv, const char *opt, const char *prog)
{
	_cleanup_free_ char *path = NULL, *cmd = NULL;
	if (!git_repo_is_local(p->url) || p->uid == 0)
		return 0;
	if (asprintf(&path, "%s-%s", p->m->g.git, prog) < 0 ||
	    !(cmd = gcache_as_user(p->m, path, p->uid, p->gid)))
		return -ENOMEM;
	gstrv_pushf(argv, "--%s=%s", opt, cmd);
	return 0;
}

static void next(struct gpush *p)
{
	struct orch_error err = {0};
	const struct git_push_policy *pp = &p->m->g.cfg->push;
	struct gstrv argv = {0};
	int r = 0;
	switch (p->step) {
	case G_RAW:
		results_argv(p, &argv);
		gstrv_push(&argv, "diff-tree");
		gstrv_push(&argv, "-r");
		gstrv_push(&argv, "-z");
		gstrv_push(&argv, "--no-renames");
		gstrv_push(&argv, "--raw");
		gstrv_push(&argv, "--no-abbrev");
		gstrv_push(&argv, p->row->base);
		gstrv_push(&argv, p->row->commit);
		r = run(p, &argv, NULL, NULL, 0, 64 * 1024 * 1024, &err);
		break;
	case G_SIZES:
		if (!p->n_oids) {
			p->step = G_SCAN;
			next(p);
			return;
		}
		results_argv(p, &argv);
		gstrv_push(&argv, "cat-file");
		gstrv_push(&argv, "--batch-check=%(objectsize)");
		r = run(p, &argv, NULL, p->oids, p->oids_len, 16 * 1024 * 1024, &err);
		break;
	case G_SCAN:
		results_argv(p, &argv);
		gstrv_push(&argv, "diff");
		gstrv_push(&argv, "--no-ext-diff");
		gstrv_push(&argv, "--no-textconv");
		gstrv_push(&argv, "--no-color");
		gstrv_push(&argv, "--no-renames");
		gstrv_push(&argv, "--text");
		gstrv_push(&argv, "-U0");
		gstrv_push(&argv, p->row->base);
		gstrv_push(&argv, p->row->commit);
		r = run(p, &argv, NULL, NULL, 0,
			(size_t)(pp->max_bytes ? pp->max_bytes * 2 : 256 * 1024 * 1024) +
				4 * 1024 * 1024,
			&err);
		break;
	case G_REMOTE:
		git_argv(&p->m->g, &argv);
		gstrv_push(&argv, "ls-remote");
		if ((r = as_caller(p, &argv, "upload-pack", "upload-pack")) < 0) {
			gstrv_free(&argv);
			break;
		}
		gstrv_push(&argv, "--end-of-options");
		gstrv_push(&argv, p->url);
		gstrv_push(&argv, p->ref);
		r = run(p, &argv, p->url, NULL, 0, 1024 * 1024, &err);
		break;
	case G_ANCESTOR:
		results_argv(p, &argv);
		gstrv_push(&argv, "merge-base");
		gstrv_push(&argv, "--is-ancestor");
		gstrv_push(&argv, p->remote_oid);
		gstrv_push(&argv, p->row->commit);
		r = run(p, &argv, NULL, NULL, 0, 65536, &err);
		break;
	case G_PUSH:
		results_argv(p, &argv);
		gstrv_push(&argv, "push");
		gstrv_push(&argv, "--quiet");
		gstrv_push(&argv, "--no-verify");
		gstrv_push(&argv, "--no-follow-tags");
		if ((r = as_caller(p, &argv, "receive-pack", "receive-pack")) < 0) {
			gstrv_free(&argv);
			break;
		}
		gstrv_push(&argv, "--end-of-options");
		gstrv_push(&argv, p->url);
		/* no '+': a non-fast-forward is refused by git and by the remote */
		gstrv_pushf(&argv, "%s:%s", p->row->commit, p->ref);
		r = run(p, &argv, p->url, NULL, 0, 1024 * 1024, &err);
		break;
	case G_DONE: {
		char tb[24];
		json_t *rec =
			json_pack("{sssssssssI}", "remote", p->remote, "url", p->url, "ref", p->ref,
				  "commit", p->row->commit, "at", (json_int_t)store_now_ms());
		if (rec && git_store_add_push(p->m->d->store, p->task, rec, &err) < 0)
			orch_log(ORCH_LOG_WARN, "git", "cannot record the push", "error", err.msg,
				 NULL);
		json_decref(rec);
		snprintf(tb, sizeof(tb), "%lld", (long long)p->task);
		orch_log(ORCH_LOG_INFO, "git", "pushed", "task", tb, "url", p->url, "ref", p->ref,
			 "commit", p->row->commit, NULL);
		orch_rpc_reply(p->req, json_pack("{sIsbssssssss}", "id", (json_int_t)p->task,
						 "pushed", 1, "remote", p->remote, "url", p->url,
						 "ref", p->ref, "commit", p->row->commit));
		orch_rpc_req_unref(p->req);
		p->req = NULL;
		push_free(p);
		return;
	}
	}
	if (r < 0) {
		orch_rpc_reply_error(p->req, ORCH_RPC_INTERNAL_ERROR, err.msg, NULL);
		orch_rpc_req_unref(p->req);
		p->req = NULL;
		push_free(p);
	}
}

int orchd_git_push(struct orchd *d, struct orch_rpc_req *req, const struct orchd_git_push *a,
		   struct orch_error *err)
{
	struct git_mod *m = d->git;
	struct git_row *row = NULL;
	int64_t id = a->task;
	int r;
	if ((r = gctl_recorded_row(m, id, &row, err)) < 0)
		return r;
	if (!row->commit) {
		git_row_free(row);
		return orch_err(err, ORCH_RPC_CONFLICT,
				"task %lld changed nothing: nothing to push", (long long)id);
	}
	const char *url = row->repo;
	if (a->remote) {
		const struct git_remote *gr = git_config_remote(m->g.cfg, a->remote);
		if (!gr) {
			git_row_free(row);
			return orch_err(err, ORCH_RPC_NOT_FOUND,
					"params.remote: no remote named \"%s\" in git.remotes",
					a->remote);
		}
		url = gr->url;
	}
	char ref[300];
	if (!a->to)
		snprintf(ref, sizeof(ref), "refs/heads/orch/task-%lld", (long long)id);
	else if (strncmp(a->to, "refs/", 5) == 0)
		snprintf(ref, sizeof(ref), "%s", a->to);
	else
		snprintf(ref, sizeof(ref), "refs/heads/%s", a->to);
	if (!git_refname_valid(ref)) {
		git_row_free(row);
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.to: not a valid ref name");
	}
	struct gpush *p = calloc(1, sizeof(*p));
	if (!p) {
		git_row_free(row);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	p->m = m;
	p->task = id;
	p->row = row;
	p->uid = a->uid;
	p->gid = a->gid;
	p->req = orch_rpc_req_ref(req);
	p->next = m->pushes;
	m->pushes = p;
	size_t n = 0;
	while (a->allow && a->allow[n])
		n++;
	p->allow = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; p->allow && i < n; i++)
		if (!(p->allow[i] = strdup(a->allow[i]))) {
			orch_strv_free(p->allow);
			p->allow = NULL;
		}
	if (!p->allow || !(p->url = strdup(url)) ||
	    !(p->remote = strdup(a->remote ? a->remote : "origin")) || !(p->ref = strdup(ref)) ||
	    (r = gcache_paths(m, row->repo, (uid_t)row->uid, &p->p, err)) < 0) {
		orch_rpc_req_unref(p->req);
		p->req = NULL;
		push_free(p);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	if (!git_ref_allowed(&m->g.cfg->push, ref)) {
		refuse(p, "refs", "%.255s does not match git.push.refs", ref);
		return 0;
	}
	p->step = G_RAW;
	next(p);
	return 0;
}

void gpush_free_all(struct git_mod *m)
{
	while (m->pushes)
		push_free(m->pushes);
}
