/* SPDX-License-Identifier: Apache-2.0 */
/* libvirt's event callbacks mapped onto orchd's loop (virEventRegisterImpl), so the VM
 * backend's connection, domain events and keepalives run on the same single thread.
 * libvirt's API carries no context pointer, so the loop and the watch tables live in
 * file-scope state: the one global libvirt forces on us. Call orchd_event_libvirt_register
 * once, before any virConnectOpen. */
#include <errno.h>
#include <stdlib.h>
#include <libvirt/libvirt.h>

#include "virt-event-loop.h"

struct lv_handle {
	int id;
	int fd;
	struct orch_io *io;
	virEventHandleCallback cb;
	void *opaque;
	virFreeCallback ff;
};

struct lv_timeout {
	int id;
	int interval; /* -1 disabled */
	struct orch_timer *t;
	virEventTimeoutCallback cb;
	void *opaque;
	virFreeCallback ff;
};

struct lv_free {
	struct orch_timer *t;
	virFreeCallback ff;
	void *opaque;
	struct lv_free *prev, *next; /* lv.frees: not yet run */
};

static struct {
	struct orch_loop *loop;
	struct lv_handle **handles;
	size_t n_handles;
	struct lv_timeout **timeouts;
	size_t n_timeouts;
	int next_id;
	struct lv_free *frees;
} lv;

static uint32_t to_epoll(int ev)
{
	uint32_t e = 0;

	if (ev & VIR_EVENT_HANDLE_READABLE)
		e |= EPOLLIN;
	if (ev & VIR_EVENT_HANDLE_WRITABLE)
		e |= EPOLLOUT;
	return e;
}

static int from_epoll(uint32_t e)
{
	int ev = 0;

	if (e & EPOLLIN)
		ev |= VIR_EVENT_HANDLE_READABLE;
	if (e & EPOLLOUT)
		ev |= VIR_EVENT_HANDLE_WRITABLE;
	if (e & EPOLLERR)
		ev |= VIR_EVENT_HANDLE_ERROR;
	if (e & (EPOLLHUP | EPOLLRDHUP))
		ev |= VIR_EVENT_HANDLE_HANGUP;
	return ev;
}

static void run_free(struct lv_free *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		lv.frees = f->next;
	if (f->next)
		f->next->prev = f->prev;
	orch_timer_free(f->t);
	f->ff(f->opaque);
	free(f);
}

static void on_free_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	run_free(data);
}

/* libvirt requires ff to run after the remove call returns, not inside it. */
static void defer_free(virFreeCallback ff, void *opaque)
{
	struct lv_free *f;

	if (!ff)
		return;
	f = calloc(1, sizeof(*f));
	if (!f)
		return;
	f->ff = ff;
	f->opaque = opaque;
	if (orch_timer_add(lv.loop, 0, 0, on_free_timer, f, &f->t) < 0) {
		free(f);
		return;
	}
	f->next = lv.frees;
	if (lv.frees)
		lv.frees->prev = f;
	lv.frees = f;
}

static void on_io(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct lv_handle *h = data;

	h->cb(h->id, fd, from_epoll(events), h->opaque);
}

static int add_handle(int fd, int event, virEventHandleCallback cb, void *opaque,
		      virFreeCallback ff)
{
	struct lv_handle *h, **p;

	p = realloc(lv.handles, (lv.n_handles + 1) * sizeof(*p));
	if (!p)
		return -1;
	lv.handles = p;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	*h = (struct lv_handle){++lv.next_id, fd, NULL, cb, opaque, ff};
	if (orch_io_add(lv.loop, fd, to_epoll(event), on_io, h, &h->io) < 0) {
		free(h);
		return -1;
	}
	lv.handles[lv.n_handles++] = h;
	return h->id;
}

static struct lv_handle *find_handle(int id, size_t *ret_idx)
{
	for (size_t i = 0; i < lv.n_handles; i++)
		if (lv.handles[i]->id == id) {
			if (ret_idx)
				*ret_idx = i;
			return lv.handles[i];
		}
	return NULL;
}

static void update_handle(int id, int event)
{
	struct lv_handle *h = find_handle(id, NULL);

	if (h)
		orch_io_set_events(h->io, to_epoll(event));
}

static int remove_handle(int id)
{
	size_t i;
	struct lv_handle *h = find_handle(id, &i);

	if (!h)
		return -1;
	lv.handles[i] = lv.handles[--lv.n_handles];
	orch_io_free(h->io);
	defer_free(h->ff, h->opaque);
	free(h);
	return 0;
}

static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct lv_timeout *to = data;

	to->cb(to->id, to->opaque);
}

static void arm(struct lv_timeout *to)
{
	if (to->interval < 0)
		orch_timer_disarm(to->t);
	else
		orch_timer_rearm(to->t, (uint64_t)to->interval);
}

static int add_timeout(int timeout, virEventTimeoutCallback cb, void *opaque, virFreeCallback ff)
{
	struct lv_timeout *to, **p;

	p = realloc(lv.timeouts, (lv.n_timeouts + 1) * sizeof(*p));
	if (!p)
		return -1;
	lv.timeouts = p;
	to = calloc(1, sizeof(*to));
	if (!to)
		return -1;
	*to = (struct lv_timeout){++lv.next_id, timeout, NULL, cb, opaque, ff};
	/* A repeating timer; libvirt's 0 means "every iteration": 1 ms is close enough. */
	if (orch_timer_add(lv.loop, timeout > 0 ? (uint64_t)timeout : 1,
			   timeout > 0 ? (uint64_t)timeout : 1, on_timer, to, &to->t) < 0) {
		free(to);
		return -1;
	}
	if (timeout < 0)
		orch_timer_disarm(to->t);
	lv.timeouts[lv.n_timeouts++] = to;
	return to->id;
}

static struct lv_timeout *find_timeout(int id, size_t *ret_idx)
{
	for (size_t i = 0; i < lv.n_timeouts; i++)
		if (lv.timeouts[i]->id == id) {
			if (ret_idx)
				*ret_idx = i;
			return lv.timeouts[i];
		}
	return NULL;
}

static void update_timeout(int id, int timeout)
{
	struct lv_timeout *to = find_timeout(id, NULL);

	if (!to)
		return;
	if (timeout >= 0 && to->interval != timeout) {
		/* interval changes: replace the timer */
		orch_timer_free(to->t);
		to->t = NULL;
		if (orch_timer_add(lv.loop, timeout > 0 ? (uint64_t)timeout : 1,
				   timeout > 0 ? (uint64_t)timeout : 1, on_timer, to, &to->t) < 0)
			return;
	}
	to->interval = timeout;
	if (to->t)
		arm(to);
}

static int remove_timeout(int id)
{
	size_t i;
	struct lv_timeout *to = find_timeout(id, &i);

	if (!to)
		return -1;
	lv.timeouts[i] = lv.timeouts[--lv.n_timeouts];
	orch_timer_free(to->t);
	defer_free(to->ff, to->opaque);
	free(to);
	return 0;
}

int orchd_event_libvirt_register(struct orch_loop *loop)
{
	if (lv.loop)
		return -EALREADY;
	lv.loop = loop;
	virEventRegisterImpl(add_handle, update_handle, remove_handle, add_timeout, update_timeout,
			     remove_timeout);
	return 0;
}

void orchd_event_libvirt_drain(void)
{
	while (lv.frees)
		run_free(lv.frees);
}
