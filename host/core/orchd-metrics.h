/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's metrics (docs/FLEET.md, "Metrics"): what this node observed (histograms of
 * lease, dispatch and boot latency, tasks it finished) and what the store says at scrape
 * time (queue depth, tasks by state, LLM tokens and spend), rendered in Prometheus' text
 * format. The control room serves it (host/control/control-metrics.c: the control method
 * `metrics`, i.e. `orch metrics`, and the scrape endpoint on a Unix socket and, optionally,
 * a loopback TCP port). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "metrics-text.h"

struct orchd;

enum orchd_mx_hist {
	ORCHD_MX_LEASE,	   /* a task's submission to its first lease */
	ORCHD_MX_DISPATCH, /* a lease to the supervisor's task.run acknowledgement */
	ORCHD_MX_BOOT_LOCAL,
	ORCHD_MX_BOOT_LIBVIRT, /* a VM's start to its supervisor's hello */
	_ORCHD_MX_HIST_MAX,
};

struct orchd_metrics {
	struct mx_histogram hist[_ORCHD_MX_HIST_MAX];
	uint64_t finished[16]; /* tasks this node saw end, by final state (enum task_state) */
	uint64_t lost;	       /* tasks this node lost (its VMs went away under them) */
};

int orchd_metrics_new(struct orchd *d, struct orch_error *err);
void orchd_metrics_free(struct orchd *d);
void orchd_metrics_observe(struct orchd *d, enum orchd_mx_hist h, double seconds);
void orchd_metrics_task_ended(struct orchd *d, int state);
void orchd_metrics_task_lost(struct orchd *d);
/* The exposition, malloc'd; NULL on failure. */
char *orchd_metrics_render(struct orchd *d, size_t *ret_len);
