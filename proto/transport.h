/* SPDX-License-Identifier: Apache-2.0 */
/* Byte-stream transports behind one small interface. An address is a string:
 *   fd:N                     an inherited, already connected fd (socketpair)
 *   unix:/path               AF_UNIX stream socket
 *   vsock:CID:PORT           AF_VSOCK (CID 2 = host; "any" when listening)
 *   hvsock:/path:PORT        Firecracker/Cloud Hypervisor hybrid vsock: AF_UNIX, then
 *                            "CONNECT PORT\n" -> "OK <hostport>\n"
 *   serial:/dev/vport0p1     virtio-serial character device (guest side): writes block
 *                            until the host side is connected; reads return EOF while
 *                            nobody is connected (reopen and retry)
 * All returned fds are O_CLOEXEC and O_NONBLOCK. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

enum orch_transport_kind {
	ORCH_TRANSPORT_FD = 1,
	ORCH_TRANSPORT_UNIX,
	ORCH_TRANSPORT_VSOCK,
	ORCH_TRANSPORT_HVSOCK,
	ORCH_TRANSPORT_SERIAL,
};

#define ORCH_VSOCK_CID_ANY 0xFFFFFFFFu
#define ORCH_VSOCK_CID_HOST 2u

struct orch_addr {
	enum orch_transport_kind kind;
	int fd;		/* FD */
	char path[108]; /* UNIX, HVSOCK, SERIAL */
	uint32_t cid;	/* VSOCK */
	uint32_t port;	/* VSOCK, HVSOCK */
};

int orch_addr_parse(const char *s, struct orch_addr *ret, struct orch_error *err);
/* Formats back to the string form. */
int orch_addr_format(const struct orch_addr *a, char *buf, size_t len);

/* Connects (blocking connect with a timeout, then switched to non-blocking). Returns fd. */
int orch_transport_dial(const struct orch_addr *a, int timeout_ms, struct orch_error *err);
/* Listens (UNIX, VSOCK). For UNIX a stale socket file is replaced; mode applied to it. */
int orch_transport_listen(const struct orch_addr *a, mode_t mode, struct orch_error *err);
/* Accepts one connection (non-blocking accept4). For VSOCK, when want_cid is not
 * ORCH_VSOCK_CID_ANY, a peer with another CID is refused (closed, -EPERM). Returns fd,
 * -EAGAIN when none is pending. ret_cid may be NULL. */
int orch_transport_accept(int listen_fd, enum orch_transport_kind kind, uint32_t want_cid,
			  uint32_t *ret_cid, struct orch_error *err);

/* Peer credentials of an AF_UNIX connection (SO_PEERCRED). */
int orch_transport_peercred(int fd, pid_t *ret_pid, uid_t *ret_uid, gid_t *ret_gid);

/* True when this kernel offers AF_VSOCK sockets at all (guest or host transport loaded). */
int orch_vsock_available(void);
