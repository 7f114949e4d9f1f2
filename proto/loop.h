/* SPDX-License-Identifier: Apache-2.0 */
/* A small single-threaded event loop (epoll + timers kept in a min-heap, signalfd
 * friendly). Used by orch-supervisor directly and by orchd, which also registers it
 * with libvirt (virEventRegisterImpl) so that libvirt's events run on the same loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct orch_loop;
struct orch_io;	   /* a watched fd */
struct orch_timer; /* a one-shot or repeating timer */

/* events is a mask of EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP/EPOLLRDHUP as reported by epoll. */
typedef void (*orch_io_cb)(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			   void *data);
typedef void (*orch_timer_cb)(struct orch_loop *loop, struct orch_timer *t, void *data);

int orch_loop_new(struct orch_loop **ret);
void orch_loop_free(struct orch_loop *loop);

/* Runs until orch_loop_quit(); returns 0, or -errno if epoll_wait fails. */
int orch_loop_run(struct orch_loop *loop);
/* Runs one iteration, waiting at most timeout_ms (-1: until something happens). */
int orch_loop_run_once(struct orch_loop *loop, int timeout_ms);
void orch_loop_quit(struct orch_loop *loop);

/* Watches fd (not owned: the caller closes it after orch_io_free). */
int orch_io_add(struct orch_loop *loop, int fd, uint32_t events, orch_io_cb cb, void *data,
		struct orch_io **ret);
int orch_io_set_events(struct orch_io *io, uint32_t events);
uint32_t orch_io_get_events(const struct orch_io *io);
int orch_io_fd(const struct orch_io *io);
/* Safe from inside the io's own callback; NULL is a no-op. */
void orch_io_free(struct orch_io *io);

/* Fires after delay_ms, then every interval_ms if interval_ms > 0 (one-shot otherwise:
 * a fired one-shot timer stays allocated and may be re-armed until orch_timer_free). */
int orch_timer_add(struct orch_loop *loop, uint64_t delay_ms, uint64_t interval_ms,
		   orch_timer_cb cb, void *data, struct orch_timer **ret);
void orch_timer_rearm(struct orch_timer *t, uint64_t delay_ms);
void orch_timer_disarm(struct orch_timer *t);
/* Safe from inside the timer's own callback; NULL is a no-op. */
void orch_timer_free(struct orch_timer *t);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t orch_now_ms(void);
