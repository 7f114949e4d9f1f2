/* SPDX-License-Identifier: Apache-2.0 */
/* The control socket: AF_UNIX stream, mode 0660 (group: the configured group), NDJSON
 * JSON-RPC. Each connection is authorised once by SO_PEERCRED with orchd's access rule
 * (access.h: root, or a member of the configured group). Anyone else gets one JSON-RPC
 * error (-32005) and the connection is closed; nothing else happens. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "access.h"
#include "cleanup.h"
#include "control.h"
#include "fs-util.h"
#include "log.h"

struct client {
	struct client *prev, *next;
	struct control *c;
	struct orch_rpc *rpc;
	struct orch_timer *close_timer; /* refused peers: closed soon after their answer */
	char deny_msg[256];		/* non-empty: this peer is refused */
};

struct control {
	struct orchd *d;
	int fd;
	struct orch_io *io;
	char *path;
	struct orchd_access access;
	struct client *clients;
	size_t n_clients;
	struct control_hooks hooks;
	/* control_methods, each answering a refused peer with m_denied */
	struct orch_rpc_method *denied;
};

static void client_free(struct client *cl)
{
	struct control *c = cl->c;

	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	c->n_clients--;
	if (c->hooks.client_closed)
		c->hooks.client_closed(c->d, cl->rpc);
	orch_timer_free(cl->close_timer);
	orch_rpc_set_close_cb(cl->rpc, NULL);
	orch_rpc_unref(cl->rpc);
	free(cl);
}

static void on_client_close(struct orch_rpc *rpc, int code, void *data)
{
	struct client *cl = data;

	client_free(cl);
}

static void on_client_drain(struct orch_rpc *rpc, void *data)
{
	struct client *cl = data;

	if (cl->c->hooks.client_drained)
		cl->c->hooks.client_drained(cl->c->d, rpc);
}

static void on_close_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct client *cl = data;

	orch_rpc_close(cl->rpc); /* flushes the answer; on_client_close frees cl */
}

/* Every method of a refused peer answers ORCH_RPC_DENIED and does nothing else. */
static int m_denied(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct client *cl = data;

	if (cl->close_timer)
		orch_timer_rearm(cl->close_timer, 0);
	return orch_err(err, ORCH_RPC_DENIED, "%s", cl->deny_msg);
}

static void on_listen(struct orch_loop *loop, struct orch_io *io, int lfd, uint32_t events,
		      void *data)
{
	struct control *c = data;

	for (;;) {
		struct orch_rpc_opts opts = {.max_line = 2 * 1024 * 1024, .name = "control"};
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct client *cl;
		char ids[64];
		bool denied;
		int fd, r;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				orch_logf(ORCH_LOG_WARN, "control", "accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		snprintf(ids, sizeof(ids), "uid=%u gid=%u pid=%d", (unsigned)cred.uid,
			 (unsigned)cred.gid, (int)cred.pid);
		denied = !orchd_access_allowed(&c->access, cred.uid, cred.gid);
		if (denied)
			orch_log(ORCH_LOG_WARN, "control", "client refused", "peer", ids, NULL);
		if (c->n_clients >= (size_t)c->d->cfg->scheduler.max_clients) {
			orch_log(ORCH_LOG_WARN, "control", "too many clients", "peer", ids, NULL);
			close(fd);
			continue;
		}
		cl = calloc(1, sizeof(*cl));
		if (!cl) {
			close(fd);
			continue;
		}
		if (denied) {
			orchd_access_deny_msg(&c->access, cred.uid, cl->deny_msg,
					      sizeof(cl->deny_msg));
			opts.max_line = 64 * 1024;
			opts.max_inflight = 1;
		}
		r = orch_rpc_new(c->d->loop, fd, denied ? c->denied : control_methods,
				 control_n_methods, &opts, cl, &cl->rpc);
		if (r >= 0 && denied)
			r = orch_timer_add(c->d->loop, 2000, 0, on_close_timer, cl,
					   &cl->close_timer);
		if (r < 0) {
			if (cl->rpc)
				orch_rpc_unref(cl->rpc);
			else
				close(fd);
			free(cl);
			continue;
		}
		orch_rpc_set_close_cb(cl->rpc, on_client_close);
		orch_rpc_set_drain_cb(cl->rpc, on_client_drain);
		orch_rpc_set_state(cl->rpc, ORCH_STATE_READY);
		cl->c = c;
		cl->next = c->clients;
		if (c->clients)
			c->clients->prev = cl;
		c->clients = cl;
		c->n_clients++;
		orch_log(ORCH_LOG_DEBUG, "control", "client connected", "peer", ids, NULL);
	}
}

