/* SPDX-License-Identifier: Apache-2.0 */
/* orch-virtiofsd, the virtiofsd wrapper that orchd names in a domain's <filesystem>
 * (<binary path=.../>): libvirt's domain XML cannot pass virtiofsd options of its own, and
 * the wrapper adds those that keep a hostile guest's root from planting device nodes and
 * file capabilities on the host (docs/VM.md, "The workspace share"). */
#pragma once

#include <stddef.h>

#include "error.h"

#define LV_VIRTIOFSD_WRAPPER "orch-virtiofsd"
/* The agents share's: orch-virtiofsd-ro (virtiofsd-ro.c) makes the shared directory a
 * read-only mount in a namespace of its own, then runs orch-virtiofsd. */
#define LV_VIRTIOFSD_RO_WRAPPER "orch-virtiofsd-ro"

/* The first of the candidate directories (NULL entries skipped, n in all) that holds an
 * executable orch-virtiofsd, as a malloc'd path in *ret. The error lists where it
 * looked. */
int lv_virtiofsd_find(const char *const *dirs, size_t n, char **ret, struct orch_error *err);

/* lv_virtiofsd_find over orchd's own places: beside the running binary, its libvirt/
 * subdirectory (the build tree), $ORCH_LIBEXECDIR, the install libexecdir. */
int lv_virtiofsd_wrapper(char **ret, struct orch_error *err);
/* The same for orch-virtiofsd-ro. */
int lv_virtiofsd_ro_wrapper(char **ret, struct orch_error *err);
