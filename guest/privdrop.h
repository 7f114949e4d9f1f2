/* SPDX-License-Identifier: Apache-2.0 */
/* Irrevocable switch to an agent's uid/gid (OpenSSH uidswap / bubblewrap drop_privs), and
 * resource limits. Used in forked children; async-signal-safe. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "schema.h"

/* setgroups(gid), setresgid, setresuid, then checks that root cannot be regained and
 * sets no_new_privs. Returns 0 or -errno (-EPERM when regaining root did not fail). */
int sv_drop_privileges(uid_t uid, gid_t gid);

/* RLIMIT_CORE 0, RLIMIT_NOFILE/FSIZE from l (0: left alone); RLIMIT_NPROC = l->pids when
 * nproc is true (no pids cgroup: the per-uid process count is the fallback). */
int sv_apply_rlimits(const struct orch_limits *l, bool nproc);
