/* SPDX-License-Identifier: Apache-2.0 */
/* Debug shells through orchd (shell-relay.h). A session: the client (a user's socat, on
 * the relay's socket) and the backend (the supervisor's shell endpoint). Bytes move in
 * fixed buffers; a side is read only while the buffer towards the other has room, and
 * written only while it holds bytes, so both directions have backpressure. */
#include <errno.h>
#include <limits.h>
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
#include "fs-util.h"
#include "log.h"
#include "orchd.h"
#include "shell-relay.h"

#define RELAY_BUF (16 * 1024)
#define RELAY_CONNECT_TIMEOUT_MS 10000

struct listener {
	struct shell_relay *r;
	struct vm *vm;
	unsigned slot;
	int fd;
	struct orch_io *io;
	char path[108];
};

struct session {
	struct session *prev, *next;
	struct shell_relay *r;
	struct listener *ls;
	int cfd, bfd; /* client, backend */
	struct orch_io *cio, *bio;
	struct orch_timer *connect_timer;
	bool connecting;
	bool c_eof;  /* the client sent EOF (half-close): passed on once c2b is empty */
	bool b_shut; /* ... which has happened */
	bool b_eof;  /* the backend ended: the session ends once b2c is delivered */
	char peer[80];
	char backend[160];
	uint64_t opened_ms;
	uint64_t bytes_in, bytes_out; /* client -> shell, shell -> client */
	char c2b[RELAY_BUF];
	size_t c2b_len;
	char b2c[RELAY_BUF];
	size_t b2c_len;
};

struct shell_relay {
	struct orchd *d;
	struct orchd_access access;
	char *dir;
	struct listener *ls;
	size_t n_ls;
	struct session *sessions;
	size_t n_sessions;
};

static void audit(struct session *s, const char *msg, const char *k, const char *v)
{
	char slot[16];
	snprintf(slot, sizeof(slot), "%u", s->ls->slot);
	orch_log(ORCH_LOG_WARN, "shell", msg, "vm", s->ls->vm->cfg->name, "agent", slot, "peer",
		 s->peer, k, v, NULL);
}

