/* SPDX-License-Identifier: Apache-2.0 */
/* The push gate's rules (host/git/git-policy.h): protected paths, allowed refs, and the
 * scan of a diff's added lines for keys and secret patterns. */
#include <check.h>
#include <string.h>

#include "check-run.h"
#include "git-policy.h"

static char *refs[] = {"orch/*", "refs/tags/release-*", NULL};
static char *prot[] = {".github/workflows/", ".gitlab-ci.yml", "*.sh", NULL};
static char *pats[] = {"AKIA[0-9A-Z]{16}", "-----BEGIN ([A-Z]+ )*PRIVATE KEY-----", NULL};
static const struct git_push_policy pp = {
	.refs = refs,
	.n_refs = 2,
	.protected_paths = prot,
	.n_protected = 3,
	.secret_patterns = pats,
	.n_secret_patterns = 2,
};

START_TEST(test_paths)
{
	char *allow[] = {".github/workflows/", NULL};
	ck_assert_str_eq(git_path_protected(&pp, NULL, ".github/workflows/ci.yml"),
			 ".github/workflows/");
	ck_assert_str_eq(git_path_protected(&pp, NULL, ".GitHub/Workflows/ci.yml"),
			 ".github/workflows/");
	ck_assert_str_eq(git_path_protected(&pp, NULL, ".gitlab-ci.yml"), ".gitlab-ci.yml");
	ck_assert_str_eq(git_path_protected(&pp, NULL, "build.sh"), "*.sh");
	ck_assert_ptr_null(git_path_protected(&pp, NULL, "scripts/build.sh"));
	ck_assert_ptr_null(git_path_protected(&pp, NULL, ".github/CODEOWNERS"));
	ck_assert_ptr_null(git_path_protected(&pp, NULL, "src/.gitlab-ci.yml"));
	ck_assert_ptr_null(git_path_protected(&pp, allow, ".github/workflows/ci.yml"));
	ck_assert_str_eq(git_path_protected(&pp, allow, ".gitlab-ci.yml"), ".gitlab-ci.yml");
}
END_TEST

START_TEST(test_refs)
{
	ck_assert(git_ref_allowed(&pp, "refs/heads/orch/task-1"));
	ck_assert(git_ref_allowed(&pp, "refs/heads/orch/a/b"));
	ck_assert(git_ref_allowed(&pp, "refs/tags/release-1"));
	ck_assert(!git_ref_allowed(&pp, "refs/heads/main"));
	ck_assert(!git_ref_allowed(&pp, "refs/tags/orch/x"));
	ck_assert(!git_ref_allowed(&pp, "refs/heads/orchard"));
	ck_assert(!git_ref_allowed(&pp, "refs/notes/orch/x"));
}
END_TEST

static int scan(const char *diff, size_t len, struct git_scan_hit *hit)
{
	char *secrets[] = {"tok_0123456789", NULL};
	memset(hit, 0, sizeof(*hit));
	return git_scan_diff(diff, len, secrets, 1, pats, 2, hit);
}

START_TEST(test_scan)
{
	struct git_scan_hit hit;
	const char *clean = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n";
	ck_assert_int_eq(scan(clean, strlen(clean), &hit), 0);
	const char *key = "+++ b/conf/app.ini\n@@ -0,0 +1 @@\n+token = tok_0123456789\n";
	ck_assert_int_eq(scan(key, strlen(key), &hit), 1);
	ck_assert_int_eq(hit.pattern, -1);
	ck_assert_str_eq(hit.file, "conf/app.ini");
	const char *aws = "+++ b/a\n+x AKIAABCDEFGHIJKLMNOP y\n";
	ck_assert_int_eq(scan(aws, strlen(aws), &hit), 1);
	ck_assert_int_eq(hit.pattern, 0);
	/* a removed line is not the result's */
	const char *gone = "+++ b/a\n-AKIAABCDEFGHIJKLMNOP\n";
	ck_assert_int_eq(scan(gone, strlen(gone), &hit), 0);
	/* after a NUL byte (a binary file shown with --text) */
	const char bin[] = "+++ b/blob\n+\x01\x02\0AKIAABCDEFGHIJKLMNOP\n";
	ck_assert_int_eq(scan(bin, sizeof(bin) - 1, &hit), 1);
	const char bin2[] = "+++ b/blob\n+\0\0tok_0123456789\n";
	ck_assert_int_eq(scan(bin2, sizeof(bin2) - 1, &hit), 1);
	/* a file named like a header does not hide the line after it */
	const char *pk = "+++ b/k\n+-----BEGIN OPENSSH PRIVATE KEY-----\n";
	ck_assert_int_eq(scan(pk, strlen(pk), &hit), 1);
	ck_assert_int_eq(hit.pattern, 1);
	char *badpat[] = {"(", NULL};
	ck_assert_int_lt(git_scan_diff("+x\n", 3, NULL, 0, badpat, 1, &hit), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("git_policy");
	TCase *tc = tcase_create("policy");
	tcase_add_test(tc, test_paths);
	tcase_add_test(tc, test_refs);
	tcase_add_test(tc, test_scan);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
