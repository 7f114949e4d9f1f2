/* SPDX-License-Identifier: Apache-2.0 */
/* An intercepted tunnel (egress-intercept.c): TLS ended with orchd's CA, requests checked
 * (Host, DLP) and given the configured header, verified TLS to the real host. */
#pragma once

#include <stdint.h>

struct hconn;

/* Sets up c->icpt for inject entry; -errno (the caller refuses the connection). */
int egress_icpt_new(struct hconn *c, int entry);
void egress_icpt_free(struct hconn *c);
/* Moves what can move (called on every event of the connection); may end c. */
void egress_icpt_pump(struct hconn *c);
/* The upstream socket's epoll events while open. */
uint32_t egress_icpt_events(const struct hconn *c);