static void session_free(struct session *s, const char *why)
{
	struct shell_relay *r = s->r;
	char what[160];

	if (!s->connecting || s->bio) {
		snprintf(what, sizeof(what), "%s; %llu bytes in, %llu out, %llu ms", why,
			 (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
			 (unsigned long long)(orch_now_ms() - s->opened_ms));
		audit(s, s->connecting ? "debug shell failed" : "debug shell closed", "why", what);
	}
	orch_io_free(s->cio);
	orch_io_free(s->bio);
	orch_timer_free(s->connect_timer);
	if (s->cfd >= 0)
		close(s->cfd);
	if (s->bfd >= 0)
		close(s->bfd);
	if (s->prev)
		s->prev->next = s->next;
	else
		r->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	r->n_sessions--;
	free(s);
}

/* Best effort: "orch: <msg>" to a client that is about to be closed. */
static void tell(int fd, const char *msg)
{
	char line[ORCH_ERROR_MSG_MAX + 64];
	int n = snprintf(line, sizeof(line), "orch: %s\r\n", msg);
	if (n > 0) {
		ssize_t w =
			write(fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
		(void)w;
	}
}

/* Reads from fd into buf while there is room. Returns 1 on EOF, -errno on an error, 0
 * otherwise. */
static int fill(int fd, char *buf, size_t *len, uint64_t *count)
{
	while (*len < RELAY_BUF) {
		ssize_t n = read(fd, buf + *len, RELAY_BUF - *len);
		if (n > 0) {
			*len += (size_t)n;
			*count += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN ? 0 : -errno;
	}
	return 0;
}

/* Writes what buf holds to fd as far as it takes it. 0, or -errno. */
static int drain(int fd, char *buf, size_t *len)
{
	while (*len > 0) {
		ssize_t n = send(fd, buf, *len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, buf, *len);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		memmove(buf, buf + n, *len - (size_t)n);
		*len -= (size_t)n;
	}
	return 0;
}

/* Recomputes what each side waits for; ends the session when it is over. Returns false
 * when the session is gone. */
static bool update(struct session *s)
{
	if (s->c_eof && !s->b_shut && s->c2b_len == 0 && !s->connecting && s->bfd >= 0) {
		shutdown(s->bfd, SHUT_WR); /* the shell sees the end of its input */
		s->b_shut = true;
	}
	if (s->b_eof && s->b2c_len == 0) {
		session_free(s, "the shell ended");
		return false;
	}
	uint32_t ev = s->b2c_len ? EPOLLOUT : 0;
	if (!s->c_eof && s->c2b_len < RELAY_BUF)
		ev |= EPOLLIN;
	orch_io_set_events(s->cio, ev);
	if (s->bio) {
		ev = s->connecting || s->c2b_len ? EPOLLOUT : 0;
		if (!s->connecting && s->b2c_len < RELAY_BUF)
			ev |= EPOLLIN;
		orch_io_set_events(s->bio, ev);
	}
	return true;
}

static void on_client(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct session *s = data;
	int r;

	if ((events & EPOLLOUT) && (r = drain(fd, s->b2c, &s->b2c_len)) < 0) {
		session_free(s, "the client went away");
		return;
	}
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !s->c_eof) {
		r = fill(fd, s->c2b, &s->c2b_len, &s->bytes_in);
		if (r < 0) {
			session_free(s, "the client went away");
			return;
		}
		s->c_eof = r == 1;
	}
	/* Hung up both ways (or an error): nobody is left to read the shell's output. */
	if (events & (EPOLLHUP | EPOLLERR)) {
		session_free(s, "the client disconnected");
		return;
	}
	if (!s->connecting && s->c2b_len && drain(s->bfd, s->c2b, &s->c2b_len) < 0) {
		session_free(s, "the shell's channel failed");
		return;
	}
	update(s);
}

static void backend_ended(struct session *s)
{
	s->b_eof = true;
	orch_io_free(s->bio);
	s->bio = NULL;
	close(s->bfd);
	s->bfd = -1;
}

/* The backend's connect finished: false when it failed (the session is gone). */
static bool connected(struct session *s)
{
	int r = orch_transport_connect_result(s->bfd);
	if (r < 0) {
		char why[ORCH_ERROR_MSG_MAX];
		snprintf(why, sizeof(why), "cannot connect to %s: %s", s->backend, strerror(-r));
		tell(s->cfd, why);
		session_free(s, why);
		return false;
	}
	s->connecting = false;
	orch_timer_free(s->connect_timer);
	s->connect_timer = NULL;
	audit(s, "debug shell opened", "backend", s->backend);
	return true;
}

static void on_backend(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		       void *data)
{
	struct session *s = data;
	int r;

	if (s->connecting) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (!connected(s))
			return;
	}
	if ((events & EPOLLOUT) && drain(fd, s->c2b, &s->c2b_len) < 0) {
		session_free(s, "the shell's channel failed");
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		r = fill(fd, s->b2c, &s->b2c_len, &s->bytes_out);
		/* An end, or a hang-up with the buffer full: what is unread is dropped, the
		 * rest still reaches the client. */
		if (r != 0 || (events & (EPOLLHUP | EPOLLERR)))
			backend_ended(s);
	}
	if (s->b2c_len && drain(s->cfd, s->b2c, &s->b2c_len) < 0) {
		session_free(s, "the client went away");
		return;
	}
	update(s);
}

static void on_connect_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct session *s = data;
	char why[256];
	snprintf(why, sizeof(why), "no answer from %s within %d ms", s->backend,
		 RELAY_CONNECT_TIMEOUT_MS);
	tell(s->cfd, why);
	session_free(s, why);
}