struct orchd *control_orchd(struct orch_rpc *rpc)
{
	struct client *cl = orch_rpc_get_data(rpc);

	return cl->c->d;
}

int control_peer(struct orch_rpc *rpc, uid_t *ret_uid, gid_t *ret_gid, struct orch_error *err)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(orch_rpc_fd(rpc), SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return orch_errno(err, -errno, "SO_PEERCRED");
	*ret_uid = cred.uid;
	*ret_gid = cred.gid;
	return 0;
}

/* The socket's directory: created 0755 if missing; one that others may write to is
 * refused (they could put their own socket in orchd's place, or remove it). */
static int socket_dir(const char *path, struct orch_error *err)
{
	_cleanup_free_ char *p = strdup(path);
	struct stat st;
	char *slash;
	int r;

	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	slash = strrchr(p, '/');
	if (!slash)
		return 0;
	if (slash == p)
		slash[1] = 0;
	else
		*slash = 0;
	if ((r = orchd_mkdir(p, 0755)) < 0)
		return orch_errno(err, r, "cannot create the directory of %s", path);
	if (stat(p, &st) < 0)
		return orch_errno(err, -errno, "cannot stat %s", p);
	if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0) ||
	    (st.st_uid != 0 && st.st_uid != geteuid()))
		return orch_err(err, -EPERM,
				"the control socket's directory %s may be written by others "
				"(owner uid %u, mode %04o); use a directory of root's, e.g. "
				"/run/orch (0755)",
				p, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 0;
}

int control_new(struct orchd *d, const struct control_hooks *hooks, struct control **ret,
		struct orch_error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct control *c;
	int r;

	if (strlen(d->cfg->socket) >= sizeof(sa.sun_path))
		return orch_err(err, -ENAMETOOLONG, "socket path %s is too long (max %zu bytes)",
				d->cfg->socket, sizeof(sa.sun_path) - 1);
	c = calloc(1, sizeof(*c));
	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	c->d = d;
	c->fd = -1;
	c->hooks = *hooks;
	c->path = strdup(d->cfg->socket);
	c->denied = calloc(control_n_methods, sizeof(*c->denied));
	if (!c->path || !c->denied) {
		control_free(c);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < control_n_methods; i++)
		c->denied[i] = (struct orch_rpc_method){control_methods[i].name,
							ORCH_RPC_M_REQUEST | ORCH_RPC_M_NOTIFY, 0,
							m_denied};
	if ((r = orchd_access_init(&c->access, d->cfg->group, err)) < 0) {
		control_free(c);
		return r;
	}
	r = socket_dir(d->cfg->socket, err);
	if (r < 0) {
		control_free(c);
		return r;
	}
	strcpy(sa.sun_path, d->cfg->socket);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		r = -errno;
		control_free(c);
		return orch_errno(err, r, "socket");
	}
	(void)unlink(d->cfg->socket);
	/* Born 0660 root:root (nobody else can connect), then given to the group, and only
	 * then listening. */
	mode_t old = umask(0117);
	r = bind(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || (c->access.has_group && chown(d->cfg->socket, (uid_t)-1, c->access.gid) < 0) ||
	    listen(c->fd, 128) < 0) {
		r = -errno;
		control_free(c);
		return orch_errno(err, r, "cannot listen on %s", d->cfg->socket);
	}
	r = orch_io_add(d->loop, c->fd, EPOLLIN, on_listen, c, &c->io);
	if (r < 0) {
		control_free(c);
		return orch_errno(err, r, "watching the control socket");
	}
	*ret = c;
	return 0;
}

void control_free(struct control *c)
{
	if (!c)
		return;
	while (c->clients)
		client_free(c->clients);
	orch_io_free(c->io);
	if (c->fd >= 0) {
		close(c->fd);
		(void)unlink(c->path);
	}
	free(c->path);
	free(c->denied);
	free(c);
}

size_t control_n_clients(const struct control *c)
{
	return c->n_clients;
}
