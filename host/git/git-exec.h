/* SPDX-License-Identifier: Apache-2.0 */
/* How orchd runs git: the programs it needs, the environment and options every git
 * process gets (no system or global config, no hooks, no fsmonitor, no prompts, only the
 * file, git, http(s) and ssh transports, objects checked on fetch), the credentials of
 * the URL it talks to, and the sandbox for work on a task's workspace: bubblewrap as
 * root mounts only the workspace, a size-bounded tmpfs and the system's /usr, then
 * setpriv drops to the agent's uid with no capabilities. A repository and a workspace
 * are hostile input; nothing in them chooses a program orchd runs. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "config-git.h"
#include "git-proc.h"
#include "loop.h"

/* A growing NULL-terminated string vector; an allocation failure is sticky (oom). */
struct gstrv {
	char **v;
	size_t n, cap;
	bool oom;
};
void gstrv_push(struct gstrv *s, const char *a);
void gstrv_pushf(struct gstrv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gstrv_free(struct gstrv *s);

struct git_ctx {
	struct orch_loop *loop;
	const struct git_config *cfg;
	char *git, *bwrap, *setpriv, *mkfs, *mount, *umount;
	char *home;    /* <dir>/home: HOME of orchd's git */
	char **tokens; /* per cfg->creds entry: the token (HTTP) or NULL */
};

/* Finds the programs and reads the credentials' token files (mode checked: not readable
 * by group or others, owned by root or orchd's user). */
int git_ctx_init(struct git_ctx *g, struct orch_loop *loop, const struct git_config *cfg,
		 struct orch_error *err);
void git_ctx_done(struct git_ctx *g);

/* "git -c ... " with orchd's fixed options; the caller appends the command. */
void git_argv(const struct git_ctx *g, struct gstrv *argv);
/* The environment of a git process on the host; url (may be NULL): the remote it talks
 * to, whose credentials it gets. */
void git_env(const struct git_ctx *g, const char *url, struct gstrv *env);
/* bwrap ... setpriv --reuid=uid ... -- : the caller appends the command run in the
 * sandbox (in "/": /w may be closed to root without capabilities, so the command enters
 * it itself, as the agent). fd 3 is mounted at /w (read-only unless rw), a tmpfs of
 * tmpfs_bytes at /g (0: none). */
void git_sandbox_argv(const struct git_ctx *g, uid_t uid, gid_t gid, bool rw, uint64_t tmpfs_bytes,
		      struct gstrv *argv);
/* The environment inside the sandbox (HOME=/g). */
void git_sandbox_env(struct gstrv *env);

struct git_spawn_opts {
	const char *cwd; /* NULL: "/" */
	const void *in;	 /* stdin bytes, NULL: /dev/null */
	size_t in_len;
	int out_fd;	/* >= 0: stdout goes there; else captured up to out_max */
	size_t out_max; /* 0: 1 MiB */
	const int *fds; /* become 3, 4, ... in the child */
	size_t n_fds;
	uint64_t fsize_max;  /* RLIMIT_FSIZE, 0: none */
	mode_t umask;	     /* 0: 077 */
	uint64_t timeout_ms; /* 0: git.timeout_ms */
};
/* Starts argv with env (both taken and freed). */
int git_spawn(const struct git_ctx *g, struct gstrv *argv, struct gstrv *env,
	      const struct git_spawn_opts *o, gproc_cb cb, void *data, struct gproc **ret,
	      struct orch_error *err);

/* Reads the first line of a secret file whose mode keeps others out. */
int git_read_secret(const char *path, char **ret, struct orch_error *err);
/* Hex object id: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits. */
bool git_oid_valid(const char *s);
