/* SPDX-License-Identifier: Apache-2.0 */
/* Recording a final repository task's result (state "pending"): the files of its
 * workspace, committed by the agent or not, become one commit on top of the base, on
 * branch orch/task-<id> of the cache's results.git.
 *
 * The workspace is the agent's work and hostile; a compromised guest may even change it
 * while orchd reads. So it is read only inside a sandbox (git-exec.h) as the agent's uid:
 * the workspace read-only at /w, a tmpfs of git.max_result_mib for a scratch repository,
 * nothing else of the host but /usr. There git builds the index from the base tree (when
 * the workspace's own .git still has it), adds every file (.gitignore applies; the
 * supervisor's transcript.jsonl keeps the base's version), writes the tree and sends a
 * bundle of the new objects on stdout (RLIMIT_FSIZE bounds it). The host fetches the
 * bundle into results.git (objects checked), takes its tree and makes its own commit:
 * author the agent's profile, the prompt in the message, parent the base. Symlinks are
 * stored as links, never followed; the host never opens a file of the workspace.
 *
 * Crash safety: the row is "pending" from the transaction that ended the task; the
 * branch is created with update-ref's create-only transaction; a restart finds "pending"
 * rows and starts over, and a branch that already exists is taken as the result, so a
 * result is recorded exactly once. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs-util.h"
#include "git-int.h"
#include "git-ws.h"
#include "log.h"

#define CHANGES_MAX 1000
#define STAT_OUT_MAX (8 * 1024 * 1024)

enum rec_step {
	R_BRANCH,
	R_MOUNT,
	R_SANDBOX,
	R_FETCH,
	R_TREES,
	R_COMMIT,
	R_UPDATE,
	R_NUMSTAT,
	R_NAMES,
	R_UMOUNT,
	R_END
};

struct grec {
	struct grec *next;
	struct git_mod *m;
	int64_t task;
	struct git_row *row;
	struct task_row *t;
	struct gcache_paths p;
	enum rec_step step;
	struct gproc *proc;
	struct orch_timer *delay;
	char *bundle;
	int ws_fd, out_fd;
	char tree[80], base_tree[80], commit[80];
	json_t *changes;
	int64_t files, ins, del;
	bool no_changes;
	char error[600];
};

static void rec_free(struct grec *r)
{
	for (struct grec **l = &r->m->recs; *l; l = &(*l)->next)
		if (*l == r) {
			*l = r->next;
			break;
		}
	gproc_cancel(r->proc);
	orch_timer_free(r->delay);
	if (r->ws_fd >= 0)
		close(r->ws_fd);
	if (r->out_fd >= 0)
		close(r->out_fd);
	if (r->bundle)
		unlink(r->bundle);
	free(r->bundle);
	json_decref(r->changes);
	git_row_free(r->row);
	task_row_free(r->t);
	gcache_paths_done(&r->p);
	free(r);
}

bool grec_running(struct git_mod *m, int64_t task)
{
	for (struct grec *r = m->recs; r; r = r->next)
		if (r->task == task)
			return true;
	return false;
}

static void step(struct grec *r);

/* Ends the recording: the row says how it went, waiters of the task are answered. */
static void finish(struct grec *r)
{
	struct orch_error err = {0};
	struct git_mod *m = r->m;
	char tb[24];
	int64_t task = r->task;
	snprintf(tb, sizeof(tb), "%lld", (long long)task);
	if (r->error[0]) {
		if (git_store_set_state(m->d->store, task, "failed", r->error, &err) < 0)
			orch_log(ORCH_LOG_ERROR, "git", "cannot record the failure", "task", tb,
				 "error", err.msg, NULL);
		orch_log(ORCH_LOG_WARN, "git", "result not recorded", "task", tb, "error", r->error,
			 NULL);
	}
	rec_free(r);
	gws_retention(m);
	waiters_finished(m->d, task);
}

static void failf(struct grec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct grec *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	/* unmount still (a failed result keeps its image for retention) */
	r->step = R_UMOUNT;
	step(r);
}

static int host_git(struct grec *r, struct gstrv *argv, const void *in, size_t in_len,
		    struct gstrv *env_extra, struct orch_error *err);

