/* SPDX-License-Identifier: Apache-2.0 */
/* git processes: programs, options, environment, credentials, sandbox (git-exec.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "git-exec.h"
#include "llm-key.h"
#include "schema.h"

#define SECRET_MAX 4096

void gstrv_push(struct gstrv *s, const char *a)
{
	if (s->oom)
		return;
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		char **v = realloc(s->v, cap * sizeof(char *));
		if (!v) {
			s->oom = true;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	if (!(s->v[s->n] = strdup(a))) {
		s->oom = true;
		return;
	}
	s->v[++s->n] = NULL;
}

void gstrv_pushf(struct gstrv *s, const char *fmt, ...)
{
	char *a = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&a, fmt, ap);
	va_end(ap);
	if (n < 0) {
		s->oom = true;
		return;
	}
	gstrv_push(s, a);
	free(a);
}

void gstrv_free(struct gstrv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct gstrv){0};
}

static char *find_prog(const char *const *cands)
{
	for (size_t i = 0; cands[i]; i++)
		if (access(cands[i], X_OK) == 0)
			return strdup(cands[i]);
	return NULL;
}

int git_read_secret(const char *path, char **ret, struct orch_error *err)
{
	_cleanup_close_ int fd = llm_key_file_open(path, err);
	char buf[SECRET_MAX + 1];
	ssize_t n;
	if (fd < 0)
		return fd;
	while ((n = read(fd, buf, SECRET_MAX)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return orch_errno(err, -errno, "cannot read key file %s", path);
	buf[n] = '\0';
	size_t len = strcspn(buf, "\r\n");
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (len == 0) {
		explicit_bzero(buf, sizeof(buf));
		return orch_err(err, -EINVAL, "key file %s: expected the key on its first line",
				path);
	}
	*ret = strndup(buf, len);
	explicit_bzero(buf, sizeof(buf));
	return *ret ? 0 : orch_err(err, -ENOMEM, "out of memory");
}

int git_ctx_init(struct git_ctx *g, struct orch_loop *loop, const struct git_config *cfg,
		 struct orch_error *err)
{
	static const char *const gits[] = {"/usr/bin/git", "/bin/git", "/usr/local/bin/git",
					   "/run/current-system/sw/bin/git", NULL};
	static const char *const bwraps[] = {"/usr/bin/bwrap", "/bin/bwrap",
					     "/run/current-system/sw/bin/bwrap", NULL};
	static const char *const setprivs[] = {"/usr/bin/setpriv", "/bin/setpriv",
					       "/run/current-system/sw/bin/setpriv", NULL};
	static const char *const mkfss[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4",
					    "/run/current-system/sw/bin/mkfs.ext4", NULL};
	static const char *const mounts[] = {"/usr/bin/mount", "/bin/mount",
					     "/run/current-system/sw/bin/mount", NULL};
	static const char *const umounts[] = {"/usr/bin/umount", "/bin/umount",
					      "/run/current-system/sw/bin/umount", NULL};
	int r;

	*g = (struct git_ctx){.loop = loop, .cfg = cfg};
	g->git = find_prog(gits);
	g->bwrap = find_prog(bwraps);
	g->setpriv = find_prog(setprivs);
	g->mkfs = find_prog(mkfss);
	g->mount = find_prog(mounts);
	g->umount = find_prog(umounts);
	if (asprintf(&g->home, "%s/home", cfg->dir) < 0) {
		g->home = NULL;
		return orch_err(err, -ENOMEM, "out of memory");
	}
	g->tokens = calloc(cfg->n_creds + 1, sizeof(char *));
	if (!g->tokens)
		return orch_err(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < cfg->n_creds; i++) {
		const struct git_cred *c = &cfg->creds[i];
		if (c->token_file && (r = git_read_secret(c->token_file, &g->tokens[i], err)) < 0)
			return orch_err_prefix(err, "git.credentials[%zu]", i);
		if (c->ssh_key_file) {
			char *k = NULL;
			/* mode and owner only: ssh reads it */
			if ((r = git_read_secret(c->ssh_key_file, &k, err)) < 0)
				return orch_err_prefix(err, "git.credentials[%zu]", i);
			explicit_bzero(k, strlen(k));
			free(k);
		}
	}
	return 0;
}

