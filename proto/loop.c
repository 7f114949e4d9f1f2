/* SPDX-License-Identifier: Apache-2.0 */
/* epoll + a min-heap of timers. Ios and timers freed while the loop dispatches are only
 * unlinked at once and released at the end of the iteration, so a callback may free any
 * io or timer (its own included) without a later event of the same batch touching freed
 * memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define MAX_EVENTS 64

struct orch_io {
	struct orch_loop *loop;
	int fd;
	uint32_t events;
	orch_io_cb cb;
	void *data;
	bool dead;
	struct orch_io *prev, *next; /* live list, or the dead list once freed */
};

struct orch_timer {
	struct orch_loop *loop;
	uint64_t when;
	uint64_t interval;
	uint64_t armed_iter; /* loop iteration in which it was last armed */
	size_t heap_idx;     /* SIZE_MAX when not armed */
	orch_timer_cb cb;
	void *data;
	bool dead;
	struct orch_timer *prev, *next; /* all timers, or the dead list once freed */
};

struct orch_loop {
	int epfd;
	bool quit;
	unsigned depth; /* > 0 while dispatching */
	uint64_t iter;
	struct orch_io *ios, *dead_ios;
	struct orch_timer *timers, *dead_timers;
	struct orch_timer **heap;
	size_t heap_len, heap_cap;
};

uint64_t orch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int orch_loop_new(struct orch_loop **ret)
{
	struct orch_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int r = -errno;
		free(loop);
		return r;
	}
	*ret = loop;
	return 0;
}

/* ---- timer heap ---- */

static void heap_swap(struct orch_loop *loop, size_t a, size_t b)
{
	struct orch_timer *t = loop->heap[a];

	loop->heap[a] = loop->heap[b];
	loop->heap[b] = t;
	loop->heap[a]->heap_idx = a;
	loop->heap[b]->heap_idx = b;
}

static void heap_up(struct orch_loop *loop, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (loop->heap[p]->when <= loop->heap[i]->when)
			break;
		heap_swap(loop, p, i);
		i = p;
	}
}

static void heap_down(struct orch_loop *loop, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < loop->heap_len && loop->heap[l]->when < loop->heap[m]->when)
			m = l;
		if (r < loop->heap_len && loop->heap[r]->when < loop->heap[m]->when)
			m = r;
		if (m == i)
			break;
		heap_swap(loop, i, m);
		i = m;
	}
}

static void heap_remove(struct orch_timer *t)
{
	struct orch_loop *loop = t->loop;
	size_t i = t->heap_idx;

	if (i == SIZE_MAX)
		return;
	t->heap_idx = SIZE_MAX;
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	loop->heap[i] = loop->heap[loop->heap_len];
	loop->heap[i]->heap_idx = i;
	heap_up(loop, i);
	heap_down(loop, loop->heap[i]->heap_idx);
}

static int heap_insert(struct orch_timer *t)
{
	struct orch_loop *loop = t->loop;

	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		struct orch_timer **h = reallocarray(loop->heap, cap, sizeof(*h));
		if (!h)
			return -ENOMEM;
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t->heap_idx = loop->heap_len;
	loop->heap[loop->heap_len++] = t;
	heap_up(loop, t->heap_idx);
	return 0;
}

/* ---- ios ---- */

int orch_io_add(struct orch_loop *loop, int fd, uint32_t events, orch_io_cb cb, void *data,
		struct orch_io **ret)
{
	struct orch_io *io;
	struct epoll_event ev = {.events = events};

	if (fd < 0 || !cb)
		return -EINVAL;
	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->data = data;
	ev.data.ptr = io;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int r = -errno;
		free(io);
		return r;
	}
	io->next = loop->ios;
	if (loop->ios)
		loop->ios->prev = io;
	loop->ios = io;
	*ret = io;
	return 0;
}

int orch_io_set_events(struct orch_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};

	if (io->dead)
		return -ESTALE;
	if (events == io->events)
		return 0;
	if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	return 0;
}

uint32_t orch_io_get_events(const struct orch_io *io)
{
	return io->events;
}

int orch_io_fd(const struct orch_io *io)
{
	return io->fd;
}

void orch_io_free(struct orch_io *io)
{
	struct orch_loop *loop;

	if (!io || io->dead)
		return;
	loop = io->loop;
	io->dead = true;
	/* The fd may already be closed by a careless caller: ignore EBADF/ENOENT. */
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	if (io->prev)
		io->prev->next = io->next;
	else
		loop->ios = io->next;
	if (io->next)
		io->next->prev = io->prev;
	io->prev = NULL;
	if (loop->depth > 0) {
		io->next = loop->dead_ios;
		loop->dead_ios = io;
	} else {
		free(io);
	}
}

