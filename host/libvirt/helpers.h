/* SPDX-License-Identifier: Apache-2.0 */
/* Programs of orch's own that libvirt runs for a domain. */
#pragma once

#include <stddef.h>

#define LV_VIRTIOFSD_RO "orch-virtiofsd-ro"

/* orch-virtiofsd-ro (host/libvirt/virtiofsd-ro.c): beside the running binary, in its
 * libvirt/ subdirectory (the build tree), in $ORCH_LIBEXECDIR, the install libexecdir,
 * the build tree. -ENOENT when none is executable. */
int lv_virtiofsd_ro_path(char *buf, size_t size);
