/* SPDX-License-Identifier: Apache-2.0 */
/* The "git" section of orchd's config, and what task.submit and profiles accept as a
 * repository and a ref (host/config/config-git.h). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "check-run.h"
#include "config.h"
#include "config-git.h"

static int parse(const char *text, struct orchd_config **ret, struct orch_error *err)
{
	return orchd_config_parse(text, strlen(text), NULL, ret, err);
}

START_TEST(test_defaults)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	ck_assert_msg(parse("{\"state_dir\": \"/srv/orch\"}", &c, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(c->git->dir, "/srv/orch/git");
	ck_assert_int_eq(c->git->workspace_mib, 4096);
	ck_assert_int_eq(c->git->keep_workspaces, 10);
	ck_assert_uint_eq(c->git->push.n_refs, 1);
	ck_assert_str_eq(c->git->push.refs[0], "orch/*");
	ck_assert_str_eq(c->git->push.protected_paths[0], ".github/workflows/");
	ck_assert_uint_ge(c->git->push.n_secret_patterns, 3);
	orchd_config_free(c);
}
END_TEST

START_TEST(test_full)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	const char *text =
		"{\"git\": {\"dir\": \"/srv/git\", \"workspace_mib\": 64, \"keep_workspaces\": 0,"
		" \"credentials\": [{\"url\": \"https://github.com/\", \"token_file\": \"/k\"},"
		"  {\"url\": \"ssh://git@github.com/acme/\", \"ssh_key_file\": \"/s\", "
		"   \"known_hosts\": \"/kh\"}],"
		" \"remotes\": {\"fork\": \"https://github.com/me/x.git\"},"
		" \"push\": {\"refs\": [\"agent/*\", \"refs/tags/v*\"], \"protected_paths\": [],"
		"  \"secret_patterns\": [\"SECRET[0-9]+\"], \"max_files\": 3}},"
		" \"profiles\": {\"p\": {\"command\": [\"sh\"], \"repo\": \"https://x.test/r.git\","
		"  \"ref\": \"dev\"}}}";
	ck_assert_msg(parse(text, &c, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(c->git->dir, "/srv/git");
	ck_assert_int_eq(c->git->workspace_mib, 64);
	ck_assert_str_eq(c->git->creds[0].username, "x-access-token");
	ck_assert_ptr_eq(git_config_cred(c->git, "https://github.com/acme/r.git"),
			 &c->git->creds[0]);
	ck_assert_ptr_eq(git_config_cred(c->git, "ssh://git@github.com/acme/r.git"),
			 &c->git->creds[1]);
	ck_assert_ptr_null(git_config_cred(c->git, "https://gitlab.com/x.git"));
	ck_assert_str_eq(git_config_remote(c->git, "fork")->url, "https://github.com/me/x.git");
	ck_assert_uint_eq(c->git->push.n_protected, 0);
	ck_assert_int_eq(c->git->push.max_files, 3);
	ck_assert_str_eq(orchd_config_profile(c, "p")->repo, "https://x.test/r.git");
	orchd_config_free(c);
}
END_TEST

START_TEST(test_refused)
{
	static const char *const bad[][2] = {
		{"{\"git\": {\"nope\": 1}}", "git.nope: unknown key"},
		{"{\"git\": {\"workspace_mib\": 1}}", "git.workspace_mib"},
		{"{\"git\": {\"dir\": \"rel\"}}", "git.dir"},
		{"{\"git\": {\"credentials\": [{\"url\": \"https://x/\"}]}}", "token_file"},
		{"{\"git\": {\"credentials\": [{\"url\": \"https://x/\", \"token_file\": \"/a\", "
		 "\"ssh_key_file\": \"/b\"}]}}",
		 "one of"},
		{"{\"git\": {\"push\": {\"secret_patterns\": [\"(\"]}}}", "secret_patterns[0]"},
		{"{\"git\": {\"push\": {\"protected_paths\": [\"/abs\"]}}}", "protected_paths[0]"},
		{"{\"git\": {\"remotes\": {\"x\": \"ext::sh -c evil\"}}}", "git.remotes.x"},
		{"{\"git\": {\"dir\": \"/var/lib/orch/workspaces/g\"}}", "git.dir"},
		{"{\"profiles\": {\"p\": {\"repo\": \"https://u:pw@x.test/r\"}}}",
		 "profiles.p.repo"},
		{"{\"profiles\": {\"p\": {\"repo\": \"x\", \"ref\": \"--upload-pack=evil\"}}}",
		 "profiles.p.repo"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct orchd_config *c = NULL;
		struct orch_error err = {0};
		ck_assert_msg(parse(bad[i][0], &c, &err) < 0, "accepted %s", bad[i][0]);
		ck_assert_msg(strstr(err.msg, bad[i][1]), "%s: '%s' lacks '%s'", bad[i][0], err.msg,
			      bad[i][1]);
	}
}
END_TEST

START_TEST(test_repo_and_ref)
{
	static const char *const good[] = {"/srv/repo",
					   "/srv/repo.git",
					   "https://github.com/a/b.git",
					   "http://127.0.0.1:8080/r",
					   "ssh://git@github.com/a/b.git",
					   "git://127.0.0.1/r",
					   "file:///srv/r.git",
					   "git@github.com:a/b.git",
					   "host:path"};
	static const char *const bad_repo[] = {"",
					       "relative/path",
					       "-oProxyCommand=evil",
					       "ext::sh -c 'touch /x'",
					       "fd::17",
					       "https://user:pw@github.com/a",
					       "ssh://-oProxyCommand=x/r",
					       "/srv/../etc",
					       "/a b",
					       "https://x/\n",
					       "file://relative",
					       "git@-x:r"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(git_repo_valid(good[i]), "refused %s", good[i]);
	for (size_t i = 0; i < sizeof(bad_repo) / sizeof(bad_repo[0]); i++)
		ck_assert_msg(!git_repo_valid(bad_repo[i]), "accepted '%s'", bad_repo[i]);
	ck_assert(git_repo_is_local("/srv/r"));
	ck_assert(git_repo_is_local("file:///srv/r"));
	ck_assert(!git_repo_is_local("https://x/r"));

	ck_assert(git_ref_valid("main"));
	ck_assert(git_ref_valid("feature/x-1"));
	ck_assert(git_ref_valid("v1.2.3"));
	ck_assert(git_ref_valid("0123456789abcdef0123456789abcdef01234567"));
	ck_assert(!git_ref_valid("--upload-pack=x"));
	ck_assert(!git_ref_valid("a..b"));
	ck_assert(!git_ref_valid("a^{tree}"));
	ck_assert(!git_ref_valid("a b"));
	ck_assert(!git_ref_valid("HEAD@{1}"));
	ck_assert(git_refname_valid("refs/heads/orch/task-1"));
	ck_assert(!git_refname_valid("refs/heads/x.lock"));
	ck_assert(!git_refname_valid("refs/heads//x"));
	ck_assert(!git_refname_valid("refs/heads/.hidden"));
	ck_assert(!git_refname_valid("refs/heads/x/"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("git_config");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_repo_and_ref);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
