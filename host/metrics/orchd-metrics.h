/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's metrics (docs/FLEET.md, "Metrics"): what this node observed (histograms of
 * lease, dispatch and boot latency, tasks it finished) and what the store says at scrape
 * time (queue depth, tasks by state, LLM tokens and spend), rendered in Prometheus' text
 * format for the control method `metrics` (`orch metrics`) and for scrapers on a Unix
 * socket and, optionally, a loopback TCP port. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "access.h"
#include "error.h"
#include "metrics-text.h"
#include "rpc.h"

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
	struct mx_http *unix_srv, *tcp_srv;
	char *socket_path;	    /* NULL: no Unix socket */
	struct orchd_access access; /* who may scrape the Unix socket (the control rule) */
};

/* Listens where the config says (the Unix socket beside the control socket by default). */
int orchd_metrics_new(struct orchd *d, struct orch_error *err);
void orchd_metrics_free(struct orchd *d);
void orchd_metrics_observe(struct orchd *d, enum orchd_mx_hist h, double seconds);
void orchd_metrics_task_ended(struct orchd *d, int state);
void orchd_metrics_task_lost(struct orchd *d);
/* The exposition, malloc'd; NULL on failure. */
char *orchd_metrics_render(struct orchd *d, size_t *ret_len);

/* Control method `metrics`: {"text": "..."} (docs/CONTROL.md). */
int control_metrics(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err);