static void on_proc(const struct gproc_result *res, void *data)
{
	struct grec *r = data;
	char why[300];
	r->proc = NULL;
	bool ok = gproc_ok(res);
	if (!ok)
		gproc_describe(res, why, sizeof(why));
	switch (r->step) {
	case R_BRANCH:
		if (ok && sscanf(res->out, "%64[0-9a-f]", r->commit) == 1 &&
		    git_oid_valid(r->commit)) {
			r->step = R_NUMSTAT; /* recorded before a restart: take it */
			break;
		}
		r->commit[0] = '\0';
		r->step = R_MOUNT;
		break;
	case R_MOUNT:
		if (!ok) {
			failf(r, "cannot mount the workspace again: %s", why);
			return;
		}
		r->step = R_SANDBOX;
		break;
	case R_SANDBOX:
		close(r->ws_fd);
		close(r->out_fd);
		r->ws_fd = r->out_fd = -1;
		if (!ok) {
			/* the sandbox's tmpfs or RLIMIT_FSIZE: both git.max_result_mib */
			if ((WIFSIGNALED(res->status) && WTERMSIG(res->status) == SIGXFSZ) ||
			    strstr(res->err, "No space left on device") ||
			    strstr(res->err, "File too large"))
				failf(r, "the result is larger than git.max_result_mib (%lld MiB)",
				      (long long)r->m->g.cfg->max_result_mib);
			else
				failf(r, "reading the workspace failed: %s", why);
			return;
		}
		r->step = R_FETCH;
		break;
	case R_FETCH:
		if (!ok) {
			failf(r, "cannot take in the result: %s", why);
			return;
		}
		r->step = R_TREES;
		break;
	case R_TREES:
		if (!ok ||
		    sscanf(res->out, "%64[0-9a-f]\n%64[0-9a-f]", r->tree, r->base_tree) != 2) {
			failf(r, "cannot read the result's tree: %s", ok ? "no tree" : why);
			return;
		}
		r->no_changes = strcmp(r->tree, r->base_tree) == 0;
		r->step = r->no_changes ? R_UPDATE : R_COMMIT;
		break;
	case R_COMMIT:
		if (!ok || sscanf(res->out, "%64[0-9a-f]", r->commit) != 1) {
			failf(r, "git commit-tree failed: %s", ok ? "no commit" : why);
			return;
		}
		r->step = R_UPDATE;
		break;
	case R_UPDATE:
		if (!ok) {
			failf(r, "cannot create branch orch/task-%lld: %s", (long long)r->task,
			      why);
			return;
		}
		r->step = r->no_changes ? R_UMOUNT : R_NUMSTAT;
		break;
	case R_NUMSTAT:
	case R_NAMES:
		if (!ok) {
			failf(r, "git diff-tree failed: %s", why);
			return;
		}
		if (r->step == R_NUMSTAT) {
			/* added \t deleted \t path \0 ("-" for binary files) */
			for (const char *p = res->out; p < res->out + res->out_len;) {
				long long a = 0, d = 0;
				if (p[0] != '-')
					a = strtoll(p, NULL, 10);
				const char *t1 =
					memchr(p, '\t', (size_t)(res->out + res->out_len - p));
				if (!t1)
					break;
				if (t1[1] != '-')
					d = strtoll(t1 + 1, NULL, 10);
				r->ins += a;
				r->del += d;
				p += strlen(p) + 1;
			}
		} else {
			/* status \0 path \0 */
			for (const char *p = res->out; p < res->out + res->out_len;) {
				const char *st = p;
				p += strlen(p) + 1;
				if (p >= res->out + res->out_len)
					break;
				const char *path = p;
				p += strlen(p) + 1;
				r->files++;
				if (json_array_size(r->changes) < CHANGES_MAX)
					json_array_append_new(
						r->changes,
						json_pack("{ssss}", "status", st, "path", path));
			}
		}
		r->step++;
		break;
	case R_UMOUNT:
		if (!ok)
			orch_log(ORCH_LOG_WARN, "git", "cannot unmount a workspace", "mount",
				 r->row->mount, "error", why, NULL);
		r->step = R_END;
		break;
	case R_END:
		break;
	}
	step(r);
}

static int host_git(struct grec *r, struct gstrv *argv, const void *in, size_t in_len,
		    struct gstrv *env_extra, struct orch_error *err)
{
	struct gstrv env = {0};
	git_env(&r->m->g, NULL, &env);
	for (size_t i = 0; env_extra && i < env_extra->n; i++)
		gstrv_push(&env, env_extra->v[i]);
	if (env_extra)
		gstrv_free(env_extra);
	struct git_spawn_opts o = {
		.out_fd = -1, .out_max = STAT_OUT_MAX, .in = in, .in_len = in_len};
	return git_spawn(&r->m->g, argv, &env, &o, on_proc, r, &r->proc, err);
}

static void results_git(struct grec *r, struct gstrv *argv)
{
	git_argv(&r->m->g, argv);
	gstrv_push(argv, "--git-dir");
	gstrv_push(argv, r->p.results);
}

