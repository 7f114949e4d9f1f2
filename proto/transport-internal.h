/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by transport.c and transport-hvsock.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "error.h"
#include "loop.h"

/* "@name" is the abstract namespace. */
int transport_unix_sockaddr(const char *path, struct sockaddr_un *sa, socklen_t *ret_len);
int transport_set_nonblock(int fd, bool on);
/* deadline in orch_now_ms() terms, 0: wait forever. -ETIMEDOUT when it passes. */
int transport_wait(int fd, short events, uint64_t deadline);
int transport_connect(int fd, const struct sockaddr *sa, socklen_t len, uint64_t deadline);
/* Firecracker / Cloud Hypervisor: "CONNECT <port>\n" -> "OK <hostport>\n" on a connected
 * non-blocking AF_UNIX socket. Reads byte by byte: nothing after the reply is consumed. */
int transport_hvsock_handshake(int fd, uint32_t port, uint64_t deadline, struct orch_error *err);
