/* SPDX-License-Identifier: Apache-2.0 */
/* What a task may use (0: not set, the next level's value applies: the task's, its
 * profile's, its VM's, orchd's; docs/CONFIG.md "limits"). Stored with each task. */
#pragma once

#include <stdint.h>

struct orchd_limits {
	int64_t timeout_ms;
	int64_t memory_mib;
	int64_t pids;
	int64_t cpu_percent;
	int64_t nofile;
	int64_t fsize_mib;
};
