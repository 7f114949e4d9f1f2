/* SPDX-License-Identifier: Apache-2.0 */
/* The push gate's rules (git-policy.h). */
#include <errno.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "git-policy.h"

static bool path_matches(const char *pattern, const char *path)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '/')
		return strncasecmp(path, pattern, n) == 0;
	return fnmatch(pattern, path, FNM_CASEFOLD | FNM_PATHNAME) == 0;
}

const char *git_path_protected(const struct git_push_policy *pp, char *const *allow,
			       const char *path)
{
	for (size_t i = 0; i < pp->n_protected; i++) {
		if (!path_matches(pp->protected_paths[i], path))
			continue;
		bool allowed = false;
		for (size_t k = 0; allow && allow[k] && !allowed; k++)
			allowed = path_matches(allow[k], path);
		if (!allowed)
			return pp->protected_paths[i];
	}
	return NULL;
}

bool git_ref_allowed(const struct git_push_policy *pp, const char *ref)
{
	const char *branch = strncmp(ref, "refs/heads/", 11) == 0 ? ref + 11 : NULL;
	for (size_t i = 0; i < pp->n_refs; i++) {
		const char *pat = pp->refs[i];
		if (strncmp(pat, "refs/", 5) == 0 ? fnmatch(pat, ref, 0) == 0
						  : branch && fnmatch(pat, branch, 0) == 0)
			return true;
	}
	return false;
}

int git_scan_diff(const char *diff, size_t len, char *const *secrets, size_t n_secrets,
		  char *const *patterns, size_t n_patterns, struct git_scan_hit *hit)
{
	regex_t *re = calloc(n_patterns + 1, sizeof(regex_t));
	const char *end = diff + len;
	char file[sizeof(hit->file)] = "";
	size_t nre = 0;
	int found = 0;
	if (!re)
		return -ENOMEM;
	for (; nre < n_patterns; nre++)
		if (regcomp(&re[nre], patterns[nre], REG_EXTENDED | REG_NOSUB) != 0) {
			found = -EINVAL;
			goto out;
		}
	for (const char *l = diff; l < end && !found;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t n = nl ? (size_t)(nl - l) : (size_t)(end - l);
		if (n > 6 && strncmp(l, "+++ b/", 6) == 0) {
			snprintf(file, sizeof(file), "%.*s", (int)(n - 6 > 300 ? 300 : n - 6),
				 l + 6);
		} else if (n > 0 && l[0] == '+' && !(n >= 4 && strncmp(l, "+++ ", 4) == 0)) {
			for (size_t i = 0; i < n_secrets && !found; i++)
				if (*secrets[i] && memmem(l, n, secrets[i], strlen(secrets[i]))) {
					found = 1;
					hit->pattern = -1;
				}
			_cleanup_free_ char *line = malloc(n);
			if (!line) {
				found = -ENOMEM;
				break;
			}
			memcpy(line, l + 1, n - 1);
			line[n - 1] = '\0';
			/* regexec stops at a NUL: each piece on its own */
			for (size_t k = 0; k < nre && !found; k++)
				for (const char *seg = line; !found && seg <= line + n - 1;
				     seg += strlen(seg) + 1)
					if (regexec(&re[k], seg, 0, NULL, 0) == 0) {
						found = 1;
						hit->pattern = (long)k;
					}
		}
		l = nl ? nl + 1 : end;
	}
	if (found == 1)
		snprintf(hit->file, sizeof(hit->file), "%s", file);
out:
	for (size_t k = 0; k < nre; k++)
		regfree(&re[k]);
	free(re);
	return found;
}