/* Starts connecting to the backend's endpoint; the fd may still be connecting. */
static int backend_dial(const struct orch_addr *a, struct orch_error *err)
{
	if (a->kind == ORCH_TRANSPORT_VSOCK)
		return orch_vsock_connect_reserved(a->cid, a->port, NULL, err);
	if (a->kind != ORCH_TRANSPORT_UNIX)
		return orch_err(err, -EINVAL, "unsupported shell endpoint");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(a->path) >= sizeof(sa.sun_path))
		return orch_err(err, -ENAMETOOLONG, "%s: path too long", a->path);
	strcpy(sa.sun_path, a->path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return orch_errno(err, -errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
		return orch_errno(err, errno == EAGAIN ? -EBUSY : -errno, "cannot connect to %s",
				  a->path);
	return TAKE_FD(fd);
}

static void session_start(struct listener *ls, int cfd, const struct ucred *cred)
{
	struct shell_relay *r = ls->r;
	struct vm *vm = ls->vm;
	struct orch_error err = {0};
	struct orch_addr a;
	unsigned in_slot = 0;

	for (struct session *o = r->sessions; o; o = o->next)
		in_slot += o->ls == ls;
	struct session *s = calloc(1, sizeof(*s));
	if (!s) {
		close(cfd);
		return;
	}
	s->r = r;
	s->ls = ls;
	s->cfd = cfd;
	s->bfd = -1;
	s->connecting = true;
	s->opened_ms = orch_now_ms();
	snprintf(s->peer, sizeof(s->peer), "uid=%u gid=%u pid=%d", (unsigned)cred->uid,
		 (unsigned)cred->gid, (int)cred->pid);
	s->next = r->sessions;
	if (r->sessions)
		r->sessions->prev = s;
	r->sessions = s;
	r->n_sessions++;

	const char *why = NULL;
	char deny[256];
	if (!orchd_access_allowed(&r->access, cred->uid, cred->gid)) {
		orchd_access_deny_msg(&r->access, cred->uid, deny, sizeof(deny));
		why = deny;
	} else if (in_slot >= SHELL_RELAY_MAX_PER_SLOT) {
		why = "too many debug shells for this agent";
	} else if (r->n_sessions > SHELL_RELAY_MAX_SESSIONS) {
		why = "too many debug shells";
	} else if (vm->ops->shell_endpoint(vm, ls->slot, &a, &err) < 0) {
		snprintf(deny, sizeof(deny), "VM %s (%s) has no debug shell now: %.160s",
			 vm->cfg->name, vm_state_name(vm->state), err.msg);
		why = deny;
	}
	if (why) {
		audit(s, "debug shell refused", "why", why);
		tell(cfd, why);
		session_free(s, why);
		return;
	}
	orch_addr_format(&a, s->backend, sizeof(s->backend));
	s->bfd = backend_dial(&a, &err);
	if (s->bfd < 0) {
		audit(s, "debug shell failed", "why", err.msg);
		tell(cfd, err.msg);
		session_free(s, err.msg);
		return;
	}
	if (orch_io_add(r->d->loop, cfd, 0, on_client, s, &s->cio) < 0 ||
	    orch_io_add(r->d->loop, s->bfd, EPOLLOUT, on_backend, s, &s->bio) < 0 ||
	    orch_timer_add(r->d->loop, RELAY_CONNECT_TIMEOUT_MS, 0, on_connect_timeout, s,
			   &s->connect_timer) < 0) {
		session_free(s, "out of resources");
		return;
	}
	update(s);
}

static void on_listen(struct orch_loop *loop, struct orch_io *io, int lfd, uint32_t events,
		      void *data)
{
	struct listener *ls = data;

	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				orch_logf(ORCH_LOG_WARN, "shell", "accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			close(fd);
			continue;
		}
		session_start(ls, fd, &cred);
	}
}

static int listen_slot(struct shell_relay *r, struct listener *ls, struct orch_error *err)
{
	struct orch_addr a = {.kind = ORCH_TRANSPORT_UNIX};
	memcpy(a.path, ls->path, sizeof(a.path));
	int fd = orch_transport_listen(&a, 0660, err);
	if (fd < 0)
		return fd;
	ls->fd = fd;
	if (chown(ls->path, 0, orchd_access_file_gid(&r->access)) < 0)
		return orch_errno(err, -errno, "cannot chown %s", ls->path);
	int rc = orch_io_add(r->d->loop, fd, EPOLLIN, on_listen, ls, &ls->io);
	if (rc < 0)
		return orch_errno(err, rc, "watching %s", ls->path);
	return 0;
}

