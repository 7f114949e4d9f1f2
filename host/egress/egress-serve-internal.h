/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by egress-serve.c (the lane, decisions) and egress-relay.c (connecting and
 * relaying). Not for other components. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "config-util.h"
#include "egress-io.h"
#include "egress-log.h"
#include "egress-resolve.h"
#include "egress-serve.h"
#include "egress.h"

#define HCONN_BUCKETS 256
#define HCONN_MAX_SLOTS 64
#define HCONN_MAX_ADDRS 8
#define HCONN_LANE_CONGESTED (4u * 1024 * 1024)
#define HCONN_CREDIT_BATCH (ORCH_EGRESS_WINDOW_UP / 4)

struct egress_tls;
struct egress_dlp;
struct icpt;

struct egress_host {
	struct egress_tls *tls; /* NULL: nothing intercepted */
	struct egress_dlp *dlp; /* with tls: keys and patterns refused in requests */
	struct orch_loop *loop;
	const struct egress_config *cfg;
	sqlite3 *db;
	struct egress_resolver *resolver;
	char *ca_pem;
	uint64_t inserts;
	struct egress_totals totals; /* connections that ended, for egress_host_totals */
	/* egress log rows not yet in the store: written in one transaction every
	 * HCONN_LOG_FLUSH_MS (or when HCONN_LOG_MAX wait), so a connection flood costs the
	 * store one commit per flush, not one per connection */
	struct pending_row *rows;
	size_t n_rows;
	struct orch_timer *log_timer;
};

#define HCONN_LOG_FLUSH_MS 100
#define HCONN_LOG_MAX 4096

struct pending_row {
	struct egress_log_row row; /* vm, kind, host, reason point into text */
	char vm[64], host[ORCH_EGRESS_MAX_HOST + 1], reason[ORCH_EGRESS_MAX_REASON + 1];
};

enum hconn_state {
	HCONN_NEW = 0,
	HCONN_RESOLVING,  /* allowed by the sets, addresses being found */
	HCONN_HELLO,	  /* tunnel: verdict sent, waiting for the ClientHello */
	HCONN_CONNECTING, /* dialling the upstream */
	HCONN_OPEN,	  /* relaying */
};

struct hconn {
	struct egress_serve *s;
	struct hconn *hnext;
	uint32_t id;
	int64_t slot, task;
	enum orch_egress_kind kind;
	enum hconn_state state;
	char host[ORCH_EGRESS_MAX_HOST + 1];
	uint16_t port;
	struct egress_resolve_job *job;
	struct sockaddr_storage addrs[HCONN_MAX_ADDRS];
	size_t n_addrs, addr_i;
	int fd; /* the upstream */
	struct orch_io *io;
	struct orch_timer *timer; /* connect timeout, then the duration limit */
	char *pre;		  /* HTTP: the request head, written before the guest's bytes */
	size_t pre_len, pre_off;
	uint8_t *up; /* ring of ORCH_EGRESS_WINDOW_UP bytes from the guest */
	size_t up_start, up_len;
	size_t owed;	    /* written upstream, not yet credited to the guest */
	size_t send_credit; /* bytes the guest takes from us now */
	bool guest_eof, up_eof, shut_wr;
	bool verdict_sent, allowed;
	int64_t bytes_up, bytes_down, task_bytes_base;
	uint64_t start_ms;
	int64_t wall_start_ms;
	struct icpt *icpt; /* an intercepted tunnel (egress-intercept.c), else NULL */
	char reason[ORCH_EGRESS_MAX_REASON + 1];
};

struct egress_serve {
	struct egress_host *h;
	int fd;
	struct orch_io *io;
	struct orch_egress_io *eio;
	char vm[64];
	int64_t n_slots;
	egress_slot_cb slot_cb;
	void *data;
	void (*close_cb)(void *data);
	void *close_data;
	struct hconn *buckets[HCONN_BUCKETS];
	unsigned n_conns;
	unsigned slot_conns[HCONN_MAX_SLOTS];
	uint32_t last_id;
	bool congested, failed, closing;
	uint8_t rbuf[ORCH_EGRESS_MAX_PAYLOAD];
};

/* A reason (printable ASCII, at most size - 1 bytes; longer ones are cut). */
__attribute__((format(printf, 3, 4))) static inline void reasonf(char *buf, size_t size,
								 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

static inline int64_t store_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* egress-serve.c */
struct hconn *egress_hconn_find(struct egress_serve *s, uint32_t id);
void egress_hconn_end(struct hconn *c, bool tell);
void egress_hconn_deny(struct hconn *c, int status, const char *reason);
int egress_lane_queue(struct egress_serve *s, uint8_t type, uint32_t conn, const void *p,
		      size_t len);
/* The frame whose payload was read into orch_egress_io_reserve's buffer. */
int egress_lane_commit(struct egress_serve *s, uint8_t type, uint32_t conn, size_t len);
/* A DATA frame spliced from fd (orch_egress_io_splice): its bytes, 0 at EOF, -EAGAIN,
 * -EBUSY or -EOPNOTSUPP (copy with orch_egress_io_reserve and egress_lane_commit
 * instead), -errno. */
ssize_t egress_lane_splice(struct egress_serve *s, int fd, size_t max, uint32_t conn);
int egress_lane_verdict(struct egress_serve *s, uint32_t conn, int status, const char *reason);

/* egress-relay.c */
void egress_hconn_connect(struct hconn *c);
void egress_hconn_events(struct hconn *c);
int egress_hconn_on_frame(struct hconn *c, const struct orch_egress_hdr *h, const uint8_t *p);
int64_t egress_task_bytes(struct egress_host *h, int64_t task);
