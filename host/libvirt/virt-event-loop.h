/* SPDX-License-Identifier: Apache-2.0 */
/* Registers orchd's loop as libvirt's event implementation (virEventRegisterImpl). Call
 * once per process, before the first virConnectOpen. Returns 0 or -EALREADY. */
#pragma once

#include "loop.h"

int orchd_event_libvirt_register(struct orch_loop *loop);

/* Runs the free callbacks libvirt's removals left for the loop's next iteration: at
 * shutdown, after the last connection is closed and the loop no longer runs (they would
 * leak otherwise). Nothing when there are none. */
void orchd_event_libvirt_drain(void);
