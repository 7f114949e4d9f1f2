/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "jail.h"
#include "schema.h"
#include "strv.h"

struct strv {
	char **v;
	size_t n, cap;
};

static int strv_push(struct strv *s, const char *a)
{
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char **v = realloc(s->v, cap * sizeof(char *));
		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = strdup(a);
	if (!s->v[s->n])
		return -ENOMEM;
	s->v[++s->n] = NULL;
	return 0;
}

static int strv_pushv(struct strv *s, const char *const *a)
{
	int r;
	for (; *a; a++)
		if ((r = strv_push(s, *a)) < 0)
			return r;
	return 0;
}

/* True when p names something strictly below /tmp ("/tmp/x", "//tmp/./x"; not "/tmp",
 * "/tmp/" or "/tmp/."), by its components ("" and "." skipped). Such paths are bound
 * after the jail's own tmpfs /tmp, which would hide them otherwise; all others are bound
 * before it, so no read-only path can cover the private /tmp. A path with ".." is never
 * counted as below /tmp. */
static bool below_tmp(const char *p)
{
	if (p[0] != '/')
		return false;
	unsigned named = 0;
	for (const char *c = p; *c;) {
		c += strspn(c, "/");
		size_t n = strcspn(c, "/");
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return false;
		if (n > 0 && !(n == 1 && c[0] == '.')) {
			if (named == 0 && (n != 3 || strncmp(c, "tmp", 3) != 0))
				return false;
			named++;
		}
		c += n;
	}
	return named >= 2;
}

