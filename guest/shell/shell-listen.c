/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "cleanup.h"
#include "shell-listen.h"
#include "shell.h"
#include "transport.h"

int sv_shell_addr_parse(const char *s, unsigned slot, struct sv_shell_addr *ret,
			struct orch_error *err)
{
	struct sv_shell_addr a = {0};
	if (!s)
		return orch_err(err, -EINVAL, "no listen address for agent %u's shell", slot);
	if (!strncmp(s, "unix:", 5) || !strncmp(s, "serial:", 7)) {
		const char *p = strchr(s, ':') + 1;
		a.kind = s[0] == 'u' ? SV_SHELL_UNIX : SV_SHELL_SERIAL;
		if (p[0] != '/' || strlen(p) >= sizeof(a.path))
			return orch_err(err, -EINVAL,
					"shell address '%s': expected an absolute path shorter "
					"than %zu bytes",
					s, sizeof(a.path));
		strcpy(a.path, p);
	} else if (!strcmp(s, "vsock") || !strcmp(s, "vsock:any") ||
		   !strncmp(s, "vsock:any:", 10)) {
		a.kind = SV_SHELL_VSOCK;
		a.port = SV_SHELL_VSOCK_PORT_BASE + slot;
		if (!strncmp(s, "vsock:any:", 10)) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(s + 10, &end, 10);
			if (errno || *end || end == s + 10 || v == 0 || v >= 0xFFFFFFFFul)
				return orch_err(err, -EINVAL, "shell address '%s': bad port", s);
			a.port = (uint32_t)v;
		}
	} else {
		return orch_err(err, -EINVAL,
				"shell address '%s': expected unix:/PATH, vsock:any:PORT or "
				"serial:/DEV",
				s);
	}
	*ret = a;
	return 0;
}

int sv_shell_listen(const struct sv_shell_addr *a, struct orch_error *err)
{
	if (a->kind == SV_SHELL_SERIAL) {
		int fd = open(a->path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0)
			return orch_errno(err, -errno, "cannot open virtio-serial port %s",
					  a->path);
		return fd;
	}
	int family = a->kind == SV_SHELL_UNIX ? AF_UNIX : AF_VSOCK;
	_cleanup_close_ int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot create a %s socket",
				  family == AF_UNIX ? "unix" : "vsock");
	if (a->kind == SV_SHELL_UNIX) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		strcpy(sun.sun_path, a->path);
		struct stat st;
		if (lstat(a->path, &st) == 0) {
			if (!S_ISSOCK(st.st_mode))
				return orch_err(err, -EEXIST, "%s exists and is not a socket",
						a->path);
			(void)unlink(a->path);
		}
		if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			return orch_errno(err, -errno, "cannot bind %s", a->path);
		if (chmod(a->path, 0600) < 0)
			return orch_errno(err, -errno, "cannot chmod %s", a->path);
	} else {
		struct sockaddr_vm svm = {
			.svm_family = AF_VSOCK,
			.svm_cid = VMADDR_CID_ANY,
			.svm_port = a->port,
		};
		if (bind(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0)
			return orch_errno(err, -errno, "cannot bind vsock port %u", a->port);
	}
	if (listen(fd, 8) < 0)
		return orch_errno(err, -errno, "listen");
	return TAKE_FD(fd);
}

int sv_shell_accept(int lfd, const struct sv_shell_addr *a, uint32_t allow_cid,
		    struct orch_error *err)
{
	struct sockaddr_vm svm = {0};
	socklen_t len = sizeof(svm);
	bool vsock = a->kind == SV_SHELL_VSOCK;
	int fd = accept4(lfd, vsock ? (struct sockaddr *)&svm : NULL, vsock ? &len : NULL,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		int r = -errno;
		if (r == -EAGAIN || r == -EINTR || r == -ECONNABORTED)
			return -EAGAIN;
		return orch_errno(err, r, "accept");
	}
	if (!vsock)
		return fd;
	if (svm.svm_family != AF_VSOCK || svm.svm_cid != allow_cid) {
		close(fd);
		return orch_err(err, -EPERM, "refused a shell connection from vsock cid %u port %u",
				(unsigned)svm.svm_cid, (unsigned)svm.svm_port);
	}
	/* From the host, but is it orchd? Only a privileged host process can bind a
	 * reserved port; anyone else's connection comes from a port above them. */
	if (!orch_vsock_port_reserved(svm.svm_port)) {
		close(fd);
		return orch_err(err, -EPERM,
				"refused a shell connection from vsock cid %u port %u: not a "
				"reserved port, so not orchd (debug shells go through orchd: "
				"orch shell)",
				(unsigned)svm.svm_cid, (unsigned)svm.svm_port);
	}
	return fd;
}

int sv_shell_serial_connected(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 0) < 0)
		return -errno;
	if (p.revents & (POLLERR | POLLNVAL))
		return -EIO;
	return (p.revents & POLLHUP) ? 0 : 1;
}
