/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "lanes.h"

#define ACCEPT_BATCH 16 /* connections taken per wake-up, so one lane cannot hog the loop */

struct owner {
	uint32_t cid;
	void *owner;
};

struct lv_lanes;

struct listener {
	struct lv_lanes *l;
	enum lv_lane lane;
	int fd;
	struct orch_io *io;
};

struct lv_lanes {
	struct lv_lanes_opts o;
	struct listener ls[LV_LANE_MAX];
	struct owner *owners;
	size_t n_owners, cap_owners;
};

const char *lv_lane_name(enum lv_lane lane)
{
	switch (lane) {
	case LV_LANE_CONTROL:
		return "control";
	case LV_LANE_LLM:
		return "llm";
	case LV_LANE_EGRESS:
		return "egress";
	case LV_LANE_MAX:
		break;
	}
	return "?";
}

static void refused(struct lv_lanes *l, enum lv_lane lane, const struct orch_vsock_peer *peer,
		    const char *why)
{
	if (l->o.on_refused)
		l->o.on_refused(lane, peer, why, l->o.data);
}

static void on_accept(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct listener *ls = data;
	struct lv_lanes *l = ls->l;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct orch_error err = {0};
		struct orch_vsock_peer peer;
		int c = orch_transport_accept(fd, ORCH_TRANSPORT_VSOCK, ORCH_VSOCK_CID_ANY, &peer,
					      &err);
		if (c == -EAGAIN)
			return;
		if (c < 0) {
			refused(l, ls->lane, &peer, err.msg);
			if (c == -EPROTO || c == -EPERM)
				continue;
			return; /* EMFILE and the like: the next wake-up retries */
		}
		void *owner = lv_lanes_owner(l, peer.cid);
		if (!owner) {
			close(c);
			refused(l, ls->lane, &peer, "no VM of this orchd has that CID");
			continue;
		}
		if (l->o.on_conn(owner, ls->lane, c, &peer, &err) < 0)
			refused(l, ls->lane, &peer, err.msg[0] ? err.msg : "refused");
	}
}

void lv_lanes_free(struct lv_lanes *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < LV_LANE_MAX; i++) {
		orch_io_free(l->ls[i].io);
		if (l->ls[i].fd >= 0)
			close(l->ls[i].fd);
	}
	free(l->owners);
	free(l);
}

static int listen_lane(struct orch_loop *loop, struct lv_lanes *l, enum lv_lane lane,
		       struct orch_error *err)
{
	const char *name = l->o.port_name[lane] ? l->o.port_name[lane] : "port";
	uint32_t port = l->o.port[lane];
	struct orch_addr a = {.kind = ORCH_TRANSPORT_VSOCK,
			      .cid = l->o.listen_cid ? l->o.listen_cid : ORCH_VSOCK_CID_ANY,
			      .port = port};
	struct listener *ls = &l->ls[lane];

	if (port == 0 || !orch_vsock_port_reserved(port))
		return orch_err(err, -EINVAL,
				"%s %u: the %s lane needs a reserved vsock port (1..%u), so that "
				"no unprivileged host user can listen on it",
				name, port, lv_lane_name(lane), ORCH_VSOCK_LAST_RESERVED_PORT);
	int fd = orch_transport_listen(&a, 0, err);
	if (fd == -EADDRINUSE)
		return orch_err(err, fd,
				"vsock port %u (%s, the guests' %s lane) is taken by another "
				"program (another orchd?); stop it or choose another port",
				port, name, lv_lane_name(lane));
	if (fd == -EACCES || fd == -EPERM)
		return orch_err(err, fd,
				"vsock port %u (%s): binding a reserved port needs "
				"CAP_NET_BIND_SERVICE; run orchd as root",
				port, name);
	if (fd < 0)
		return orch_err_prefix(err, "%s", name);
	ls->l = l;
	ls->lane = lane;
	ls->fd = fd;
	int r = orch_io_add(loop, fd, EPOLLIN, on_accept, ls, &ls->io);
	if (r < 0)
		return orch_errno(err, r, "watching vsock port %u", port);
	return 0;
}

int lv_lanes_new(struct orch_loop *loop, const struct lv_lanes_opts *o, struct lv_lanes **ret,
		 struct orch_error *err)
{
	if (!o->on_conn)
		return orch_err(err, -EINVAL, "vsock lanes: no connection callback");
	struct lv_lanes *l = calloc(1, sizeof(*l));
	if (!l)
		return orch_err(err, -ENOMEM, "out of memory");
	l->o = *o;
	for (size_t i = 0; i < LV_LANE_MAX; i++)
		l->ls[i].fd = -1;
	for (size_t i = 0; i < LV_LANE_MAX; i++) {
		if (!o->port[i])
			continue;
		for (size_t j = 0; j < i; j++)
			if (o->port[j] == o->port[i]) {
				lv_lanes_free(l);
				return orch_err(err, -EINVAL,
						"vsock lanes %s and %s share port %u; each needs "
						"its own",
						lv_lane_name((enum lv_lane)j),
						lv_lane_name((enum lv_lane)i), o->port[i]);
			}
		int r = listen_lane(loop, l, (enum lv_lane)i, err);
		if (r < 0) {
			lv_lanes_free(l);
			return r;
		}
	}
	*ret = l;
	return 0;
}

void *lv_lanes_owner(const struct lv_lanes *l, uint32_t cid)
{
	for (size_t i = 0; i < l->n_owners; i++)
		if (l->owners[i].cid == cid)
			return l->owners[i].owner;
	return NULL;
}

int lv_lanes_register(struct lv_lanes *l, uint32_t cid, void *owner)
{
	void *cur = lv_lanes_owner(l, cid);
	if (cur)
		return cur == owner ? 0 : -EEXIST;
	if (l->n_owners == l->cap_owners) {
		size_t cap = l->cap_owners ? 2 * l->cap_owners : 8;
		struct owner *n = realloc(l->owners, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->owners = n;
		l->cap_owners = cap;
	}
	l->owners[l->n_owners++] = (struct owner){cid, owner};
	return 0;
}

void lv_lanes_unregister(struct lv_lanes *l, uint32_t cid)
{
	for (size_t i = 0; i < l->n_owners; i++)
		if (l->owners[i].cid == cid) {
			l->owners[i] = l->owners[--l->n_owners];
			return;
		}
}

bool lv_lanes_serves(const struct lv_lanes *l, enum lv_lane lane)
{
	return lane < LV_LANE_MAX && l->ls[lane].fd >= 0;
}
