/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's end of the egress lanes (docs/EGRESS.md). One struct egress_host per orchd
 * (config, resolver, store, the per-task byte counts); one struct egress_serve per VM's
 * lane connection. For each egress.open the serve decides (the slot's task and its sets,
 * limits, the allow sets, resolution with egress.resolve overrides, private addresses,
 * for tunnels the ClientHello's SNI) before any connection to the outside is made,
 * answers with a verdict, connects without blocking on orchd's loop and relays the bytes
 * within the lane's per-connection windows. Every connection, allowed or refused, ends in
 * one row of the egress log (egress-log.h). Nothing from the guest is trusted: frames
 * and messages are checked strictly (proto/egress.h), and a guest that breaks the
 * protocol loses its lane (its connections end). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>

#include "config-egress.h"
#include "error.h"
#include "loop.h"

struct egress_host;
struct egress_serve;

/* What orchd knows about a VM's slot: the task running there (0: none) and the sets it
 * may use (NULL-terminated, owned by the caller until the next call). */
typedef int (*egress_slot_cb)(void *data, int64_t slot, int64_t *ret_task, char ***ret_sets);

int egress_host_new(struct orch_loop *loop, const struct egress_config *cfg, sqlite3 *db,
		    const char *state_dir, struct egress_host **ret, struct orch_error *err);
void egress_host_free(struct egress_host *h);
/* Writes the connections that ended and are not yet in the store's egress log (they are
 * written in batches, at most 100 ms late): call before reading the log. */
void egress_host_flush_log(struct egress_host *h);
/* The CA certificate (PEM) the guests get, NULL when nothing is intercepted. */
const char *egress_host_ca_pem(const struct egress_host *h);

/* Serves a lane connection fd (taken, also on failure) for VM name with n_slots slots. */
int egress_serve_new(struct egress_host *h, int fd, const char *vm, int64_t n_slots,
		     egress_slot_cb slot_cb, void *data, struct egress_serve **ret,
		     struct orch_error *err);
/* Ends every connection (each logged) and closes the lane. */
void egress_serve_free(struct egress_serve *s);
/* The lane was closed by the guest or failed: the owner should free it (called from the
 * loop, never from inside egress_serve_free). */
void egress_serve_set_close_cb(struct egress_serve *s, void (*cb)(void *data), void *data);
unsigned egress_serve_conns(const struct egress_serve *s);
