/* SPDX-License-Identifier: Apache-2.0 */
/* Debug shells through orchd, on every backend and transport. orchd offers one AF_UNIX
 * socket per VM and agent slot,
 *     <state_dir>/shell/<vm>/agent-<N>.sock
 * in directories root:<group> 0750 (root:root 0700 without a group), the socket
 * root:<group> 0660. Each connection is authorised by SO_PEERCRED with the control
 * socket's rule (access.h); an authorised one is relayed byte for byte to the backend's
 * shell endpoint (backend.h shell_endpoint: the supervisor's root-only unix socket, QEMU's
 * virtio-serial socket, or the guest's vsock port dialled from a reserved source port),
 * which users cannot reach themselves. Buffers are fixed (16 KiB each way per session) and
 * a side is only read while the other can take the bytes, so a flooding guest or a client
 * that stops reading cannot grow orchd or stall its loop. Either side ending ends the
 * session (a client's half-close is passed on). Every open, close and refusal is an audit
 * line in orchd's log (level warn, so the default log has them). */
#pragma once

#include <jansson.h>

#include "error.h"
#include "service.h"

struct orchd;
struct vm;
struct shell_relay;

#define SHELL_RELAY_MAX_PER_SLOT 4
#define SHELL_RELAY_MAX_SESSIONS 64

/* Creates the directories and one listener per slot of every VM that has debug shells. */
int shell_relay_new(struct orchd *d, struct shell_relay **ret, struct orch_error *err);
/* Ends every session, closes and removes the sockets. */
void shell_relay_free(struct shell_relay *r);
/* Adds "shell": ["unix:<socket of slot 0>", ...] to a VM's status object. */
void shell_relay_describe(const struct shell_relay *r, const struct vm *vm, json_t *obj);
/* The service that adds each VM's shell sockets to its status (service.h). */
extern const struct orchd_service orchd_shell_service;
/* Live sessions (for tests and status). */
size_t shell_relay_sessions(const struct shell_relay *r);