/* The script the sandbox runs, git's fixed options in a shell function. */
static char *sandbox_script(struct git_mod *m)
{
	struct gstrv gv = {0};
	git_argv(&m->g, &gv);
	size_t n = 64;
	for (size_t i = 0; i < gv.n; i++)
		n += strlen(gv.v[i]) + 3;
	char *fn = malloc(n), *o = fn;
	if (!fn) {
		gstrv_free(&gv);
		return NULL;
	}
	o += sprintf(o, "g() { ");
	for (size_t i = 0; i < gv.n; i++) /* no option holds a quote */
		o += sprintf(o, "'%s' ", gv.v[i]);
	sprintf(o, "\"$@\"; }\n");
	gstrv_free(&gv);
	char *s = NULL;
	if (asprintf(&s,
		     "set -eu\n%s"
		     "cd /w\n"
		     "g init -q --bare /g/r.git\n"
		     "export GIT_DIR=/g/r.git GIT_INDEX_FILE=/g/index GIT_WORK_TREE=/w\n"
		     "if [ -d /w/.git/objects ] && [ ! -L /w/.git ] && [ ! -L /w/.git/objects ]; "
		     "then echo /w/.git/objects >/g/r.git/objects/info/alternates; fi\n"
		     "if g cat-file -e \"$1^{tree}\" 2>/dev/null; then g read-tree \"$1\"; fi\n"
		     "g add -A -- . ':(top,exclude)transcript.jsonl'\n"
		     "t=$(g write-tree)\n"
		     "if g cat-file -e \"$1^{commit}\" 2>/dev/null; then\n"
		     "  c=$(echo result | g commit-tree -p \"$1\" \"$t\")\n"
		     "  g update-ref refs/heads/result \"$c\"\n"
		     "  g bundle create -q - refs/heads/result \"^$1\"\n"
		     "else\n"
		     "  c=$(echo result | g commit-tree \"$t\")\n"
		     "  g update-ref refs/heads/result \"$c\"\n"
		     "  g bundle create -q - refs/heads/result\n"
		     "fi\n",
		     fn) < 0)
		s = NULL;
	free(fn);
	return s;
}

static int start_sandbox(struct grec *r, struct orch_error *err)
{
	struct git_mod *m = r->m;
	struct gstrv argv = {0}, env = {0};
	char dir[4200];
	int fds[1];
	int rc;
	/* the agent's uid: the VM's slot, or nobody when that VM is gone from the config */
	const struct orchd_vm_config *vc =
		r->row->vm ? orchd_config_vm(m->d->cfg, r->row->vm) : NULL;
	uid_t uid = vc && r->row->slot >= 0 ? (uid_t)(vc->uid_base + r->row->slot) : 65534;
	snprintf(dir, sizeof(dir), "%s/tmp", m->g.cfg->dir);
	if ((rc = orchd_mkdir(dir, 0700)) < 0)
		return orch_errno(err, rc, "cannot create %s", dir);
	if (asprintf(&r->bundle, "%s/task-%lld.result.bundle", dir, (long long)r->task) < 0) {
		r->bundle = NULL;
		return orch_err(err, -ENOMEM, "out of memory");
	}
	r->out_fd = open(r->bundle, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->out_fd < 0)
		return orch_errno(err, -errno, "cannot create %s", r->bundle);
	r->ws_fd = open(r->row->mount, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r->ws_fd < 0)
		return orch_errno(err, -errno, "cannot open %s", r->row->mount);
	_cleanup_free_ char *script = sandbox_script(m);
	if (!script)
		return orch_err(err, -ENOMEM, "out of memory");
	uint64_t max = (uint64_t)m->g.cfg->max_result_mib * 1024 * 1024;
	git_sandbox_argv(&m->g, uid, uid, false, max, &argv);
	gstrv_push(&argv, "/bin/sh");
	gstrv_push(&argv, "-c");
	gstrv_push(&argv, script);
	gstrv_push(&argv, "orch-record");
	gstrv_push(&argv, r->row->base);
	git_sandbox_env(&env);
	gstrv_push(&env, "GIT_AUTHOR_NAME=orch");
	gstrv_push(&env, "GIT_AUTHOR_EMAIL=orch@orch.invalid");
	gstrv_push(&env, "GIT_COMMITTER_NAME=orch");
	gstrv_push(&env, "GIT_COMMITTER_EMAIL=orch@orch.invalid");
	fds[0] = r->ws_fd;
	struct git_spawn_opts o = {.out_fd = r->out_fd, .fds = fds, .n_fds = 1, .fsize_max = max};
	return git_spawn(&m->g, &argv, &env, &o, on_proc, r, &r->proc, err);
}

