/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's repository tasks: start-up, the hooks the rest of orchd calls (orchd-git.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config-egress.h"
#include "fs-util.h"
#include "git-int.h"
#include "git-ws.h"
#include "log.h"
#include "orchd-git.h"
#include "rpc.h"
#include "schema.h"
#include "workspace-dirs.h"

#define SECRET_FILE_MAX (64 * 1024)
#define SECRET_LINE_MIN 8

/* Every line (of 8 bytes or more) of a key file: what the push gate looks for. */
static void add_secrets(struct git_mod *m, const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	_cleanup_free_ char *buf = malloc(SECRET_FILE_MAX + 1);
	ssize_t n;
	if (fd < 0 || !buf)
		return;
	while ((n = read(fd, buf, SECRET_FILE_MAX)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *save = NULL, *line = strtok_r(buf, "\r\n", &save); line;
	     line = strtok_r(NULL, "\r\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		size_t l = strlen(line);
		while (l && (line[l - 1] == ' ' || line[l - 1] == '\t'))
			line[--l] = '\0';
		/* armour lines are common text; the patterns catch them */
		if (l < SECRET_LINE_MIN || strncmp(line, "-----", 5) == 0)
			continue;
		char **v = realloc(m->secrets, (m->n_secrets + 2) * sizeof(char *));
		if (!v)
			break;
		m->secrets = v;
		if (!(m->secrets[m->n_secrets] = strdup(line)))
			break;
		m->secrets[++m->n_secrets] = NULL;
	}
	explicit_bzero(buf, SECRET_FILE_MAX + 1);
}

static void load_secrets(struct git_mod *m)
{
	const struct orchd_config *c = m->d->cfg;
	for (size_t i = 0; i < c->llm.n_upstreams; i++)
		add_secrets(m, c->llm.upstreams[i].key_file);
	for (size_t i = 0; c->egress && i < c->egress->n_injects; i++)
		add_secrets(m, c->egress->injects[i].key_file);
	for (size_t i = 0; i < c->git->n_creds; i++) {
		if (c->git->creds[i].token_file)
			add_secrets(m, c->git->creds[i].token_file);
		if (c->git->creds[i].ssh_key_file)
			add_secrets(m, c->git->creds[i].ssh_key_file);
	}
}

/* Why repository tasks cannot run on this host, or "" when they can. */
static void check_usable(struct git_mod *m)
{
	const struct git_ctx *g = &m->g;
	const char *missing = !g->git			? "git (install git)"
			      : !g->bwrap		? "bwrap (install bubblewrap)"
			      : !g->setpriv		? "setpriv (install util-linux)"
			      : !g->mkfs		? "mkfs.ext4 (install e2fsprogs)"
			      : !g->mount || !g->umount ? "mount (install util-linux)"
							: NULL;
	if (missing)
		snprintf(m->why, sizeof(m->why), "%s not found", missing);
	else if (access("/dev/loop-control", R_OK | W_OK) < 0)
		snprintf(m->why, sizeof(m->why),
			 "no loop devices (/dev/loop-control: %s); load the loop module",
			 strerror(errno));
	m->usable = m->why[0] == '\0';
}

int orchd_git_new(struct orchd *d, struct orch_error *err)
{
	const struct git_config *cfg = d->cfg->git;
	char path[4200];
	int r;
	struct git_mod *m = calloc(1, sizeof(*m));
	if (!m)
		return orch_err(err, -ENOMEM, "out of memory");
	m->d = d;
	d->git = m;
	if ((r = git_ctx_init(&m->g, d->loop, cfg, err)) < 0)
		return r;
	if ((r = orchd_mkdir_p(cfg->dir, 0700)) < 0)
		return orch_errno(err, r, "git: cannot create %s", cfg->dir);
	static const char *const subs[] = {"home", "images", "repos", "tmp", "home/.ssh", NULL};
	for (size_t i = 0; subs[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", cfg->dir, subs[i]);
		if ((r = orchd_mkdir(path, 0700)) < 0)
			return orch_errno(err, r, "git: cannot create %s", path);
	}
	const char *delay = getenv("ORCHD_GIT_TEST_RECORD_DELAY_MS");
	if (delay && *delay)
		m->record_delay_ms = strtoull(delay, NULL, 10);
	check_usable(m);
	if (!m->usable)
		orch_log(ORCH_LOG_WARN, "git", "repository tasks are not available", "reason",
			 m->why, NULL);
	/* A VM's virtiofsd copies the mounts of its share when it starts: task workspaces
	 * mounted later reach it only through a shared mount, made before any VM starts. */
	for (size_t i = 0; m->usable && i < d->n_vms; i++) {
		const struct orchd_vm_config *vc = d->vms[i]->cfg;
		struct orch_error e = {0};
		if (vc->backend != ORCHD_BACKEND_LIBVIRT)
			continue;
		if (orchd_workspace_private(d->cfg, vc, NULL, &e) < 0 ||
		    ws_share(vc->workspace, &e) < 0)
			orch_log(ORCH_LOG_WARN, "git",
				 "the VM's workspace is not a shared mount: its repository tasks "
				 "will fail",
				 "vm", vc->name, "error", e.msg, NULL);
	}
	load_secrets(m);
	/* results a previous orchd did not record (it died, or was stopped) */
	_cleanup_free_ int64_t *ids = NULL;
	size_t n = 0;
	if ((r = git_store_in_state(d->store, "pending", &ids, &n, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		grec_start(m, ids[i]);
	if (n)
		orch_logf(ORCH_LOG_INFO, "git", "%zu result(s) to record from before the restart",
			  n);
	gws_retention(m);
	return 0;
}

void orchd_git_free(struct orchd *d)
{
	struct git_mod *m = d->git;
	if (!m)
		return;
	gprep_free_all(m);
	grec_free_all(m);
	gop_free_all(m);
	gpush_free_all(m);
	gws_free_all(m);
	gcache_free_all(m);
	orch_timer_free(m->retention_timer);
	for (size_t i = 0; i < m->n_secrets; i++) {
		explicit_bzero(m->secrets[i], strlen(m->secrets[i]));
		free(m->secrets[i]);
	}
	free(m->secrets);
	git_ctx_done(&m->g);
	free(m);
	d->git = NULL;
}

int orchd_git_submit_check(struct orchd *d, uid_t uid, gid_t gid, const char *profile,
			   const char *repo, const char *ref, struct orchd_git_submit *ret,
			   struct orch_error *err)
{
	struct git_mod *m = d->git;
	const struct orchd_profile_config *pc =
		profile ? orchd_config_profile(d->cfg, profile) : NULL;
	*ret = (struct orchd_git_submit){0};
	if (!repo && ref)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.ref: needs params.repo");
	if (!repo && pc && pc->repo) {
		repo = pc->repo;
		ref = pc->ref;
	}
	if (!repo)
		return 0;
	if (!git_repo_valid(repo))
		return orch_err(
			err, ORCH_RPC_INVALID_PARAMS,
			"params.repo: expected an absolute path or an https, http, ssh, git "
			"or file URL (no password in it: credentials live in orchd's "
			"config)");
	if (ref && !git_ref_valid(ref))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.ref: expected a branch, tag or commit id");
	if (!m || !m->usable)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR,
				"repository tasks are not available on this host: %s",
				m ? m->why : "not started");
	ret->uid = uid;
	ret->gid = gid;
	if (!(ret->repo = strdup(repo)) || (ref && !(ret->ref = strdup(ref)))) {
		orchd_git_submit_done(ret);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

int orchd_git_task_insert(struct orchd *d, int64_t task, const struct orchd_git_submit *gs,
			  const char *prompt, struct orch_error *err)
{
	return git_store_insert(d->store, task, gs->repo, gs->ref, gs->uid, gs->gid, prompt, err);
}

void orchd_git_submit_done(struct orchd_git_submit *gs)
{
	free(gs->repo);
	free(gs->ref);
	*gs = (struct orchd_git_submit){0};
}

static int task_leased(struct orchd *d, struct vm *vm, int64_t slot, int64_t task,
		       struct orch_error *err)
{
	struct git_mod *m = d->git;
	struct git_row *row = NULL;
	int r;
	if (!m)
		return 0;
	r = git_store_get(d->store, task, &row, err);
	if (r == -ENOENT)
		return 0;
	git_row_free(row);
	if (r < 0)
		return r;
	if (!m->usable)
		return orch_err(err, -ENOTSUP,
				"repository tasks are not available on this host: %s", m->why);
	if ((r = gprep_start(m, vm, slot, task, err)) < 0)
		return r;
	return 1;
}

static void task_changed(struct orchd *d, int64_t task)
{
	struct git_mod *m = d->git;
	struct git_row *row = NULL;
	struct orch_error err = {0};
	if (!m || git_store_get(d->store, task, &row, &err) < 0)
		return;
	if (strcmp(row->state, "pending") == 0)
		grec_start(m, task);
	else if (strcmp(row->state, "none") == 0 && row->ws_present)
		gws_retention(m);
	git_row_free(row);
}

static bool task_settled(struct orchd *d, int64_t task)
{
	struct git_row *row = NULL;
	struct orch_error err = {0};
	if (!d->git || git_store_get(d->store, task, &row, &err) < 0)
		return true;
	bool settled = strcmp(row->state, "pending") != 0;
	git_row_free(row);
	return settled;
}

static void task_json(struct orchd *d, int64_t task, json_t *obj, bool detail)
{
	struct git_row *row = NULL;
	struct orch_error err = {0};
	if (!obj || git_store_get(d->store, task, &row, &err) < 0)
		return;
	json_t *g = git_row_to_json(row);
	if (g)
		json_object_set_new(obj, "git", g);
	git_row_free(row);
}

static void task_pruned(struct orchd *d, int64_t task)
{
	struct git_mod *m = d->git;
	char image[4200];
	if (!m)
		return;
	/* the row is gone with the task; the names are the task's */
	for (size_t i = 0; i < d->n_vms; i++) {
		char mount[4200];
		struct orch_error err = {0};
		snprintf(mount, sizeof(mount), "%s/task-%lld", d->vms[i]->cfg->workspace,
			 (long long)task);
		if (ws_mounted(mount))
			(void)umount2(mount, MNT_DETACH);
		(void)ws_remove(NULL, mount, &err);
	}
	snprintf(image, sizeof(image), "%s/images/task-%lld.img", m->g.cfg->dir, (long long)task);
	if (unlink(image) < 0 && errno != ENOENT)
		orch_log(ORCH_LOG_WARN, "git", "cannot remove a pruned task's image", "path", image,
			 NULL);
	gws_drop_files(m, task);
}

const struct orchd_service orchd_git_service = {
	.name = "git",
	.task_json = task_json,
	.task_pruned = task_pruned,
	.task_leased = task_leased,
	.task_changed = task_changed,
	.task_settled = task_settled,
};