void git_ctx_done(struct git_ctx *g)
{
	free(g->git);
	free(g->bwrap);
	free(g->setpriv);
	free(g->mkfs);
	free(g->mount);
	free(g->umount);
	free(g->home);
	if (g->tokens)
		for (size_t i = 0; i < g->cfg->n_creds; i++)
			if (g->tokens[i]) {
				explicit_bzero(g->tokens[i], strlen(g->tokens[i]));
				free(g->tokens[i]);
			}
	free(g->tokens);
	*g = (struct git_ctx){0};
}

/* Options that keep a repository's own settings and files from running anything. */
static const char *const fixed_options[] = {
	"core.hooksPath=/dev/null",
	"core.fsmonitor=false",
	"core.untrackedCache=false",
	"core.splitIndex=false",
	"core.symlinks=true",
	"core.protectNTFS=true",
	"core.protectHFS=true",
	"core.askPass=",
	"credential.helper=",
	"protocol.file.allow=always",
	"protocol.ext.allow=never",
	"submodule.recurse=false",
	"fetch.recurseSubmodules=false",
	"push.recurseSubmodules=no",
	"transfer.fsckObjects=true",
	"gc.auto=0",
	"maintenance.auto=false",
	"init.defaultBranch=main",
	"advice.detachedHead=false",
	"http.followRedirects=false",
	NULL,
};

void git_argv(const struct git_ctx *g, struct gstrv *argv)
{
	gstrv_push(argv, g->git ? g->git : "/usr/bin/git");
	for (size_t i = 0; fixed_options[i]; i++) {
		gstrv_push(argv, "-c");
		gstrv_push(argv, fixed_options[i]);
	}
}

static void base_env(struct gstrv *env, const char *home)
{
	gstrv_push(env, "PATH=/usr/bin:/bin:/usr/sbin:/sbin");
	gstrv_pushf(env, "HOME=%s", home);
	gstrv_push(env, "GIT_CONFIG_NOSYSTEM=1");
	gstrv_push(env, "GIT_CONFIG_GLOBAL=/dev/null");
	gstrv_push(env, "GIT_TERMINAL_PROMPT=0");
	gstrv_push(env, "GIT_ALLOW_PROTOCOL=file:git:http:https:ssh");
	gstrv_push(env, "GIT_PROTOCOL_FROM_USER=0");
	gstrv_push(env, "GIT_NO_REPLACE_OBJECTS=1");
	gstrv_push(env, "GIT_LFS_SKIP_SMUDGE=1");
	gstrv_push(env, "LC_ALL=C");
	gstrv_push(env, "TZ=UTC");
}