/* The commit message: the prompt (or the command), then trailers. */
static char *message(struct grec *r)
{
	const char *text = r->row->prompt;
	_cleanup_free_ char *cmd = NULL;
	if (!text || !*text) {
		_cleanup_json_ json_t *a = json_loads(r->t->argv_json, 0, NULL);
		size_t i, n = 0;
		json_t *v;
		json_array_foreach(a, i, v) n += json_string_length(v) + 1;
		cmd = calloc(1, n + 1);
		if (cmd)
			json_array_foreach(a, i, v)
			{
				if (i)
					strcat(cmd, " ");
				strcat(cmd, json_string_value(v));
			}
		text = cmd ? cmd : "";
	}
	size_t sl = strcspn(text, "\n");
	char *m = NULL;
	if (asprintf(&m,
		     "orch task %lld: %.*s%s\n\n%s\n\nOrch-Task: %lld\nOrch-State: %s\n"
		     "Orch-Profile: %s\nOrch-Base: %s\n",
		     (long long)r->task, (int)(sl > 72 ? 69 : sl), text, sl > 72 ? "..." : "", text,
		     (long long)r->task, task_state_name(r->t->state),
		     r->t->profile ? r->t->profile : "none", r->row->base) < 0)
		return NULL;
	return m;
}

static void step(struct grec *r)
{
	struct orch_error err = {0};
	struct git_mod *m = r->m;
	struct gstrv argv = {0};
	int rc = 0;

	switch (r->step) {
	case R_BRANCH:
		results_git(r, &argv);
		gstrv_push(&argv, "rev-parse");
		gstrv_push(&argv, "--verify");
		gstrv_push(&argv, "--quiet");
		gstrv_pushf(&argv, "refs/heads/orch/task-%lld^{commit}", (long long)r->task);
		rc = host_git(r, &argv, NULL, 0, NULL, &err);
		break;
	case R_MOUNT:
		if (!r->row->ws_present || !r->row->mount || !r->row->image) {
			failf(r, "the task's workspace is gone");
			return;
		}
		if (ws_mounted(r->row->mount)) {
			r->step = R_SANDBOX;
			step(r);
			return;
		}
		if ((rc = ws_mountpoint(r->row->mount, &err)) >= 0)
			rc = ws_mount_start(&m->g, r->row->image, r->row->mount, false, on_proc, r,
					    &r->proc, &err);
		break;
	case R_SANDBOX:
		rc = start_sandbox(r, &err);
		break;
	case R_FETCH:
		results_git(r, &argv);
		gstrv_push(&argv, "fetch");
		gstrv_push(&argv, "--quiet");
		gstrv_push(&argv, "--no-tags");
		gstrv_push(&argv, "--no-write-fetch-head");
		gstrv_push(&argv, "--no-auto-gc");
		gstrv_push(&argv, "--end-of-options");
		gstrv_push(&argv, r->bundle);
		gstrv_pushf(&argv, "+refs/heads/result:refs/orch/incoming/task-%lld",
			    (long long)r->task);
		rc = host_git(r, &argv, NULL, 0, NULL, &err);
		break;
	case R_TREES:
		results_git(r, &argv);
		gstrv_push(&argv, "rev-parse");
		gstrv_pushf(&argv, "refs/orch/incoming/task-%lld^{tree}", (long long)r->task);
		gstrv_pushf(&argv, "%s^{tree}", r->row->base);
		rc = host_git(r, &argv, NULL, 0, NULL, &err);
		break;
	case R_COMMIT: {
		_cleanup_free_ char *msg = message(r);
		struct gstrv env = {0};
		const char *who = r->t->profile ? r->t->profile : "orch";
		if (!msg) {
			failf(r, "out of memory");
			return;
		}
		gstrv_pushf(&env, "GIT_AUTHOR_NAME=%s", who);
		gstrv_pushf(&env, "GIT_AUTHOR_EMAIL=%s@orch.invalid", who);
		gstrv_push(&env, "GIT_COMMITTER_NAME=orchd");
		gstrv_push(&env, "GIT_COMMITTER_EMAIL=orchd@orch.invalid");
		results_git(r, &argv);
		gstrv_push(&argv, "commit-tree");
		gstrv_push(&argv, "-p");
		gstrv_push(&argv, r->row->base);
		gstrv_push(&argv, "-F");
		gstrv_push(&argv, "-");
		gstrv_push(&argv, r->tree);
		rc = host_git(r, &argv, msg, strlen(msg), &env, &err);
		break;
	}
	case R_UPDATE: {
		char in[400];
		if (r->no_changes)
			snprintf(in, sizeof(in), "delete refs/orch/incoming/task-%lld\n",
				 (long long)r->task);
		else
			snprintf(in, sizeof(in),
				 "create refs/heads/orch/task-%lld %s\n"
				 "delete refs/orch/incoming/task-%lld\n",
				 (long long)r->task, r->commit, (long long)r->task);
		results_git(r, &argv);
		gstrv_push(&argv, "update-ref");
		gstrv_push(&argv, "--stdin");
		rc = host_git(r, &argv, in, strlen(in), NULL, &err);
		break;
	}
	case R_NUMSTAT:
	case R_NAMES:
		results_git(r, &argv);
		gstrv_push(&argv, "diff-tree");
		gstrv_push(&argv, "-r");
		gstrv_push(&argv, "-z");
		gstrv_push(&argv, "--no-renames");
		gstrv_push(&argv, "--no-ext-diff");
		gstrv_push(&argv, r->step == R_NUMSTAT ? "--numstat" : "--name-status");
		gstrv_push(&argv, r->row->base);
		gstrv_push(&argv, r->commit);
		rc = host_git(r, &argv, NULL, 0, NULL, &err);
		break;
	case R_UMOUNT:
		if (r->row->mount && ws_mounted(r->row->mount)) {
			rc = ws_umount_start(&m->g, r->row->mount, true, on_proc, r, &r->proc,
					     &err);
			break;
		}
		r->step = R_END;
		step(r);
		return;
	case R_END:
		/* the image stays (retention); the empty mount point goes */
		if (r->row->mount && !ws_mounted(r->row->mount))
			(void)ws_remove(NULL, r->row->mount, &err);
		/* "recorded" once nothing of the recording runs any more: a workspace can be
		 * removed as soon as its result says so (the commit is on its branch since
		 * R_COMMIT; after a restart R_BRANCH finds it) */
		if (!r->error[0]) {
			char branch[64];
			snprintf(branch, sizeof(branch), "orch/task-%lld", (long long)r->task);
			struct git_result_stats st = {
				.branch = r->no_changes ? NULL : branch,
				.commit = r->no_changes ? NULL : r->commit,
				.files_changed = r->files,
				.insertions = r->ins,
				.deletions = r->del,
			};
			_cleanup_free_ char *ch = json_dumps(r->changes, JSON_COMPACT);
			st.changes = ch;
			if (git_store_recorded(m->d->store, r->task, &st, &err) < 0) {
				snprintf(r->error, sizeof(r->error), "%s", err.msg);
			} else {
				char tb[24], fc[24];
				snprintf(tb, sizeof(tb), "%lld", (long long)r->task);
				snprintf(fc, sizeof(fc), "%lld", (long long)r->files);
				orch_log(ORCH_LOG_INFO, "git", "result recorded", "task", tb,
					 "commit", r->no_changes ? "none" : r->commit, "files", fc,
					 NULL);
			}
		}
		finish(r);
		return;
	}
	if (rc < 0) {
		if (r->step == R_UMOUNT) {
			r->step = R_END;
			step(r);
			return;
		}
		failf(r, "%s", err.msg);
	}
}

