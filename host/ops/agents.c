/* SPDX-License-Identifier: Apache-2.0 */
/* Installed agent CLIs: the catalog, the directory layout, listing and removal
 * (host/agents.h). Installation with npm is agents-npm.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents.h"
#include "cleanup.h"
#include "fs-util.h"

#define MAX_MANIFEST_BYTES 16384
#define MAX_VERSIONS 4096

const struct orch_agent_kind orch_agent_kinds[] = {
	{"claude", "@anthropic-ai/claude-code", "claude", "Claude Code"},
	{"codex", "@openai/codex", "codex", "OpenAI Codex CLI"},
	{"gemini", "@google/gemini-cli", "gemini", "Gemini CLI"},
	{"opencode", "opencode-ai", "opencode", "OpenCode"},
	{"pi", "@mariozechner/pi-coding-agent", "pi", "Pi coding agent"},
};
const size_t orch_agent_n_kinds = ELEMENTSOF(orch_agent_kinds);

const struct orch_agent_kind *orch_agent_kind_find(const char *name)
{
	for (size_t i = 0; i < orch_agent_n_kinds; i++)
		if (strcmp(orch_agent_kinds[i].name, name) == 0)
			return &orch_agent_kinds[i];
	return NULL;
}

bool orch_agents_version_valid(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > ORCH_AGENTS_VERSION_MAX || v[0] < '0' || v[0] > '9')
		return false;
	for (; *v; v++)
		if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'z') ||
		      (*v >= 'A' && *v <= 'Z') || strchr(".+-", *v)))
			return false;
	return true;
}

const char *orch_agents_dir_default(void)
{
	const char *e = getenv("ORCH_AGENTS_DIR");
	return e && e[0] == '/' ? e : ORCH_AGENTS_DIR_DEFAULT;
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 32 || s[0] == '.' || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

int orch_agents_current(const char *dir, const char *name, char ret[ORCH_AGENTS_VERSION_MAX + 1])
{
	char path[4096], target[ORCH_AGENTS_VERSION_MAX + 2];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/" ORCH_AGENTS_CURRENT, dir, name) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	if (!orch_agents_version_valid(target))
		return -EINVAL;
	memcpy(ret, target, (size_t)n + 1);
	return 0;
}

/* Reads <vdir>/orch-agent.json into v (strict: the installer wrote it). */
static int read_manifest(int vfd, struct orch_agent_version *v)
{
	_cleanup_close_ int fd =
		openat(vfd, ORCH_AGENTS_MANIFEST, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char buf[MAX_MANIFEST_BYTES];
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0)
		return -errno;
	if ((size_t)n == sizeof(buf))
		return -EFBIG;
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	const char *name = NULL, *package = NULL, *version = NULL, *node = NULL, *command = NULL;
	json_int_t at = 0;
	if (!j || json_unpack_ex(j, &jerr, JSON_STRICT, "{s:s, s:s, s:s, s:s, s:s, s:I}", "name",
				 &name, "package", &package, "version", &version, "node", &node,
				 "command", &command, "installed_at", &at) < 0)
		return -EINVAL;
	if (strcmp(name, v->name) != 0 || strcmp(version, v->version) != 0 ||
	    strlen(package) >= sizeof(v->package) || !orch_agents_version_valid(node))
		return -EINVAL;
	snprintf(v->package, sizeof(v->package), "%s", package);
	snprintf(v->node, sizeof(v->node), "%s", node);
	v->installed_at = at;
	return 0;
}

static int push_version(struct orch_agent_version **v, size_t *n, size_t *cap,
			const struct orch_agent_version *x)
{
	if (*n >= MAX_VERSIONS)
		return -E2BIG;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct orch_agent_version *nv = realloc(*v, c * sizeof(**v));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = *x;
	return 0;
}

