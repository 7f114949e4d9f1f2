/* SPDX-License-Identifier: Apache-2.0 */
/* The warm-up of a VM restored from a snapshot (docs/VM.md, "Snapshots"; vm.thaw "warm").
 *
 * Under TCG a restored VM runs none of its code translated yet: its first task pays for
 * the translation of every path a task takes (fork, bubblewrap, the namespaces, seccomp,
 * the cgroup, the exec helper), ~200 ms more to its first output than the next task's.
 * Before answering a vm.thaw that asks for it, the supervisor therefore runs one
 * throwaway jail, `true`, as a task of slot 0 would run: the same bwrap command line,
 * seccomp filter, network namespace, cgroup (its configured limits) and uid, but a
 * workspace of its own, an empty directory below /run that is removed afterwards, and no
 * transcript. It runs before any task, sees no workspace, and leaves nothing behind: its
 * /tmp, /dev and IPC are the jail's own and go with it, its processes are gone (waited
 * for, killed after SV_WARM_TIMEOUT_MS), its cgroup is empty again. A warm-up that fails
 * is logged and does not fail the thaw. */
#pragma once

#include "error.h"

#define SV_WARM_TIMEOUT_MS 10000

struct supervisor;

/* Runs the throwaway jail and waits for it (blocking the supervisor's loop). */
int sv_warm(struct supervisor *sv, struct orch_error *err);