static void on_delay(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	step(data);
}

void grec_start(struct git_mod *m, int64_t task)
{
	struct orch_error err = {0};
	char tb[24];
	if (grec_running(m, task))
		return;
	snprintf(tb, sizeof(tb), "%lld", (long long)task);
	struct grec *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->m = m;
	r->task = task;
	r->ws_fd = r->out_fd = -1;
	r->changes = json_array();
	if (!r->changes || git_store_get(m->d->store, task, &r->row, &err) < 0 ||
	    store_task_get(m->d->store, task, &r->t, &err) < 0 ||
	    gcache_paths(m, r->row->repo, (uid_t)r->row->uid, &r->p, &err) < 0) {
		orch_log(ORCH_LOG_ERROR, "git", "cannot record a result", "task", tb, "error",
			 err.msg, NULL);
		json_decref(r->changes);
		git_row_free(r->row);
		task_row_free(r->t);
		free(r);
		return;
	}
	r->next = m->recs;
	m->recs = r;
	if (strcmp(r->row->state, "pending") != 0 || !r->row->base) {
		rec_free(r);
		return;
	}
	r->step = R_BRANCH;
	if (m->record_delay_ms) {
		orch_timer_add(m->d->loop, m->record_delay_ms, 0, on_delay, r, &r->delay);
		return;
	}
	step(r);
}

void grec_free_all(struct git_mod *m)
{
	while (m->recs)
		rec_free(m->recs);
}
