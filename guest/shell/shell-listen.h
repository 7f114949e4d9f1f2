/* SPDX-License-Identifier: Apache-2.0 */
/* Where one slot's debug shell listens (internal to guest/shell/). */
#pragma once

#include <stdint.h>

#include "error.h"

enum sv_shell_kind {
	SV_SHELL_UNIX = 1,
	SV_SHELL_VSOCK,
	SV_SHELL_SERIAL,
};

struct sv_shell_addr {
	enum sv_shell_kind kind;
	char path[108]; /* UNIX, SERIAL */
	uint32_t port;	/* VSOCK */
};

/* "unix:/path", "vsock:any:PORT", "vsock:any" / "vsock" (port 6000+slot),
 * "serial:/dev/virtio-ports/NAME". */
int sv_shell_addr_parse(const char *s, unsigned slot, struct sv_shell_addr *ret,
			struct orch_error *err);

/* UNIX/VSOCK: a listening socket (UNIX: stale file replaced, mode 0600). SERIAL: the
 * opened port. CLOEXEC|NONBLOCK. */
int sv_shell_listen(const struct sv_shell_addr *a, struct orch_error *err);

/* Accepts one connection: -EAGAIN when none is pending, -EPERM (already closed) when a
 * VSOCK peer is not allow_cid or its port is not reserved (only a privileged process, on
 * the host orchd, can bind one: an unprivileged host user's connection is refused). */
int sv_shell_accept(int lfd, const struct sv_shell_addr *a, uint32_t allow_cid,
		    struct orch_error *err);

/* SERIAL: 1 when the host side is connected, 0 when not, -errno. */
int sv_shell_serial_connected(int fd);
