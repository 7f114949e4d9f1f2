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
