/* SPDX-License-Identifier: Apache-2.0 */
/* Transports: addresses, dial, listen, accept (transport.h). The hybrid-vsock handshake
 * is in transport-hvsock.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "cleanup.h"
#include "transport-internal.h"
#include "transport.h"

static int parse_u32(const char *s, uint32_t max, uint32_t *ret)
{
	char *end;
	unsigned long long v;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int set_path(struct orch_addr *a, const char *p, const char *s, struct orch_error *err)
{
	size_t n = strlen(p);

	if (n == 0)
		return orch_err(err, -EINVAL, "address '%.200s': empty path", s);
	if (n >= sizeof(a->path))
		return orch_err(err, -ENAMETOOLONG, "address '%.200s': path longer than %zu bytes",
				s, sizeof(a->path) - 1);
	memcpy(a->path, p, n + 1);
	return 0;
}

int orch_addr_parse(const char *s, struct orch_addr *ret, struct orch_error *err)
{
	struct orch_addr a = {.fd = -1};
	uint32_t v;
	int r;

	if (strncmp(s, "fd:", 3) == 0) {
		a.kind = ORCH_TRANSPORT_FD;
		if (parse_u32(s + 3, INT_MAX, &v) < 0)
			return orch_err(err, -EINVAL, "address '%.200s': fd must be a number", s);
		a.fd = (int)v;
	} else if (strncmp(s, "unix:", 5) == 0) {
		a.kind = ORCH_TRANSPORT_UNIX;
		if ((r = set_path(&a, s + 5, s, err)) < 0)
			return r;
	} else if (strncmp(s, "serial:", 7) == 0) {
		a.kind = ORCH_TRANSPORT_SERIAL;
		if ((r = set_path(&a, s + 7, s, err)) < 0)
			return r;
	} else if (strncmp(s, "vsock:", 6) == 0) {
		char cid[16];
		const char *colon = strchr(s + 6, ':');
		a.kind = ORCH_TRANSPORT_VSOCK;
		if (!colon || (size_t)(colon - (s + 6)) >= sizeof(cid))
			return orch_err(err, -EINVAL, "address '%.200s': expected vsock:CID:PORT",
					s);
		memcpy(cid, s + 6, (size_t)(colon - (s + 6)));
		cid[colon - (s + 6)] = '\0';
		if (strcmp(cid, "any") == 0)
			a.cid = ORCH_VSOCK_CID_ANY;
		else if (strcmp(cid, "host") == 0)
			a.cid = ORCH_VSOCK_CID_HOST;
		else if (parse_u32(cid, UINT32_MAX - 1, &a.cid) < 0)
			return orch_err(err, -EINVAL,
					"address '%.200s': CID must be a number, 'host' or 'any'",
					s);
		if (parse_u32(colon + 1, UINT32_MAX - 1, &a.port) < 0)
			return orch_err(err, -EINVAL, "address '%.200s': port must be a number", s);
	} else if (strncmp(s, "hvsock:", 7) == 0) {
		char path[sizeof(a.path)];
		const char *colon = strrchr(s + 7, ':');
		a.kind = ORCH_TRANSPORT_HVSOCK;
		if (!colon)
			return orch_err(err, -EINVAL,
					"address '%.200s': expected hvsock:/path:PORT", s);
		if ((size_t)(colon - (s + 7)) >= sizeof(path))
			return orch_err(err, -ENAMETOOLONG,
					"address '%.200s': path longer than %zu bytes", s,
					sizeof(path) - 1);
		memcpy(path, s + 7, (size_t)(colon - (s + 7)));
		path[colon - (s + 7)] = '\0';
		if ((r = set_path(&a, path, s, err)) < 0)
			return r;
		if (parse_u32(colon + 1, UINT32_MAX - 1, &a.port) < 0)
			return orch_err(err, -EINVAL, "address '%.200s': port must be a number", s);
	} else {
		return orch_err(err, -EINVAL,
				"address '%.200s': unknown transport (fd:, unix:, vsock:, hvsock:, "
				"serial:)",
				s);
	}
	*ret = a;
	return 0;
}

int orch_addr_format(const struct orch_addr *a, char *buf, size_t len)
{
	int n;

	switch (a->kind) {
	case ORCH_TRANSPORT_FD:
		n = snprintf(buf, len, "fd:%d", a->fd);
		break;
	case ORCH_TRANSPORT_UNIX:
		n = snprintf(buf, len, "unix:%s", a->path);
		break;
	case ORCH_TRANSPORT_SERIAL:
		n = snprintf(buf, len, "serial:%s", a->path);
		break;
	case ORCH_TRANSPORT_HVSOCK:
		n = snprintf(buf, len, "hvsock:%s:%u", a->path, a->port);
		break;
	case ORCH_TRANSPORT_VSOCK:
		if (a->cid == ORCH_VSOCK_CID_ANY)
			n = snprintf(buf, len, "vsock:any:%u", a->port);
		else
			n = snprintf(buf, len, "vsock:%u:%u", a->cid, a->port);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOBUFS;
	return n;
}

/* ---- helpers ---- */