/* ---- timers ---- */

int orch_timer_add(struct orch_loop *loop, uint64_t delay_ms, uint64_t interval_ms,
		   orch_timer_cb cb, void *data, struct orch_timer **ret)
{
	struct orch_timer *t;
	int r;

	if (!cb)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->loop = loop;
	t->interval = interval_ms;
	t->cb = cb;
	t->data = data;
	t->when = orch_now_ms() + delay_ms;
	t->armed_iter = loop->iter;
	t->heap_idx = SIZE_MAX;
	r = heap_insert(t);
	if (r < 0) {
		free(t);
		return r;
	}
	t->next = loop->timers;
	if (loop->timers)
		loop->timers->prev = t;
	loop->timers = t;
	*ret = t;
	return 0;
}

void orch_timer_rearm(struct orch_timer *t, uint64_t delay_ms)
{
	if (!t || t->dead)
		return;
	heap_remove(t);
	t->when = orch_now_ms() + delay_ms;
	t->armed_iter = t->loop->iter;
	/* Growing the heap can only fail if it never held this timer; it did, so the
	 * capacity is there. */
	(void)heap_insert(t);
}

void orch_timer_disarm(struct orch_timer *t)
{
	if (!t || t->dead)
		return;
	heap_remove(t);
}

void orch_timer_free(struct orch_timer *t)
{
	struct orch_loop *loop;

	if (!t || t->dead)
		return;
	loop = t->loop;
	heap_remove(t);
	t->dead = true;
	if (t->prev)
		t->prev->next = t->next;
	else
		loop->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->prev = NULL;
	if (loop->depth > 0) {
		t->next = loop->dead_timers;
		loop->dead_timers = t;
	} else {
		free(t);
	}
}

/* ---- running ---- */

static void reap_dead(struct orch_loop *loop)
{
	while (loop->dead_ios) {
		struct orch_io *io = loop->dead_ios;
		loop->dead_ios = io->next;
		free(io);
	}
	while (loop->dead_timers) {
		struct orch_timer *t = loop->dead_timers;
		loop->dead_timers = t->next;
		free(t);
	}
}

static void run_timers(struct orch_loop *loop)
{
	uint64_t now = orch_now_ms();

	while (loop->heap_len > 0) {
		struct orch_timer *t = loop->heap[0];
		if (t->when > now || t->armed_iter == loop->iter)
			break; /* not due, or (re)armed during this iteration: next one */
		heap_remove(t);
		if (t->interval > 0) {
			t->when += t->interval;
			if (t->when <= now)
				t->when = now + t->interval;
			t->armed_iter = loop->iter;
			(void)heap_insert(t);
		}
		t->cb(loop, t, t->data);
	}
}

int orch_loop_run_once(struct orch_loop *loop, int timeout_ms)
{
	struct epoll_event evs[MAX_EVENTS];
	int n, r = 0;

	if (loop->heap_len > 0) {
		uint64_t now = orch_now_ms(), when = loop->heap[0]->when;
		uint64_t wait = when > now ? when - now : 0;
		if (wait > INT32_MAX)
			wait = INT32_MAX;
		if (timeout_ms < 0 || (uint64_t)timeout_ms > wait)
			timeout_ms = (int)wait;
	}
	loop->iter++;
	n = epoll_wait(loop->epfd, evs, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	loop->depth++;
	for (int i = 0; i < n; i++) {
		struct orch_io *io = evs[i].data.ptr;
		if (io->dead)
			continue;
		io->cb(loop, io, io->fd, evs[i].events, io->data);
	}
	run_timers(loop);
	loop->depth--;
	if (loop->depth == 0)
		reap_dead(loop);
	return r;
}

int orch_loop_run(struct orch_loop *loop)
{
	loop->quit = false;
	while (!loop->quit) {
		int r = orch_loop_run_once(loop, -1);
		if (r < 0)
			return r;
	}
	loop->quit = false;
	return 0;
}

void orch_loop_quit(struct orch_loop *loop)
{
	loop->quit = true;
}

void orch_loop_free(struct orch_loop *loop)
{
	if (!loop)
		return;
	while (loop->ios)
		orch_io_free(loop->ios);
	while (loop->timers)
		orch_timer_free(loop->timers);
	reap_dead(loop);
	free(loop->heap);
	close(loop->epfd);
	free(loop);
}