static int cmp_versions(const void *a, const void *b)
{
	const struct orch_agent_version *x = a, *y = b;
	int r = strcmp(x->name, y->name);
	return r ? r : strverscmp(x->version, y->version);
}

/* The versions of one agent directory. */
static int list_agent(int dfd, const char *dir, const char *name, struct orch_agent_version **v,
		      size_t *n, size_t *cap)
{
	_cleanup_close_ int afd =
		openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	char cur[ORCH_AGENTS_VERSION_MAX + 1] = "";
	if (afd < 0)
		return errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
	(void)orch_agents_current(dir, name, cur);
	int fd2 = dup(afd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		if (fd2 >= 0)
			close(fd2);
		return -errno;
	}
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d))) {
		struct orch_agent_version x = {0};
		if (!orch_agents_version_valid(de->d_name))
			continue;
		_cleanup_close_ int vfd =
			openat(afd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (vfd < 0)
			continue;
		if ((size_t)snprintf(x.name, sizeof(x.name), "%s", name) >= sizeof(x.name) ||
		    (size_t)snprintf(x.version, sizeof(x.version), "%s", de->d_name) >=
			    sizeof(x.version))
			continue;
		if (read_manifest(vfd, &x) < 0)
			continue; /* not a complete installation */
		x.current = strcmp(cur, x.version) == 0;
		r = push_version(v, n, cap, &x);
	}
	closedir(d);
	return r;
}

int orch_agents_list(const char *dir, struct orch_agent_version **ret, size_t *ret_n,
		     struct orch_error *err)
{
	struct orch_agent_version *v = NULL;
	size_t n = 0, cap = 0;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (dfd < 0)
		return orch_errno(err, -errno, "cannot open the agents directory %s", dir);
	int fd2 = dup(dfd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (!d) {
		if (fd2 >= 0)
			close(fd2);
		return orch_errno(err, -errno, "cannot read %s", dir);
	}
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d)))
		if (name_valid(de->d_name))
			r = list_agent(dfd, dir, de->d_name, &v, &n, &cap);
	closedir(d);
	if (r < 0) {
		free(v);
		return orch_errno(err, r, "cannot list the agents in %s", dir);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_versions);
	*ret = v;
	*ret_n = n;
	return 0;
}

json_t *orch_agent_version_json(const struct orch_agent_version *v)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "name", v->name, "version", v->version,
			 "package", v->package, "node", v->node, "installed_at",
			 (json_int_t)v->installed_at, "current", v->current);
}

int orch_agents_summary(const char *dir, char *buf, size_t size)
{
	struct orch_agent_version *v = NULL;
	size_t n = 0, off = 0;
	struct orch_error err = {0};
	int r = orch_agents_list(dir, &v, &n, &err);
	if (size)
		buf[0] = 0;
	if (r < 0)
		return r;
	int found = 0;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].current)
			continue;
		int k = snprintf(buf + off, size - off, "%s%s %s", found ? ", " : "", v[i].name,
				 v[i].version);
		if (k < 0 || (size_t)k >= size - off)
			break;
		off += (size_t)k;
		found++;
	}
	free(v);
	return found;
}

int orch_agents_lock(const char *dir, int *ret_fd, struct orch_error *err)
{
	char path[4096];
	int r = orchd_mkdir_p(dir, 0755);
	if (r < 0)
		return orch_errno(err, r, "cannot create the agents directory %s", dir);
	if ((size_t)snprintf(path, sizeof(path), "%s/.lock", dir) >= sizeof(path))
		return orch_err(err, -ENAMETOOLONG, "agents directory path too long");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open %s", path);
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			r = -errno;
			close(fd);
			return orch_errno(err, r, "cannot lock %s", path);
		}
	/* Whatever an interrupted install or removal left in the staging directory: with
	 * the lock held nobody else uses it. */
	snprintf(path, sizeof(path), "%s/.stage", dir);
	(void)orch_agents_rm_rf(path);
	*ret_fd = fd;
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	int r = type == FTW_DP ? rmdir(p) : unlink(p);
	return r < 0 && errno != ENOENT ? -1 : 0;
}

