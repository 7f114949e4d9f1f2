/* SPDX-License-Identifier: Apache-2.0 */
/* The modes orchd gives the directories above the VMs' workspaces (host/workspace-dirs.h):
 * created, tightened, refused, and kept traversable for local agents. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check-run.h"
#include "config.h"
#include "workspace-dirs.h"

static char tmp[64];

static void setup(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/check-wsdirs.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	/* A restrictive umask must not leave the workspace closed to the guest's agents. */
	umask(0077);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
	umask(0022);
}

static struct orchd_config *config(const char *vms_json)
{
	char text[2048];
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	snprintf(text, sizeof(text), "{\"state_dir\": \"%s/state\", \"vms\": %s}", tmp, vms_json);
	ck_assert_msg(orchd_config_parse(text, strlen(text), NULL, &c, &err) == 0, "%s", err.msg);
	return c;
}

/* The mode of tmp/rel. */
static unsigned mode_of(const char *rel)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	ck_assert_msg(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

START_TEST(test_libvirt_only)
{
	struct orchd_config *c = config("{\"dev\": {\"backend\": \"libvirt\"}}");
	struct orch_error err = {0};
	bool tightened = true;

	ck_assert_msg(orchd_dirs_prepare(c, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(mode_of("state"), 0711);
	ck_assert_uint_eq(mode_of("state/workspaces"), 0700);
	ck_assert_msg(orchd_workspace_private(c, &c->vms[0], &tightened, &err) == 0, "%s", err.msg);
	ck_assert(!tightened);
	ck_assert_uint_eq(mode_of("state/workspaces/dev"), 0711);

	/* An open workspace_root (an older orchd made it 0755) is orchd's own: tightened. */
	char p[256];
	snprintf(p, sizeof(p), "%s/state/workspaces", tmp);
	ck_assert_int_eq(chmod(p, 0755), 0);
	ck_assert_msg(orchd_workspace_private(c, &c->vms[0], &tightened, &err) == 0, "%s", err.msg);
	ck_assert(tightened);
	ck_assert_uint_eq(mode_of("state/workspaces"), 0700);
	/* The guest's root closed the share's root: the agents need o+x back. */
	snprintf(p, sizeof(p), "%s/state/workspaces/dev", tmp);
	ck_assert_int_eq(chmod(p, 0700), 0);
	ck_assert_int_eq(orchd_workspace_private(c, &c->vms[0], NULL, &err), 0);
	ck_assert_uint_eq(mode_of("state/workspaces/dev"), 0711);
	orchd_config_free(c);
}
END_TEST

START_TEST(test_outside_workspace_root)
{
	char vms[512], p[256];
	struct orch_error err = {0};
	/* Missing directories above the workspace are created 0700. */
	snprintf(vms, sizeof(vms),
		 "{\"dev\": {\"backend\": \"libvirt\", \"workspace\": \"%s/srv/vm/dev\"}}", tmp);
	struct orchd_config *c = config(vms);
	ck_assert_msg(orchd_dirs_prepare(c, &err) == 0, "%s", err.msg);
	ck_assert_msg(orchd_workspace_private(c, &c->vms[0], NULL, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(mode_of("srv"), 0700);
	ck_assert_uint_eq(mode_of("srv/vm"), 0700);
	ck_assert_uint_eq(mode_of("srv/vm/dev"), 0711);

	/* An open parent that is not orchd's own is refused, naming it and the fix. */
	snprintf(p, sizeof(p), "%s/srv/vm", tmp);
	ck_assert_int_eq(chmod(p, 0755), 0);
	ck_assert_int_eq(orchd_workspace_private(c, &c->vms[0], NULL, &err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, p));
	ck_assert_ptr_nonnull(strstr(err.msg, "chmod 0700"));
	ck_assert_uint_eq(mode_of("srv/vm"), 0755);
	orchd_config_free(c);
}
END_TEST

START_TEST(test_local_and_libvirt)
{
	struct orch_error err = {0};
	/* A local VM below workspace_root: o+x for its agents on state_dir and workspace_root;
	 * a libvirt VM with its workspace beside it is refused. */
	struct orchd_config *c = config("{\"dev\": {\"backend\": \"libvirt\"}, "
					"\"scratch\": {\"backend\": \"local\"}}");
	char p[256];
	snprintf(p, sizeof(p), "%s/state", tmp);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	ck_assert_msg(orchd_dirs_prepare(c, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(mode_of("state"), 0711);
	ck_assert_uint_eq(mode_of("state/workspaces"), 0711);
	ck_assert_int_eq(orchd_workspace_private(c, orchd_config_vm(c, "dev"), NULL, &err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, "local vm scratch"));
	ck_assert_ptr_nonnull(strstr(err.msg, "vms.dev.workspace"));
	ck_assert_uint_eq(mode_of("state/workspaces"), 0711);
	orchd_config_free(c);

	/* The local VM elsewhere (as in host/orchd.example.json): both work. */
	char vms[512];
	snprintf(vms, sizeof(vms),
		 "{\"dev\": {\"backend\": \"libvirt\"}, \"scratch\": {\"backend\": \"local\", "
		 "\"workspace\": \"%s/state/local/scratch\"}}",
		 tmp);
	c = config(vms);
	ck_assert_msg(orchd_dirs_prepare(c, &err) == 0, "%s", err.msg);
	ck_assert_msg(orchd_workspace_private(c, orchd_config_vm(c, "dev"), NULL, &err) == 0, "%s",
		      err.msg);
	ck_assert_uint_eq(mode_of("state/workspaces"), 0700);
	ck_assert_uint_eq(mode_of("state"), 0711);
	ck_assert_uint_eq(mode_of("state/local/scratch") & 0011, 0011);
	orchd_config_free(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("workspace_dirs");
	TCase *tc = tcase_create("modes");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_libvirt_only);
	tcase_add_test(tc, test_outside_workspace_root);
	tcase_add_test(tc, test_local_and_libvirt);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
