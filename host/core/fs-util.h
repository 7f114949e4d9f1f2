/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers shared by orchd's backends. */
#pragma once

#include <sys/types.h>

/* Creates the directory path with exactly mode (orchd runs with umask 077). Returns 1
 * when it was created, 0 when it existed (left as it is), or -errno. */
int orchd_mkdir(const char *path, mode_t mode);
/* Creates path and its missing parents with exactly mode (existing directories are left
 * as they are). Returns 0 or -errno. */
int orchd_mkdir_p(const char *path, mode_t mode);

/* Makes path a directory owned by uid:gid with exactly mode, whatever was there: missing
 * parents are created 0755, an existing directory is re-owned and re-moded (through an fd
 * opened with O_NOFOLLOW: a symlink or anything else in its place is refused, -ELOOP or
 * -ENOTDIR). For directories whose mode is what keeps others out. */
int orchd_dir_private(const char *path, uid_t uid, gid_t gid, mode_t mode);
