/* SPDX-License-Identifier: Apache-2.0 */
/* Registers orchd's loop as libvirt's event implementation (virEventRegisterImpl). Call
 * once per process, before the first virConnectOpen. Returns 0 or -EALREADY. */
#pragma once

#include "loop.h"

int orchd_event_libvirt_register(struct orch_loop *loop);
