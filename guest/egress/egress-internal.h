/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between egress-proxy.c (slots, helpers), egress-conn.c (connections) and
 * egress-lane.c (the lane to orchd, the CA files). Not for other components: they use egress-proxy.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "egress-io.h"
#include "egress-proxy.h"
#include "egress.h"
#include "helper-listener.h"
#include "privsep.h"
#include "transport.h"

#define EGRESS_MAX_SLOTS 64
#define EGRESS_BUCKETS 256
#define EGRESS_MAX_CONNS_SLOT 256 /* open connections per slot (orchd caps lower) */
#define EGRESS_OUT_CAP (ORCH_EGRESS_WINDOW_DOWN + 64) /* the window and the proxy's own 200 */
#define EGRESS_LANE_CONGESTED (4u * 1024 * 1024) /* queued towards orchd: stop reading agents */

enum econn_state {
	ECONN_WAIT = 1, /* open sent, no verdict yet */
	ECONN_OPEN,	/* relaying */
	ECONN_LINGER,	/* orchd closed it: the rest of the answer out, the agent's bytes dropped */
};

struct econn {
	struct egress_bridge *b;
	struct econn *hnext;
	uint32_t id;
	unsigned slot;
	int fd;
	struct orch_io *io;
	enum orch_egress_kind kind;
	enum econn_state state;
	size_t send_credit; /* bytes orchd takes from us now */
	uint8_t *out;	    /* ring of EGRESS_OUT_CAP bytes towards the agent */
	size_t out_start, out_len;
	size_t head_bytes; /* at the ring's start: the proxy's own answer (no credit) */
	size_t owed;	   /* written to the agent, not yet credited to orchd */
	bool client_eof, host_eof, shut_wr;
	struct orch_timer *linger; /* ECONN_LINGER: the end of the wait */
	size_t linger_left;	   /* ECONN_LINGER: bytes still dropped before closing */
};

struct egress_ep {
	struct egress_bridge *b;
	unsigned slot;
	char *task;
	struct sv_listener h; /* the helper, started on the listener's first connection */
	int sock;	      /* SOCK_SEQPACKET to the helper */
	struct orch_io *sock_io;
	const char *bad;
	char bad_buf[600];
	unsigned n_conns;
};

struct egress_bridge {
	struct orch_loop *loop;
	struct egress_bridge_opts o;
	int netns_fds[EGRESS_MAX_SLOTS]; /* o.netns_fds points here (the caller's is borrowed) */
	char *connect;
	char *helper;
	struct egress_ep *eps[EGRESS_MAX_SLOTS];
	struct econn *buckets[EGRESS_BUCKETS];
	unsigned n_conns;
	uint32_t next_id;
	/* the lane */
	struct orch_addr addr;
	int lane_fd;
	struct orch_io *lane_io;
	struct orch_egress_io *lane; /* NULL while disconnected */
	bool ready;		     /* orchd's hello arrived */
	bool congested;
	bool fd_used;
	bool stopping;
	struct orch_timer *reconnect;
	uint64_t backoff_ms, connected_ms;
	/* CA files (egress-lane.c) */
	char *ca_dir;
	char *ca_pem;
	const char *env[16];
	char proxy_env[4][48]; /* HTTP_PROXY... with the port */
	const char *binds[8];
	char ca_file[300], bundle_file[300];
	uint8_t rbuf[ORCH_EGRESS_MAX_PAYLOAD];
	char msg[ORCH_EGRESS_MAX_PAYLOAD + 1];
};

/* egress-conn.c. A new connection in ECONN_WAIT holding fd (counted in b, not in the
 * slot's endpoint); NULL: out of memory, fd still the caller's. */
struct econn *egress_conn_new(struct egress_bridge *b, unsigned slot, enum orch_egress_kind kind,
			      int fd);
/* Watches the connection's socket (no events until a verdict). */
int egress_conn_watch(struct econn *c);
/* A fixed answer from the proxy itself; the caller frees the connection. */
void egress_conn_refuse(struct econn *c, int status, const char *reason);
struct econn *egress_conn_find(struct egress_bridge *b, uint32_t id);
void egress_conn_free(struct econn *c, const char *why);
void egress_conns_update(struct egress_bridge *b);
/* The lane's sink (orch_egress_io_set_sink): the agent's socket a piece of DATA goes to
 * straight, when the connection is open and nothing waits before it; and the bytes it
 * took. */
int egress_conn_sink(struct egress_bridge *b, const struct orch_egress_hdr *h);
void egress_conn_sunk(struct egress_bridge *b, const struct orch_egress_hdr *h);
int egress_conn_on_frame(struct egress_bridge *b, const struct orch_egress_hdr *h, const uint8_t *p,
			 struct orch_error *err);

/* egress-proxy.c */
int egress_ep_new(struct egress_bridge *b, unsigned slot, int listen_fd, struct orch_error *err);
void egress_ep_free(struct egress_ep *ep);
void egress_ep_stop(struct egress_ep *ep, const char *why, bool restart);
int egress_ep_misbehaved(struct egress_ep *ep, const char *why, const char *detail);

/* egress-lane.c */
int egress_lane_send(struct egress_bridge *b, uint8_t type, uint32_t conn, const void *p,
		     size_t len);
int egress_lane_credit(struct egress_bridge *b, uint32_t conn, uint32_t n);
