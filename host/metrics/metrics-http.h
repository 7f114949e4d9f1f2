/* SPDX-License-Identifier: Apache-2.0 */
/* A scrape endpoint on orchd's loop: libmicrohttpd (external epoll mode, no threads) on a
 * listening socket orchd made (AF_UNIX or loopback TCP), answering GET /metrics (and /)
 * with the text a callback renders at that moment. Everything else is 404/405. Bounded:
 * 16 connections, 16 KiB of request per connection, 10 s idle timeout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct orch_loop;
struct mx_http;

/* The exposition text, malloc'd (the server frees it); NULL: 503. */
typedef char *(*mx_render_fn)(void *data, size_t *ret_len);
/* Whether the peer on connection fd may scrape (e.g. SO_PEERCRED on a Unix socket). */
typedef bool (*mx_allow_fn)(void *data, int fd);

/* listen_fd is taken (closed by mx_http_free). allow may be NULL (anyone who connects). */
int mx_http_new(struct orch_loop *loop, int listen_fd, mx_render_fn render, mx_allow_fn allow,
		void *data, struct mx_http **ret, struct orch_error *err);
void mx_http_free(struct mx_http *h);
