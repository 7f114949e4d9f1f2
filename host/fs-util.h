/* SPDX-License-Identifier: Apache-2.0 */
/* Small file-system helpers shared by orchd's backends. */
#pragma once

#include <sys/types.h>

/* Creates path and its missing parents with mode (existing directories are left as they
 * are). Returns 0 or -errno. */
int orchd_mkdir_p(const char *path, mode_t mode);
