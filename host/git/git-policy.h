/* SPDX-License-Identifier: Apache-2.0 */
/* The push gate's rules as pure functions (git-gate.c runs git; these decide). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config-git.h"

/* Whether path (relative to the repository's top) is protected: the pattern that
 * protects it, or NULL. "dir/" protects everything below dir; any other pattern is an
 * fnmatch pattern matched against the whole path ('*' does not cross '/'). Case does not
 * count (.GitHub/Workflows/ is .github/workflows/).
 * allow (NULL-terminated, may be NULL): patterns the push allows to change. */
const char *git_path_protected(const struct git_push_policy *pp, char *const *allow,
			       const char *path);
/* Whether a push may name ref (a full refname): a pattern of pp->refs that starts with
 * "refs/" is matched against ref, any other against the branch name (below
 * refs/heads/ only). */
bool git_ref_allowed(const struct git_push_policy *pp, const char *ref);

struct git_scan_hit {
	char file[320]; /* the file of the line ("" when unknown) */
	long pattern;	/* the index in secret_patterns, or -1 for a key file's line */
};
/* Scans a unified diff (git diff --text -U0) for added lines ("+" but not "+++ ") that
 * hold any of secrets (memmem, also across NUL bytes) or match any of patterns (POSIX
 * extended, each NUL-separated piece of a line on its own). Returns 1 with *hit filled
 * at the first one, 0 when there is none, -ENOMEM or -EINVAL (a bad pattern). */
int git_scan_diff(const char *diff, size_t len, char *const *secrets, size_t n_secrets,
		  char *const *patterns, size_t n_patterns, struct git_scan_hit *hit);