/* Adds the read-only paths below /tmp (tmp) or all the others (!tmp). */
static int push_ro_paths(struct strv *v, const struct sv_jail_spec *s, bool tmp)
{
	for (size_t i = 0; i < s->n_ro_paths; i++) {
		const char *p = s->ro_paths[i];
		struct stat st;
		int r;
		if (below_tmp(p) != tmp)
			continue;
		if (lstat(p, &st) < 0)
			continue; /* optional: absent on this system */
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlink(p, target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = 0;
			r = strv_pushv(v, (const char *const[]){"--symlink", target, p, NULL});
		} else {
			r = strv_pushv(v, (const char *const[]){"--ro-bind", p, p, NULL});
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* Checks and adds the task's read-only paths below /tmp (tmp) or all the others (!tmp). */
static int push_task_ro_paths(struct strv *v, const struct sv_jail_spec *s, bool tmp,
			      struct orch_error *err)
{
	static const char *const jail_own[] = {"/proc",	     "/sys",	  "/dev",
					       "/workspace", "/run/orch", NULL};
	static const char *const host_own[] = {"/proc", "/sys", "/dev", NULL};
	for (size_t i = 0; i < s->n_task_ro_paths; i++) {
		const char *p = s->task_ro_paths[i];
		char real[PATH_MAX], other[PATH_MAX];
		if (below_tmp(p) != tmp)
			continue;
		if (strcmp(p, "/tmp") == 0)
			return orch_err(err, -EPERM, "read-only path /tmp: the jail's own /tmp");
		for (size_t k = 0; jail_own[k]; k++)
			if (orch_paths_overlap(p, jail_own[k]))
				return orch_err(err, -EPERM,
						"read-only path %s: overlaps the jail's own %s", p,
						jail_own[k]);
		if (!realpath(p, real)) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue; /* optional: absent on this system */
			return orch_errno(err, -errno, "read-only path %s", p);
		}
		for (size_t k = 0; host_own[k]; k++)
			if (orch_paths_overlap(real, host_own[k]))
				return orch_err(err, -EPERM, "read-only path %s (%s): overlaps %s",
						p, real, host_own[k]);
		for (size_t k = 0; s->deny && s->deny[k]; k++) {
			/* What does not exist cannot be exposed; compared resolved too. */
			if (!realpath(s->deny[k], other))
				continue;
			if (orch_paths_overlap(real, other))
				return orch_err(err, -EPERM,
						"read-only path %s (%s): overlaps %s, which jails "
						"must not see",
						p, real, other);
		}
		int r = strv_pushv(v, (const char *const[]){"--ro-bind", real, p, NULL});
		if (r < 0)
			return orch_errno(err, r, "cannot build the bwrap command line");
	}
	return 0;
}

int sv_jail_argv(const struct sv_jail_spec *s, char ***ret, struct orch_error *err)
{
	struct strv v = {0};
	char buf[64];
	int r = 0;

	if (!s->argv || !s->argv[0])
		return orch_err(err, -EINVAL, "empty command");

	const char *const head[] = {
		s->bwrap,
		/* user, pid, ipc, uts, cgroup namespaces; the network namespace is the slot's
		 * own (already joined by the caller). */
		"--unshare-all", "--share-net", "--unshare-user", "--disable-userns",
		"--die-with-parent", "--new-session", "--cap-drop", "ALL", NULL};
	if ((r = strv_pushv(&v, head)) < 0)
		goto fail;
	snprintf(buf, sizeof(buf), "agent-%u", s->slot);
	if ((r = strv_pushv(&v, (const char *const[]){"--hostname", buf, NULL})) < 0)
		goto fail;

	if ((r = push_ro_paths(&v, s, false)) < 0)
		goto fail;
	if ((r = push_task_ro_paths(&v, s, false, err)) < 0) {
		orch_strv_free(v.v);
		return r;
	}
	const char *const mounts[] = {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", NULL};
	/* After them: the workspace and the helper cannot be covered by a read-only path,
	 * and the jail's root tmpfs is read-only (nothing is writable outside /workspace
	 * and /tmp). */
	const char *const last[] = {"--bind",
				    s->workspace,
				    "/workspace",
				    "--ro-bind",
				    s->exec_helper,
				    SV_JAIL_HELPER_PATH,
				    "--remount-ro",
				    "/",
				    "--chdir",
				    s->cwd ? s->cwd : "/workspace",
				    NULL};
	if ((r = strv_pushv(&v, mounts)) < 0 || (r = push_ro_paths(&v, s, true)) < 0)
		goto fail;
	if ((r = push_task_ro_paths(&v, s, true, err)) < 0) {
		orch_strv_free(v.v);
		return r;
	}
	for (size_t i = 0; s->extra_ro_binds && s->extra_ro_binds[i] && s->extra_ro_binds[i + 1];
	     i += 2)
		if ((r = strv_pushv(&v, (const char *const[]){"--ro-bind", s->extra_ro_binds[i],
							      s->extra_ro_binds[i + 1], NULL})) < 0)
			goto fail;
	if ((r = strv_pushv(&v, last)) < 0)
		goto fail;
	if (s->seccomp) {
		snprintf(buf, sizeof(buf), "%d", SV_JAIL_FD_SECCOMP);
		if ((r = strv_pushv(&v, (const char *const[]){"--seccomp", buf, NULL})) < 0)
			goto fail;
	}
	/* With env, the jail's environment is exactly env: nothing of bwrap's own is
	 * inherited. Without, bwrap passes its environment on. */
	if (s->env && (r = strv_push(&v, "--clearenv")) < 0)
		goto fail;
	for (size_t i = 0; s->env && s->env[i]; i++) {
		const char *eq = strchr(s->env[i], '=');
		if (!eq || eq == s->env[i]) {
			r = -EINVAL;
			goto fail;
		}
		char *name = strndup(s->env[i], (size_t)(eq - s->env[i]));
		if (!name) {
			r = -ENOMEM;
			goto fail;
		}
		r = strv_pushv(&v, (const char *const[]){"--setenv", name, eq + 1, NULL});
		free(name);
		if (r < 0)
			goto fail;
	}
	snprintf(buf, sizeof(buf), "%d", SV_JAIL_FD_STATUS);
	if ((r = strv_pushv(&v, (const char *const[]){"--", SV_JAIL_HELPER_PATH, buf, NULL})) < 0 ||
	    (r = strv_pushv(&v, s->argv)) < 0)
		goto fail;
	*ret = v.v;
	return 0;
fail:
	orch_strv_free(v.v);
	return orch_errno(err, r, "cannot build the bwrap command line");
}

int sv_workspace_prepare(const char *root, unsigned slot, uid_t uid, gid_t gid, char **ret,
			 struct orch_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s/agent-%u", root, slot) < 0)
		return -ENOMEM;
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return orch_errno(err, -errno, "cannot open workspace root %s", root);
	char name[32];
	snprintf(name, sizeof(name), "agent-%u", slot);
	if (mkdirat(rootfd, name, 0700) < 0 && errno != EEXIST)
		return orch_errno(err, -errno, "cannot create workspace %s", path);
	/* O_NOFOLLOW: a symlink planted in place of the workspace is refused. */
	_cleanup_close_ int fd =
		openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "workspace %s is not a directory", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "cannot stat workspace %s", path);
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return orch_errno(err, -errno, "cannot give workspace %s to uid %u", path,
				  (unsigned)uid);
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return orch_errno(err, -errno, "cannot chmod workspace %s", path);
	*ret = TAKE_PTR(path);
	return 0;
}

int sv_task_workspace(const char *root, const char *name, uid_t uid, gid_t gid, char **ret,
		      struct orch_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (!orch_workspace_name_valid(name))
		return orch_err(err, -EINVAL, "bad task workspace name");
	if (asprintf(&path, "%s/%s", root, name) < 0)
		return -ENOMEM;
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return orch_errno(err, -errno, "cannot open workspace root %s", root);
	/* Never created here: a missing one was not prepared (or not shared) by the host. */
	_cleanup_close_ int fd =
		openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "task workspace %s is not there", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "cannot stat workspace %s", path);
	/* The host's mount point under a task workspace refuses this (it is immutable), so a
	 * workspace whose mount this VM does not see fails here instead of running empty. */
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return orch_errno(err, -errno,
				  "cannot give task workspace %s to uid %u (is the host's "
				  "workspace mount visible here?)",
				  path, (unsigned)uid);
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return orch_errno(err, -errno, "cannot chmod workspace %s", path);
	*ret = TAKE_PTR(path);
	return 0;
}
