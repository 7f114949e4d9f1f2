/* SPDX-License-Identifier: Apache-2.0 */
/* Who may drive orchd: root, or a user whose primary or supplementary groups include the
 * configured group ("group" in the config; none: root only). One rule for every door
 * orchd opens to local users: the control socket (control.c) and the debug shells
 * (shell-relay.c), each checking its peer's SO_PEERCRED with it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct orchd_access {
	const char *group; /* borrowed from the config; NULL: root only */
	bool has_group;
	gid_t gid;
};

/* Looks the group up (-ENOENT with the fix in err when there is no such group). */
int orchd_access_init(struct orchd_access *a, const char *group, struct orch_error *err);
bool orchd_access_allowed(const struct orchd_access *a, uid_t uid, gid_t gid);
/* "permission denied: uid N is not root or a member of group G" (or why there is none). */
void orchd_access_deny_msg(const struct orchd_access *a, uid_t uid, char *buf, size_t len);
/* The group for files only the allowed may reach (the group's, else root's). */
gid_t orchd_access_file_gid(const struct orchd_access *a);