/* Single-quotes a word for the shell ssh's command line goes through. */
static char *shell_quote(const char *s)
{
	size_t n = 2;
	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	char *q = malloc(n + 1), *o = q;
	if (!q)
		return NULL;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

void git_env(const struct git_ctx *g, const char *url, struct gstrv *env)
{
	const struct git_cred *c = url ? git_config_cred(g->cfg, url) : NULL;
	size_t ci = c ? (size_t)(c - g->cfg->creds) : 0;
	_cleanup_free_ char *khq = NULL;

	base_env(env, g->home ? g->home : "/nonexistent");
	if (c && c->ssh_key_file) {
		_cleanup_free_ char *key = shell_quote(c->ssh_key_file);
		khq = shell_quote(c->known_hosts ? c->known_hosts : "/dev/null");
		if (!key || !khq) {
			env->oom = true;
			return;
		}
		gstrv_pushf(env,
			    "GIT_SSH_COMMAND=ssh -F /dev/null -i %s -o IdentitiesOnly=yes -o "
			    "IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=%s -o "
			    "UserKnownHostsFile=%s",
			    key, c->known_hosts ? "yes" : "accept-new",
			    c->known_hosts ? khq : "~/.ssh/known_hosts");
	} else {
		gstrv_push(env, "GIT_SSH_COMMAND=ssh -F /dev/null -o IdentityAgent=none -o "
				"BatchMode=yes -o StrictHostKeyChecking=accept-new");
	}
	if (c && g->tokens && g->tokens[ci]) {
		_cleanup_free_ char *up = NULL, *b64 = NULL;
		if (asprintf(&up, "%s:%s", c->username, g->tokens[ci]) < 0) {
			env->oom = true;
			return;
		}
		b64 = orch_b64_encode(up, strlen(up));
		explicit_bzero(up, strlen(up));
		if (!b64) {
			env->oom = true;
			return;
		}
		/* In the environment, never on a command line others can read. */
		gstrv_push(env, "GIT_CONFIG_COUNT=1");
		gstrv_pushf(env, "GIT_CONFIG_KEY_0=http.%s.extraHeader", c->url);
		gstrv_pushf(env, "GIT_CONFIG_VALUE_0=Authorization: Basic %s", b64);
		explicit_bzero(b64, strlen(b64));
	}
}

void git_sandbox_argv(const struct git_ctx *g, uid_t uid, gid_t gid, bool rw, uint64_t tmpfs_bytes,
		      struct gstrv *v)
{
	gstrv_push(v, g->bwrap ? g->bwrap : "/usr/bin/bwrap");
	/* No user namespace: bwrap runs as root to mount what only root can reach, then
	 * setpriv gives up root for good (empty bounding set, no_new_privs from bwrap). */
	static const char *const head[] = {"--unshare-ipc",
					   "--unshare-pid",
					   "--unshare-net",
					   "--unshare-uts",
					   "--unshare-cgroup-try",
					   "--die-with-parent",
					   "--new-session",
					   "--cap-drop",
					   "ALL",
					   "--cap-add",
					   "CAP_SETUID",
					   "--cap-add",
					   "CAP_SETGID",
					   "--cap-add",
					   "CAP_SETPCAP",
					   "--ro-bind",
					   "/usr",
					   "/usr",
					   "--symlink",
					   "usr/bin",
					   "/bin",
					   "--symlink",
					   "usr/sbin",
					   "/sbin",
					   "--symlink",
					   "usr/lib",
					   "/lib",
					   "--symlink",
					   "usr/lib64",
					   "/lib64",
					   "--proc",
					   "/proc",
					   "--dev",
					   "/dev",
					   NULL};
	for (size_t i = 0; head[i]; i++)
		gstrv_push(v, head[i]);
	gstrv_push(v, rw ? "--bind-fd" : "--ro-bind-fd");
	gstrv_push(v, "3");
	gstrv_push(v, "/w");
	if (tmpfs_bytes) {
		/* the sandbox's one user (after setpriv) is the only one who sees it */
		gstrv_push(v, "--perms");
		gstrv_push(v, "0777");
		gstrv_push(v, "--size");
		gstrv_pushf(v, "%llu", (unsigned long long)tmpfs_bytes);
		gstrv_push(v, "--tmpfs");
		gstrv_push(v, "/g");
	}
	gstrv_push(v, "--");
	gstrv_push(v, g->setpriv ? g->setpriv : "/usr/bin/setpriv");
	gstrv_pushf(v, "--reuid=%u", (unsigned)uid);
	gstrv_pushf(v, "--regid=%u", (unsigned)gid);
	gstrv_push(v, "--clear-groups");
	gstrv_push(v, "--bounding-set=-all");
	gstrv_push(v, "--inh-caps=-all");
	gstrv_push(v, "--");
}

void git_sandbox_env(struct gstrv *env)
{
	base_env(env, "/g");
	gstrv_push(env, "XDG_CONFIG_HOME=/g");
}

int git_spawn(const struct git_ctx *g, struct gstrv *argv, struct gstrv *env,
	      const struct git_spawn_opts *o, gproc_cb cb, void *data, struct gproc **ret,
	      struct orch_error *err)
{
	int r;
	if (argv->oom || env->oom || !argv->v) {
		gstrv_free(argv);
		gstrv_free(env);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	struct gproc_spec spec = {
		.argv = (const char *const *)argv->v,
		.env = (const char *const *)env->v,
		.cwd = o->cwd,
		.in = o->in,
		.in_len = o->in_len,
		.out_fd = o->out_fd,
		.out_max = o->out_max ? o->out_max : 1024 * 1024,
		.umask = o->umask ? o->umask : 077,
		.timeout_ms = o->timeout_ms ? o->timeout_ms : (uint64_t)g->cfg->timeout_ms,
		.fsize_max = o->fsize_max,
		.fds = o->fds,
		.n_fds = o->n_fds,
	};
	r = gproc_start(g->loop, &spec, cb, data, ret, err);
	/* the child has its copy (and the token, if any, leaves orchd's heap) */
	for (size_t i = 0; i < env->n; i++)
		explicit_bzero(env->v[i], strlen(env->v[i]));
	gstrv_free(argv);
	gstrv_free(env);
	return r;
}

bool git_oid_valid(const char *s)
{
	size_t n = strlen(s);
	if (n != 40 && n != 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}