int transport_unix_sockaddr(const char *path, struct sockaddr_un *sa, socklen_t *ret_len)
{
	size_t n = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@') /* abstract namespace */
		sa->sun_path[0] = '\0';
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '@'));
	return 0;
}

int transport_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

/* Waits for fd to become ready for events until deadline (orch_now_ms-based, 0: none). */
int transport_wait(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int t = -1;
		if (deadline) {
			uint64_t now = orch_now_ms();
			if (now >= deadline)
				return -ETIMEDOUT;
			t = (int)(deadline - now);
		}
		int n = poll(&p, 1, t);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

/* Non-blocking connect finished within the deadline. */
int transport_connect(int fd, const struct sockaddr *sa, socklen_t len, uint64_t deadline)
{
	int r, e = 0;
	socklen_t el = sizeof(e);

	for (;;) {
		if (connect(fd, sa, len) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) { /* AF_UNIX backlog full: retry shortly */
			if (deadline && orch_now_ms() >= deadline)
				return -ETIMEDOUT;
			poll(NULL, 0, 10);
			continue;
		}
		if (errno != EINPROGRESS)
			return -errno;
		break;
	}
	if ((r = transport_wait(fd, POLLOUT, deadline)) < 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		return -errno;
	return e ? -e : 0;
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms > 0 ? orch_now_ms() + (uint64_t)timeout_ms : 0;
}

static int vsock_socket(struct orch_error *err)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return orch_errno(err, -errno,
				  "cannot create an AF_VSOCK socket (host: load vhost_vsock, "
				  "/dev/vhost-vsock; guest: virtio vsock transport; or use "
				  "transport serial)");
	return fd;
}

int orch_vsock_available(void)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* ---- dial ---- */

int orch_transport_dial(const struct orch_addr *a, int timeout_ms, struct orch_error *err)
{
	uint64_t deadline = deadline_of(timeout_ms);
	_cleanup_close_ int fd = -1;
	char name[160];
	int r;

	orch_addr_format(a, name, sizeof(name));
	switch (a->kind) {
	case ORCH_TRANSPORT_FD: {
		int fl = fcntl(a->fd, F_GETFD);
		if (fl < 0 || fcntl(a->fd, F_SETFD, fl | FD_CLOEXEC) < 0 ||
		    transport_set_nonblock(a->fd, true) < 0)
			return orch_errno(err, -errno, "%s: not an open fd", name);
		return a->fd;
	}
	case ORCH_TRANSPORT_UNIX:
	case ORCH_TRANSPORT_HVSOCK: {
		struct sockaddr_un sa;
		socklen_t len;
		if ((r = transport_unix_sockaddr(a->path, &sa, &len)) < 0)
			return orch_err(err, r, "%s: path too long", name);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return orch_errno(err, -errno, "%s: socket", name);
		if ((r = transport_connect(fd, (struct sockaddr *)&sa, len, deadline)) < 0)
			return orch_errno(err, r, "cannot connect to %s", name);
		if (a->kind == ORCH_TRANSPORT_HVSOCK &&
		    (r = transport_hvsock_handshake(fd, a->port, deadline, err)) < 0)
			return orch_err_prefix(err, "%s", name);
		return TAKE_FD(fd);
	}
	case ORCH_TRANSPORT_VSOCK: {
		struct sockaddr_vm sa = {
			.svm_family = AF_VSOCK, .svm_cid = a->cid, .svm_port = a->port};
		if (a->cid == ORCH_VSOCK_CID_ANY)
			return orch_err(err, -EINVAL, "%s: cannot dial CID 'any'", name);
		if ((fd = vsock_socket(err)) < 0)
			return fd;
		if ((r = transport_connect(fd, (struct sockaddr *)&sa, sizeof(sa), deadline)) < 0)
			return orch_errno(err, r, "cannot connect to %s", name);
		return TAKE_FD(fd);
	}
	case ORCH_TRANSPORT_SERIAL:
		fd = open(a->path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return orch_errno(err, -errno,
					  "cannot open %s (is the virtio-serial port configured "
					  "in the VM definition?)",
					  a->path);
		if (isatty(fd)) {
			/* A tty stand-in (tests, serial consoles): raw bytes, no echo. */
			struct termios t;
			if (tcgetattr(fd, &t) == 0) {
				cfmakeraw(&t);
				tcsetattr(fd, TCSANOW, &t);
			}
		}
		return TAKE_FD(fd);
	}
	return orch_err(err, -EINVAL, "unknown transport kind %d", (int)a->kind);
}

/* ---- listen / accept ---- */

static int unix_listen(const struct orch_addr *a, mode_t mode, struct orch_error *err)
{
	_cleanup_close_ int fd = -1;
	struct sockaddr_un sa;
	socklen_t len;
	struct stat st;
	int r;

	if ((r = transport_unix_sockaddr(a->path, &sa, &len)) < 0)
		return orch_err(err, r, "unix:%s: path too long", a->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return orch_errno(err, -errno, "unix:%s: socket", a->path);
	if (a->path[0] != '@' && lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return orch_err(err, -EEXIST,
					"%s exists and is not a socket; remove it or choose "
					"another path",
					a->path);
		if (unlink(a->path) < 0 && errno != ENOENT)
			return orch_errno(err, -errno, "cannot remove stale socket %s", a->path);
	}
	if (bind(fd, (struct sockaddr *)&sa, len) < 0)
		return orch_errno(err, -errno, "cannot bind %s", a->path);
	if (a->path[0] != '@' && mode && chmod(a->path, mode) < 0)
		return orch_errno(err, -errno, "cannot chmod %s", a->path);
	if (listen(fd, 64) < 0)
		return orch_errno(err, -errno, "cannot listen on %s", a->path);
	return TAKE_FD(fd);
}

int orch_transport_listen(const struct orch_addr *a, mode_t mode, struct orch_error *err)
{
	switch (a->kind) {
	case ORCH_TRANSPORT_UNIX:
		return unix_listen(a, mode, err);
	case ORCH_TRANSPORT_VSOCK: {
		struct sockaddr_vm sa = {.svm_family = AF_VSOCK,
					 .svm_cid = a->cid == ORCH_VSOCK_CID_ANY ? VMADDR_CID_ANY
										 : a->cid,
					 .svm_port = a->port};
		_cleanup_close_ int fd = vsock_socket(err);
		if (fd < 0)
			return fd;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return orch_errno(err, -errno, "cannot bind vsock port %u", a->port);
		if (listen(fd, 64) < 0)
			return orch_errno(err, -errno, "cannot listen on vsock port %u", a->port);
		return TAKE_FD(fd);
	}
	case ORCH_TRANSPORT_FD:
	case ORCH_TRANSPORT_HVSOCK:
	case ORCH_TRANSPORT_SERIAL:
		break;
	}
	return orch_err(err, -EOPNOTSUPP, "listening is only supported on unix: and vsock:");
}

int orch_transport_accept(int listen_fd, enum orch_transport_kind kind, uint32_t want_cid,
			  struct orch_vsock_peer *ret_peer, struct orch_error *err)
{
	struct sockaddr_vm vm;
	socklen_t len = sizeof(vm);
	bool vsock = kind == ORCH_TRANSPORT_VSOCK;
	int fd;

	if (ret_peer)
		*ret_peer = (struct orch_vsock_peer){ORCH_VSOCK_CID_ANY, 0};
	for (;;) {
		len = sizeof(vm);
		fd = accept4(listen_fd, vsock ? (struct sockaddr *)&vm : NULL, vsock ? &len : NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0)
			break;
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN)
			return orch_err(err, -EAGAIN, "no pending connection");
		return orch_errno(err, -errno, "accept");
	}
	if (!vsock)
		return fd;
	if (len < sizeof(vm) || vm.svm_family != AF_VSOCK) {
		close(fd);
		return orch_err(err, -EPROTO, "accept: not a vsock peer");
	}
	if (ret_peer)
		*ret_peer = (struct orch_vsock_peer){vm.svm_cid, vm.svm_port};
	if (want_cid != ORCH_VSOCK_CID_ANY && vm.svm_cid != want_cid) {
		close(fd);
		return orch_err(err, -EPERM, "refused vsock peer CID %u port %u (expected CID %u)",
				vm.svm_cid, vm.svm_port, want_cid);
	}
	return fd;
}

int orch_vsock_connect_reserved(uint32_t cid, uint32_t port, uint32_t *ret_port,
				struct orch_error *err)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	_cleanup_close_ int fd = vsock_socket(err);
	uint32_t p;

	if (fd < 0)
		return fd;
	if (cid == ORCH_VSOCK_CID_ANY)
		return orch_err(err, -EINVAL, "vsock: cannot connect to CID 'any'");
	for (p = ORCH_VSOCK_LAST_RESERVED_PORT; p >= ORCH_VSOCK_SOURCE_PORT_MIN; p--) {
		struct sockaddr_vm local = {
			.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = p};
		if (bind(fd, (struct sockaddr *)&local, sizeof(local)) == 0)
			break;
		if (errno == EACCES || errno == EPERM)
			return orch_errno(err, -errno,
					  "vsock: binding the reserved local port %u needs "
					  "CAP_NET_BIND_SERVICE (run as root)",
					  p);
		if (errno != EADDRINUSE)
			return orch_errno(err, -errno, "vsock: cannot bind local port %u", p);
	}
	if (p < ORCH_VSOCK_SOURCE_PORT_MIN)
		return orch_err(err, -EADDRINUSE,
				"vsock: every reserved local port %u..%u is in use",
				ORCH_VSOCK_SOURCE_PORT_MIN, ORCH_VSOCK_LAST_RESERVED_PORT);
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS)
			break;
		if (errno != EINTR)
			return orch_errno(err, -errno, "cannot connect to vsock:%u:%u", cid, port);
	}
	if (ret_port)
		*ret_port = p;
	return TAKE_FD(fd);
}

int orch_transport_connect_result(int fd)
{
	int e = 0;
	socklen_t el = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
		return -errno;
	return e ? -e : 0;
}

int orch_transport_peercred(int fd, pid_t *ret_pid, uid_t *ret_uid, gid_t *ret_gid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (ret_pid)
		*ret_pid = uc.pid;
	if (ret_uid)
		*ret_uid = uc.uid;
	if (ret_gid)
		*ret_gid = uc.gid;
	return 0;
}
