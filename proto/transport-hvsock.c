/* SPDX-License-Identifier: Apache-2.0 */
/* The hybrid vsock handshake of Firecracker and Cloud Hypervisor: the host-side AF_UNIX
 * socket of the VM's vsock device accepts "CONNECT <port>\n" and answers
 * "OK <assigned host port>\n" once the guest accepted on that port. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transport-internal.h"

#define HVSOCK_REPLY_MAX 32

int transport_hvsock_handshake(int fd, uint32_t port, uint64_t deadline, struct orch_error *err)
{
	char line[HVSOCK_REPLY_MAX + 1];
	size_t off = 0, len;
	int r;

	len = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port);
	while (off < len) {
		ssize_t n = write(fd, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((r = transport_wait(fd, POLLOUT, deadline)) < 0)
				return orch_errno(err, r, "hybrid vsock: sending CONNECT");
			continue;
		}
		if (n < 0)
			return orch_errno(err, -errno, "hybrid vsock: sending CONNECT");
		off += (size_t)n;
	}
	off = 0;
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if ((r = transport_wait(fd, POLLIN, deadline)) < 0)
				return orch_errno(
					err, r, "hybrid vsock: waiting for OK to CONNECT %u", port);
			continue;
		}
		if (n < 0)
			return orch_errno(err, -errno, "hybrid vsock: reading the reply");
		if (n == 0)
			return orch_err(err, -ECONNREFUSED,
					"hybrid vsock: connection closed after CONNECT %u (nothing "
					"listening on that port in the guest?)",
					port);
		if (c == '\n')
			break;
		if (off >= HVSOCK_REPLY_MAX)
			return orch_err(err, -EPROTO, "hybrid vsock: reply too long");
		line[off++] = c;
	}
	line[off] = '\0';
	if (off > 0 && line[off - 1] == '\r')
		line[--off] = '\0';
	if (strncmp(line, "OK ", 3) != 0 || off == 3 || strspn(line + 3, "0123456789") != off - 3)
		return orch_err(err, -ECONNREFUSED, "hybrid vsock: CONNECT %u refused: '%.32s'",
				port, line);
	return 0;
}
