/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's metrics and cluster for its users: the scrape endpoint (metrics-http.c on a Unix
 * socket beside the control socket, 0660 root:group with each peer checked by the control
 * socket's rule, and optionally on a loopback TCP port) and the control methods metrics
 * and nodes.list (docs/CONTROL.md). What is measured is host/core/orchd-metrics.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "access.h"
#include "backend.h"
#include "cleanup.h"
#include "control.h"
#include "metrics-config.h"
#include "metrics-http.h"
#include "orch-config.h"
#include "orchd-metrics.h"
#include "orchd.h"
#include "store-pg.h"

struct control_metrics {
	struct orchd *d;
	struct mx_http *unix_srv, *tcp_srv;
	char *socket_path;	    /* NULL: no Unix socket */
	struct orchd_access access; /* who may scrape the Unix socket (the control rule) */
};

/* The Unix socket: 0660 root:group from birth, like the control socket (control.c). */
static int listen_unix(const char *path, const struct orchd_access *a, struct orch_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	mode_t old;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return orch_err(err, -ENAMETOOLONG, "metrics socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return orch_errno(err, -errno, "socket");
	(void)unlink(path);
	old = umask(0117);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || (a->has_group && chown(path, (uid_t)-1, a->gid) < 0) || listen(fd, 16) < 0)
		return orch_errno(err, -errno, "cannot listen on %s", path);
	return TAKE_FD(fd);
}

static int listen_tcp(int64_t port, struct orch_error *err)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons((uint16_t)port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;

	if (fd < 0)
		return orch_errno(err, -errno, "socket");
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		return orch_errno(err, -errno, "cannot listen on 127.0.0.1:%lld", (long long)port);
	return TAKE_FD(fd);
}

static bool allow_peer(void *data, int fd)
{
	struct control_metrics *m = data;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return orchd_access_allowed(&m->access, cred.uid, cred.gid);
}

static char *render_cb(void *data, size_t *ret_len)
{
	struct control_metrics *m = data;

	return orchd_metrics_render(m->d, ret_len);
}

int control_metrics_new(struct orchd *d, struct control_metrics **ret, struct orch_error *err)
{
	struct control_metrics *m = calloc(1, sizeof(*m));
	int fd, r;

	if (!m)
		return orch_err(err, -ENOMEM, "out of memory");
	*ret = m;
	m->d = d;
	if (metrics_config_socket(d->cfg->metrics, d->cfg->socket, &m->socket_path) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if (m->socket_path && strcmp(m->socket_path, d->cfg->socket) == 0)
		return orch_err(err, -EINVAL,
				"metrics.socket: %s is the control socket; name another path",
				m->socket_path);
	if ((r = orchd_access_init(&m->access, d->cfg->group, err)) < 0)
		return r;
	if (m->socket_path) {
		if ((fd = listen_unix(m->socket_path, &m->access, err)) < 0)
			return fd;
		if ((r = mx_http_new(d->loop, fd, render_cb, allow_peer, m, &m->unix_srv, err)) < 0)
			return r;
	}
	if (d->cfg->metrics->tcp_port) {
		if ((fd = listen_tcp(d->cfg->metrics->tcp_port, err)) < 0)
			return fd;
		if ((r = mx_http_new(d->loop, fd, render_cb, NULL, m, &m->tcp_srv, err)) < 0)
			return r;
	}
	return 0;
}

void control_metrics_free(struct control_metrics *m)
{
	if (!m)
		return;
	mx_http_free(m->unix_srv);
	mx_http_free(m->tcp_srv);
	if (m->unix_srv && m->socket_path)
		(void)unlink(m->socket_path);
	free(m->socket_path);
	free(m);
}

int control_metrics(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	if (params && (!json_is_object(params) || json_object_size(params)))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params: expected none");
	text = orchd_metrics_render(d, &len);
	if (!text)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "cannot render the metrics");
	return orch_rpc_reply(req, json_pack("{ss%}", "text", text, len));
}

int control_nodes(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	struct orchd *d = control_orchd(rpc);
	json_t *nodes = NULL;
	int r;

	if (params && (!json_is_object(params) || json_object_size(params)))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params: expected none");
	if (store_shared(d->store)) {
		if ((r = store_nodes_json(d->store, &nodes, err)) < 0)
			return r;
	} else {
		/* one node: this orchd, with the embedded store */
		json_t *vms = json_array(), *n;
		for (size_t i = 0; i < d->n_vms; i++) {
			struct vm *vm = d->vms[i];
			int64_t busy = 0;
			for (int64_t j = 0; j < vm->n_slots; j++)
				busy += vm_slot_task(vm, j) != 0;
			json_array_append_new(vms, json_pack("{sssssIsssI}", "name", vm->cfg->name,
							     "backend", vm->ops->name, "slots",
							     (json_int_t)vm->n_slots, "state",
							     vm_state_name(vm->state), "busy",
							     (json_int_t)busy));
		}
		n = json_pack("{sssssIsIsssso}", "name", "local", "state", "up", "incarnation",
			      (json_int_t)1, "heartbeat_age_ms", (json_int_t)0, "socket",
			      d->cfg->socket, "version", ORCH_VERSION, "vms", vms);
		nodes = json_pack("[o]", n);
	}
	return orch_rpc_reply(req,
			      json_pack("{ssssso}", "store", store_kind_name(d->store), "self",
					d->store->node ? d->store->node : "local", "nodes", nodes));
}
