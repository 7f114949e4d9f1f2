/* SPDX-License-Identifier: Apache-2.0 */
/* The host-side cache of a repository (docs/WORKSPACES.md): under
 * <git.dir>/repos/<key>/, a bare mirror of the upstream (cache.git: its branches, tags
 * and HEAD, fetched by orchd with orchd's credentials) and a bare repository for the
 * tasks' results (results.git: branches orch/task-<id>, borrowing the mirror's objects
 * through alternates). New workspaces copy the mirror, so no task ever sees another's
 * results. The key is a hash of the repository's URL, and for a local repository also of
 * the submitter's uid: a local repository is read with the submitter's permissions
 * (git-upload-pack runs as that user), so one user's cache never serves another.
 *
 * One fetch at a time per cache; requests that come meanwhile wait for it. A cache
 * fetched less than git.fetch_interval_ms ago is not fetched again unless the ref asked
 * for is not in it. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct git_mod;
struct gcache;

struct gcache_paths {
	char *dir;     /* <git.dir>/repos/<key> */
	char *mirror;  /* .../cache.git */
	char *results; /* .../results.git */
};

/* r < 0: msg says why; else oid is the commit ref resolves to (borrowed). */
typedef void (*gcache_cb)(int r, const char *msg, const char *oid, const struct gcache_paths *p,
			  void *data);

/* Resolves ref (NULL: the upstream's HEAD) of repo to a commit, fetching first when the
 * cache is missing or stale. cb runs later, on the loop. */
int gcache_resolve(struct git_mod *m, const char *repo, uid_t uid, gid_t gid, const char *ref,
		   gcache_cb cb, void *data, struct orch_error *err);
/* The paths of repo's cache (whether or not it exists). */
int gcache_paths(struct git_mod *m, const char *repo, uid_t uid, struct gcache_paths *ret,
		 struct orch_error *err);
void gcache_paths_done(struct gcache_paths *p);
/* Forgets a request's callback (its owner goes away); the fetch itself goes on. */
void gcache_forget(struct git_mod *m, void *data);
void gcache_free_all(struct git_mod *m);

/* The --upload-pack / --receive-pack program for a local repository of another user:
 * the git program run as uid:gid with that user's groups (setpriv). NULL for root. */
char *gcache_as_user(struct git_mod *m, const char *prog, uid_t uid, gid_t gid);