int shell_relay_new(struct orchd *d, struct shell_relay **ret, struct orch_error *err)
{
	struct shell_relay *r = calloc(1, sizeof(*r));
	size_t n = 0;
	int rc;

	if (!r)
		return orch_err(err, -ENOMEM, "out of memory");
	r->d = d;
	*ret = r; /* the caller frees it on failure too */
	if ((rc = orchd_access_init(&r->access, d->cfg->group, err)) < 0)
		return rc;
	gid_t gid = orchd_access_file_gid(&r->access);
	mode_t mode = r->access.has_group ? 0750 : 0700;
	if (asprintf(&r->dir, "%s/shell", d->cfg->state_dir) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((rc = orchd_dir_private(r->dir, 0, gid, mode)) < 0)
		return orch_errno(err, rc, "cannot make %s", r->dir);
	/* Not a pool's VMs (host/pool/): they come and go; the relay's listeners are made
	 * once, for the config's VMs. */
	for (size_t i = 0; i < d->n_vms; i++)
		if (d->vms[i]->ops->shell_endpoint && !d->vms[i]->owner)
			n += (size_t)d->vms[i]->n_slots;
	if (!(r->ls = calloc(n ? n : 1, sizeof(*r->ls))))
		return orch_err(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < d->n_vms; i++) {
		struct vm *vm = d->vms[i];
		char dir[PATH_MAX];
		if (!vm->ops->shell_endpoint || vm->owner)
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", r->dir, vm->cfg->name);
		if ((rc = orchd_dir_private(dir, 0, gid, mode)) < 0)
			return orch_errno(err, rc, "cannot make %s", dir);
		for (int64_t j = 0; j < vm->n_slots; j++) {
			struct listener *ls = &r->ls[r->n_ls];
			*ls = (struct listener){.r = r, .vm = vm, .slot = (unsigned)j, .fd = -1};
			if ((size_t)snprintf(ls->path, sizeof(ls->path), "%s/agent-%u.sock", dir,
					     ls->slot) >= sizeof(ls->path))
				return orch_err(err, -ENAMETOOLONG,
						"%s/agent-%u.sock: longer than a unix socket path "
						"may be (107 bytes); choose a shorter state_dir",
						dir, ls->slot);
			r->n_ls++;
			if ((rc = listen_slot(r, ls, err)) < 0)
				return rc;
		}
	}
	return 0;
}

void shell_relay_free(struct shell_relay *r)
{
	if (!r)
		return;
	while (r->sessions)
		session_free(r->sessions, "orchd is stopping");
	for (size_t i = 0; i < r->n_ls; i++) {
		orch_io_free(r->ls[i].io);
		if (r->ls[i].fd >= 0) {
			close(r->ls[i].fd);
			(void)unlink(r->ls[i].path);
		}
	}
	free(r->ls);
	free(r->dir);
	free(r);
}

void shell_relay_describe(const struct shell_relay *r, const struct vm *vm, json_t *obj)
{
	json_t *a = json_array();
	char addr[sizeof(r->ls->path) + 8];

	for (size_t i = 0; i < r->n_ls; i++)
		if (r->ls[i].vm == vm) {
			snprintf(addr, sizeof(addr), "unix:%s", r->ls[i].path);
			json_array_append_new(a, json_string(addr));
		}
	json_object_set_new(obj, "shell", a);
}

static void vm_json(const struct vm *vm, json_t *obj)
{
	if (vm->d->shells)
		shell_relay_describe(vm->d->shells, vm, obj);
}

const struct orchd_service orchd_shell_service = {
	.name = "shells",
	.vm_json = vm_json,
};

size_t shell_relay_sessions(const struct shell_relay *r)
{
	return r ? r->n_sessions : 0;
}
