/* SPDX-License-Identifier: Apache-2.0 */
/* vm.thaw for a VM restored from a snapshot (vm-thaw.c), and what it calls back in vm.c.
 * Private to the core. */
#pragma once

#include <stdbool.h>

#include "error.h"

struct vm;

/* After hello: asks the backend whether the VM needs vm.thaw and sends it. Returns 1 when
 * a thaw is under way (the VM becomes ready when it is answered, or goes), 0 when there
 * is none to do, < 0 when the VM cannot be used (err says why). */
int vm_thaw_start(struct vm *vm, bool frozen, struct orch_error *err);
/* vm.c: the supervisor is ready for tasks (hello answered, and thawed when needed). */
void vm_became_ready(struct vm *vm);
