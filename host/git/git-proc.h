/* SPDX-License-Identifier: Apache-2.0 */
/* Child processes on orchd's loop (git, mkfs, mount, bwrap): fork + exec with a given
 * environment, in a session of their own, tracked with a pidfd, with a timeout that kills
 * the whole process group and bounded captures of stdout and stderr. orchd never waits
 * for one: the callback runs on the loop when the child has exited. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "loop.h"

struct gproc;

struct gproc_spec {
	const char *const *argv; /* argv[0] is a path (no PATH search) */
	const char *const *env;	 /* the child's whole environment */
	const char *cwd;	 /* NULL: "/" */
	const void *in;		 /* stdin bytes (copied), NULL: /dev/null */
	size_t in_len;
	int out_fd;	/* >= 0: stdout goes there; < 0: captured (out_max) */
	size_t out_max; /* captured stdout bound; the rest is read and dropped */
	size_t err_max; /* captured stderr bound (0: 8 KiB) */
	bool as_user;	/* run as uid:gid without supplementary groups */
	uid_t uid;
	gid_t gid;
	mode_t umask;	     /* the child's umask */
	uint64_t timeout_ms; /* 0: none; then the process group is killed */
	uint64_t fsize_max;  /* RLIMIT_FSIZE in bytes, 0: unchanged */
	const int *fds;	     /* passed to the child as 3, 4, ... (n_fds) */
	size_t n_fds;
};

struct gproc_result {
	int status; /* wait status */
	bool timed_out;
	char *out; /* NUL-terminated, out_len bytes (may contain NULs) */
	size_t out_len;
	bool out_truncated;
	char *err; /* NUL-terminated */
	size_t err_len;
};

/* res is valid during the callback only; the gproc is freed after it returns. */
typedef void (*gproc_cb)(const struct gproc_result *res, void *data);

int gproc_start(struct orch_loop *loop, const struct gproc_spec *spec, gproc_cb cb, void *data,
		struct gproc **ret, struct orch_error *err);
/* Kills the child's process group, reaps it and frees p; the callback is not called. */
void gproc_cancel(struct gproc *p);

/* True when the child exited with status 0 (and was not killed by the timeout). */
bool gproc_ok(const struct gproc_result *res);
/* A one-line description of how it ended and the start of its stderr, for messages:
 * "exit 128: fatal: ..." / "killed by signal 9" / "timed out". */
void gproc_describe(const struct gproc_result *res, char *buf, size_t len);
