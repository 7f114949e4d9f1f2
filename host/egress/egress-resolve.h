/* SPDX-License-Identifier: Apache-2.0 */
/* Name resolution off orchd's loop: getaddrinfo blocks, so it runs in a small pool of
 * threads (EGRESS_RESOLVE_THREADS) fed from a bounded queue (EGRESS_RESOLVE_QUEUE jobs);
 * results come back through an eventfd and their callbacks run on the loop. The threads
 * touch nothing but their job. */
#pragma once

#include <netdb.h>
#include <stdint.h>

#include "error.h"
#include "loop.h"

#define EGRESS_RESOLVE_THREADS 2
#define EGRESS_RESOLVE_QUEUE 256

struct egress_resolver;
struct egress_resolve_job;

/* On the loop: res (freeaddrinfo'd after the call) or gai_err != 0. */
typedef void (*egress_resolve_cb)(struct addrinfo *res, int gai_err, void *data);

int egress_resolver_new(struct orch_loop *loop, struct egress_resolver **ret,
			struct orch_error *err);
/* Joins the threads; pending callbacks are not called. */
void egress_resolver_free(struct egress_resolver *r);
/* Resolves host (TCP, any family). -EBUSY when the queue is full. */
int egress_resolve(struct egress_resolver *r, const char *host, egress_resolve_cb cb, void *data,
		   struct egress_resolve_job **ret);
/* The callback will not be called (the job finishes and is dropped). */
void egress_resolve_cancel(struct egress_resolve_job *j);
