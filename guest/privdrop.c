/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "privdrop.h"

int sv_drop_privileges(uid_t uid, gid_t gid)
{
	if (uid == 0 || gid == 0)
		return -EINVAL;
	if (setgroups(1, &gid) < 0)
		return -errno;
	if (setresgid(gid, gid, gid) < 0)
		return -errno;
	if (setresuid(uid, uid, uid) < 0)
		return -errno;

	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
		return -EPERM;
	/* Regaining root must fail now. */
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 || setegid(0) != -1)
		return -EPERM;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	return 0;
}

static int set_limit(int resource, rlim_t v)
{
	struct rlimit rl = {v, v};
	if (setrlimit(resource, &rl) < 0)
		return -errno;
	return 0;
}

int sv_apply_rlimits(const struct orch_limits *l, bool nproc)
{
	int r;
	if ((r = set_limit(RLIMIT_CORE, 0)) < 0)
		return r;
	if (l->nofile > 0 && (r = set_limit(RLIMIT_NOFILE, (rlim_t)l->nofile)) < 0)
		return r;
	if (l->fsize_bytes > 0 && (r = set_limit(RLIMIT_FSIZE, (rlim_t)l->fsize_bytes)) < 0)
		return r;
	if (nproc && l->pids > 0 && (r = set_limit(RLIMIT_NPROC, (rlim_t)l->pids)) < 0)
		return r;
	return 0;
}
