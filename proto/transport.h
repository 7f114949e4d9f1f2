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

#include <stdbool.h>
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
#define ORCH_VSOCK_CID_LOCAL 1u /* this kernel itself (vsock_loopback) */
#define ORCH_VSOCK_CID_HOST 2u

/* The lanes between orchd and a guest's supervisor (docs/ARCHITECTURE.md, "Who may talk
 * to whom"): the guest dials these host ports, which are reserved, so that only a
 * privileged host process can listen on them; the debug shells listen in the guest on
 * ORCH_VSOCK_SHELL_PORT_BASE + slot and accept only reserved peer ports. */
#define ORCH_VSOCK_CONTROL_PORT 700u
#define ORCH_VSOCK_LLM_PORT 701u
#define ORCH_VSOCK_EGRESS_PORT 702u
#define ORCH_VSOCK_SHELL_PORT_BASE 6000u
/* AF_VSOCK ports up to this one need CAP_NET_BIND_SERVICE (in the initial user namespace)
 * to bind, as for TCP; ports the kernel picks for an unbound socket are always above. */
#define ORCH_VSOCK_LAST_RESERVED_PORT 1023u
/* orch_vsock_connect_reserved takes its local port from here up to the last reserved. */
#define ORCH_VSOCK_SOURCE_PORT_MIN 512u

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
/* The other end of an accepted AF_VSOCK connection, as the kernel reports it: the CID is
 * set by the hypervisor (a guest cannot choose it), the port by the peer's kernel. */
struct orch_vsock_peer {
	uint32_t cid;
	uint32_t port;
};

/* Accepts one connection (non-blocking accept4). For VSOCK, when want_cid is not
 * ORCH_VSOCK_CID_ANY, a peer with another CID is refused (closed, -EPERM, the peer in
 * ret_peer all the same). Returns fd, -EAGAIN when none is pending. ret_peer may be NULL;
 * for other kinds it is set to {ORCH_VSOCK_CID_ANY, 0}. */
int orch_transport_accept(int listen_fd, enum orch_transport_kind kind, uint32_t want_cid,
			  struct orch_vsock_peer *ret_peer, struct orch_error *err);

/* True when only a privileged process can have bound this AF_VSOCK port. */
static inline bool orch_vsock_port_reserved(uint32_t port)
{
	return port <= ORCH_VSOCK_LAST_RESERVED_PORT;
}

/* Starts a connection to cid:port from a reserved local port (the first free one from
 * ORCH_VSOCK_LAST_RESERVED_PORT down to ORCH_VSOCK_SOURCE_PORT_MIN), so that the peer can
 * tell a privileged host process from any other. Needs CAP_NET_BIND_SERVICE (-EACCES
 * without). Non-blocking: the returned fd may still be connecting (EPOLLOUT, then
 * orch_transport_connect_result). ret_port (may be NULL): the local port taken. */
int orch_vsock_connect_reserved(uint32_t cid, uint32_t port, uint32_t *ret_port,
				struct orch_error *err);
/* Outcome of a non-blocking connect once the fd is writable: 0, or -errno. */
int orch_transport_connect_result(int fd);

/* Peer credentials of an AF_UNIX connection (SO_PEERCRED). */
int orch_transport_peercred(int fd, pid_t *ret_pid, uid_t *ret_uid, gid_t *ret_gid);

/* True when this kernel offers AF_VSOCK sockets at all (guest or host transport loaded). */
int orch_vsock_available(void);
