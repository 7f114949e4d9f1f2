/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/pool/pool-prune.c: which retired workspaces go, and a removal that
 * trusts nothing a guest wrote (symlinks, a mount below, renames). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "pool-prune.h"
#include "strv.h"

static char root[] = "/tmp/check-pool-prune.XXXXXX";

static void mk(const char *rel, bool dir)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	if (dir)
		ck_assert_msg(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
	else {
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		ck_assert_msg(fd >= 0, "create %s: %s", p, strerror(errno));
		ck_assert_int_eq(write(fd, "x", 1), 1);
		close(fd);
	}
}

static bool there(const char *rel)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &st) == 0;
}

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	(void)!system(cmd);
	snprintf(root, sizeof(root), "/tmp/check-pool-prune.XXXXXX");
}

static bool live_7(const char *name, void *data)
{
	return !strcmp(name, data);
}

START_TEST(test_candidates)
{
	struct orch_error err = {0};
	char **v = NULL;
	size_t n = 0;

	mk("ws", true);
	const char *dirs[] = {"ws/pt.1", "ws/pt.2",    "ws/pt.3",   "ws/pt.10",
			      "ws/pt.7", "ws/pt.9",    "ws/pt.01",  "ws/pt.x",
			      "ws/pt.",	 "ws/other.4", "ws/pt.4.5", "ws/ptt.5"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		mk(dirs[i], true);
	mk("ws/pt.8", false); /* not a directory */
	char ws[512];
	snprintf(ws, sizeof(ws), "%s/ws", root);
	/* Keep 2 of the retired ones (pt.7 is live): 10 and 9 stay; 3, 2, 1 go. */
	ck_assert_int_eq(pool_prune_candidates(ws, "pt", 2, live_7, "pt.7", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(v[0], "pt.3");
	ck_assert_str_eq(v[1], "pt.2");
	ck_assert_str_eq(v[2], "pt.1");
	ck_assert_ptr_null(v[3]);
	orch_strv_free(v);
	ck_assert_int_eq(pool_prune_candidates(ws, "pt", 100, NULL, NULL, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	orch_strv_free(v);
	ck_assert_int_eq(pool_prune_candidates(ws, "pt", 0, NULL, NULL, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 6); /* 10 9 7 3 2 1 */
	orch_strv_free(v);
	snprintf(ws, sizeof(ws), "%s/none", root);
	ck_assert_int_eq(pool_prune_candidates(ws, "pt", 0, NULL, NULL, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	orch_strv_free(v);
}
END_TEST

START_TEST(test_remove_tree_no_follow)
{
	char p[512], outside[512];

	mk("outside", true);
	mk("outside/keep", false);
	mk("w", true);
	mk("w/agent-0", true);
	mk("w/agent-0/a", true);
	mk("w/agent-0/a/b", true);
	mk("w/agent-0/a/b/f", false);
	mk("w/agent-0/g", false);
	snprintf(outside, sizeof(outside), "%s/outside", root);
	snprintf(p, sizeof(p), "%s/w/agent-0/link", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/w/agent-0/a/keep-link", root);
	ck_assert_int_eq(symlink("../../../outside/keep", p), 0);
	snprintf(p, sizeof(p), "%s/w", root);
	ck_assert_int_eq(pool_remove_tree(p), 0);
	ck_assert(!there("w"));
	ck_assert(there("outside/keep")); /* symlinks removed, never followed */
	/* A symlink in place of the workspace itself is removed, not followed. */
	snprintf(p, sizeof(p), "%s/w2", root);
	ck_assert_int_eq(symlink(outside, p), 0);
	ck_assert_int_eq(pool_remove_tree(p), 0);
	ck_assert(!there("w2"));
	ck_assert(there("outside/keep"));
	ck_assert_int_eq(pool_remove_tree(p), 0); /* gone already */
	ck_assert_int_eq(pool_remove_tree("relative/path"), -EINVAL);
}
END_TEST

/* A mount below a workspace (a repository task's, still mounted) is left alone. */
START_TEST(test_remove_tree_stays_on_its_filesystem)
{
	char p[512];

	mk("w", true);
	mk("w/task-1", true);
	mk("w/f", false);
	snprintf(p, sizeof(p), "%s/w/task-1", root);
	if (mount("check", p, "tmpfs", 0, "size=64k") < 0) {
		printf("# mount below the workspace not tested: %s (needs root)\n",
		       strerror(errno));
		return;
	}
	snprintf(p, sizeof(p), "%s/w/task-1/inside", root);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/w", root);
	ck_assert_int_eq(pool_remove_tree(p), -EBUSY);
	ck_assert(there("w/task-1/inside"));
	ck_assert(!there("w/f"));
	snprintf(p, sizeof(p), "%s/w/task-1", root);
	ck_assert_int_eq(umount(p), 0);
	snprintf(p, sizeof(p), "%s/w", root);
	ck_assert_int_eq(pool_remove_tree(p), 0);
	ck_assert(!there("w"));
}
END_TEST

/* A workspace orchd made a bind mount of itself is detached, then removed. */
START_TEST(test_remove_tree_bind_mount)
{
	char p[512];

	mk("w", true);
	mk("w/agent-0", true);
	mk("w/agent-0/f", false);
	snprintf(p, sizeof(p), "%s/w", root);
	if (mount(p, p, NULL, MS_BIND, NULL) < 0) {
		printf("# bind-mounted workspace not tested: %s (needs root)\n", strerror(errno));
		return;
	}
	ck_assert_int_eq(pool_remove_tree(p), 0);
	ck_assert(!there("w"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool-prune");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_candidates);
	tcase_add_test(tc, test_remove_tree_no_follow);
	tcase_add_test(tc, test_remove_tree_stays_on_its_filesystem);
	tcase_add_test(tc, test_remove_tree_bind_mount);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