int orch_agents_rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 ? -errno : 0;
}

int orch_agents_switch_current(const char *agent_dir, const char *version, struct orch_error *err)
{
	char tmp[4096], cur[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.current.tmp", agent_dir) >= sizeof(tmp) ||
	    (size_t)snprintf(cur, sizeof(cur), "%s/" ORCH_AGENTS_CURRENT, agent_dir) >= sizeof(cur))
		return orch_err(err, -ENAMETOOLONG, "agent directory path too long");
	(void)unlink(tmp);
	/* Relative, so it resolves the same in the host, a jail and a VM's share. */
	if (symlink(version, tmp) < 0)
		return orch_errno(err, -errno, "cannot create %s", tmp);
	if (rename(tmp, cur) < 0) {
		int r = -errno;
		(void)unlink(tmp);
		return orch_errno(err, r, "cannot switch %s", cur);
	}
	_cleanup_close_ int dfd = open(agent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	return 0;
}

/* Moves path out of the way (into <dir>/.stage) before deleting it, so that nothing ever
 * sees a half-deleted version under its own name. */
static int remove_path(const char *dir, const char *path, const char *tag, struct orch_error *err)
{
	char stage[4096], trash[4096];
	if ((size_t)snprintf(stage, sizeof(stage), "%s/.stage", dir) >= sizeof(stage))
		return orch_err(err, -ENAMETOOLONG, "agents directory path too long");
	int r = orchd_mkdir_p(stage, 0700);
	if (r < 0)
		return orch_errno(err, r, "cannot create %s", stage);
	if ((size_t)snprintf(trash, sizeof(trash), "%s/removed-%s-%ld", stage, tag,
			     (long)getpid()) >= sizeof(trash))
		return orch_err(err, -ENAMETOOLONG, "agents directory path too long");
	if (rename(path, trash) < 0)
		return orch_errno(err, -errno, "cannot remove %s", path);
	if ((r = orch_agents_rm_rf(trash)) < 0)
		return orch_errno(err, r, "cannot delete %s", trash);
	return 0;
}

int orch_agents_remove(const char *dir, const char *name, const char *version,
		       struct orch_error *err)
{
	char adir[4096], vdir[4200], cur[ORCH_AGENTS_VERSION_MAX + 1];
	_cleanup_close_ int lock = -1;
	struct stat st;
	int r;
	if (!name_valid(name))
		return orch_err(err, -EINVAL, "bad agent name '%.64s'", name);
	if (version && !orch_agents_version_valid(version))
		return orch_err(err, -EINVAL, "bad version '%.80s'", version);
	if (geteuid() != 0)
		return orch_err(err, -EPERM, "removing agents needs root");
	if ((size_t)snprintf(adir, sizeof(adir), "%s/%s", dir, name) >= sizeof(adir))
		return orch_err(err, -ENAMETOOLONG, "agents directory path too long");
	if ((r = orch_agents_lock(dir, &lock, err)) < 0)
		return r;
	if (lstat(adir, &st) < 0 || !S_ISDIR(st.st_mode))
		return orch_err(err, -ENOENT, "agent %s is not installed in %s", name, dir);
	if (!version)
		return remove_path(dir, adir, name, err);
	snprintf(vdir, sizeof(vdir), "%s/%s", adir, version);
	if (lstat(vdir, &st) < 0 || !S_ISDIR(st.st_mode))
		return orch_err(err, -ENOENT, "%s %s is not installed in %s", name, version, dir);
	if (orch_agents_current(dir, name, cur) == 0 && strcmp(cur, version) == 0)
		return orch_err(err, -EBUSY,
				"%s %s is the current version; install another first, or remove "
				"the whole agent (orch agents remove %s)",
				name, version, name);
	return remove_path(dir, vdir, name, err);
}
