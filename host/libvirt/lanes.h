/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's AF_VSOCK lanes: one listener per kind of traffic (control, LLM) for all VMs,
 * on reserved host ports (< 1024: only a process with CAP_NET_BIND_SERVICE can bind them,
 * so no unprivileged host user can take a port a guest dials). Every connection is
 * dispatched by its peer CID, which the hypervisor sets (a guest cannot choose it), to the
 * owner registered for that CID; a CID nobody registered is refused (closed) and
 * reported. Runs on the caller's loop; no libvirt, no logging (the callbacks log). */
#pragma once

#include <stdint.h>

#include "error.h"
#include "loop.h"
#include "transport.h"

enum lv_lane {
	LV_LANE_CONTROL = 0, /* task.*, heartbeats */
	LV_LANE_LLM,	     /* llm.* */
	LV_LANE_EGRESS,	     /* the agents' outbound connections (proto/egress.h) */
	LV_LANE_MAX,
};

/* A connection for owner on lane: the callee takes fd in every case. Returning < 0 (with
 * err filled) refuses it: the callee has closed fd, and on_refused reports it. */
typedef int (*lv_lane_conn_cb)(void *owner, enum lv_lane lane, int fd,
			       const struct orch_vsock_peer *peer, struct orch_error *err);
/* A refused connection (unknown CID, or refused by the owner): why says it. */
typedef void (*lv_lane_refused_cb)(enum lv_lane lane, const struct orch_vsock_peer *peer,
				   const char *why, void *data);

struct lv_lanes_opts {
	uint32_t port[LV_LANE_MAX]; /* reserved ports (1..1023); 0: lane not served */
	/* names of the ports in error messages, e.g. "vsock.control_port"; NULL: "port" */
	const char *port_name[LV_LANE_MAX];
	uint32_t listen_cid; /* ORCH_VSOCK_CID_ANY (0 means the same) */
	lv_lane_conn_cb on_conn;
	lv_lane_refused_cb on_refused; /* may be NULL */
	void *data;		       /* for on_refused */
};

struct lv_lanes;

/* Binds and listens on every configured port, or fails with nothing left open: a port
 * that is not reserved is -EINVAL, one taken -EADDRINUSE, no privilege -EACCES, each with
 * the port and what to do in err. */
int lv_lanes_new(struct orch_loop *loop, const struct lv_lanes_opts *o, struct lv_lanes **ret,
		 struct orch_error *err);
void lv_lanes_free(struct lv_lanes *l);

/* Connections from cid go to owner from now on (-EEXIST when another owner has it,
 * -ENOMEM). */
int lv_lanes_register(struct lv_lanes *l, uint32_t cid, void *owner);
/* No more connections from cid (unknown CIDs are ignored). */
void lv_lanes_unregister(struct lv_lanes *l, uint32_t cid);
/* The registered owner of cid, NULL when none. */
void *lv_lanes_owner(const struct lv_lanes *l, uint32_t cid);
/* Whether lane is served (its port configured). */
bool lv_lanes_serves(const struct lv_lanes *l, enum lv_lane lane);
const char *lv_lane_name(enum lv_lane lane);
