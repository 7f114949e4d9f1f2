/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>

#include "access.h"
#include "cleanup.h"

int orchd_access_init(struct orchd_access *a, const char *group, struct orch_error *err)
{
	*a = (struct orchd_access){.group = group};
	if (!group)
		return 0;
	struct group gr, *grp = NULL;
	char buf[4096];
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &grp) != 0 || !grp)
		return orch_err(err, -ENOENT,
				"group: no group named \"%s\" on this host; create it "
				"(groupadd %s) or set \"group\" to null",
				group, group);
	a->has_group = true;
	a->gid = grp->gr_gid;
	return 0;
}

bool orchd_access_allowed(const struct orchd_access *a, uid_t uid, gid_t gid)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = (int)ELEMENTSOF(groups);

	if (uid == 0)
		return true;
	if (!a->has_group)
		return false;
	if (gid == a->gid)
		return true;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return false;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == a->gid)
			return true;
	return false;
}

void orchd_access_deny_msg(const struct orchd_access *a, uid_t uid, char *buf, size_t len)
{
	snprintf(buf, len, "permission denied: uid %u is not root%s%s%s", (unsigned)uid,
		 a->has_group ? " or a member of group " : "", a->has_group ? a->group : "",
		 a->has_group ? "" : " (orchd has no \"group\" configured)");
}

gid_t orchd_access_file_gid(const struct orchd_access *a)
{
	return a->has_group ? a->gid : 0;
}
