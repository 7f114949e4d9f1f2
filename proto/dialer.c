/* SPDX-License-Identifier: Apache-2.0 */
/* A channel dialled again with backoff (dialer.h). */
#include <errno.h>
#include <stdlib.h>

#include "dialer.h"

struct orch_dialer {
	struct orch_loop *loop;
	struct orch_addr addr;
	struct orch_dialer_opts opts;
	const struct orch_dialer_ops *ops;
	void *data;
	struct orch_timer *timer;
	uint64_t backoff_ms;   /* the next delay */
	uint64_t connected_ms; /* when the current connection was made, 0: none */
	uint64_t fixed_ms;     /* > 0: every redial waits this long (orch_dialer_set_fixed) */
	bool fd_used;	       /* an fd:N address was taken */
};

static void schedule(struct orch_dialer *d)
{
	uint64_t delay = d->backoff_ms;

	if (d->fixed_ms) {
		orch_timer_rearm(d->timer, d->fixed_ms);
		return;
	}
	d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : d->opts.min_ms;
	if (d->backoff_ms > d->opts.max_ms)
		d->backoff_ms = d->opts.max_ms;
	orch_timer_rearm(d->timer, delay);
}

static void on_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct orch_dialer *d = data;
	struct orch_error err = {0};
	int fd, r;

	if (d->addr.kind == ORCH_TRANSPORT_FD && d->fd_used)
		return;
	fd = orch_transport_dial(&d->addr, d->opts.dial_timeout_ms, &err);
	if (fd < 0) {
		d->ops->failed(d->data, &err);
		schedule(d);
		return;
	}
	if (d->addr.kind == ORCH_TRANSPORT_FD)
		d->fd_used = true;
	d->connected_ms = orch_now_ms();
	r = d->ops->connected(d->data, fd, &err);
	if (r < 0) {
		d->connected_ms = 0;
		d->ops->failed(d->data, &err);
		if (d->addr.kind == ORCH_TRANSPORT_FD) {
			if (d->ops->gone)
				d->ops->gone(d->data);
			return;
		}
		schedule(d);
	}
}

int orch_dialer_new(struct orch_loop *loop, const struct orch_addr *addr,
		    const struct orch_dialer_opts *opts, const struct orch_dialer_ops *ops,
		    void *data, struct orch_dialer **ret)
{
	struct orch_dialer *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->addr = *addr;
	if (opts)
		d->opts = *opts;
	if (!d->opts.min_ms)
		d->opts.min_ms = 100;
	if (!d->opts.max_ms)
		d->opts.max_ms = 5000;
	if (!d->opts.dial_timeout_ms)
		d->opts.dial_timeout_ms = 2000;
	d->ops = ops;
	d->data = data;
	r = orch_timer_add(loop, 0, 0, on_timer, d, &d->timer);
	if (r < 0) {
		free(d);
		return r;
	}
	*ret = d;
	return 0;
}

void orch_dialer_free(struct orch_dialer *d)
{
	if (!d)
		return;
	orch_timer_free(d->timer);
	free(d);
}

void orch_dialer_closed(struct orch_dialer *d)
{
	if (d->connected_ms && orch_now_ms() - d->connected_ms >= d->opts.max_ms)
		d->backoff_ms = 0; /* it lasted: start over */
	d->connected_ms = 0;
	if (d->addr.kind == ORCH_TRANSPORT_FD) {
		if (d->ops->gone)
			d->ops->gone(d->data);
		return;
	}
	schedule(d);
}

void orch_dialer_ready(struct orch_dialer *d)
{
	d->backoff_ms = 0;
}

void orch_dialer_now(struct orch_dialer *d)
{
	if (!d || d->connected_ms || (d->addr.kind == ORCH_TRANSPORT_FD && d->fd_used))
		return;
	d->backoff_ms = 0;
	orch_timer_rearm(d->timer, 0);
}

void orch_dialer_set_fixed(struct orch_dialer *d, uint64_t fixed_ms)
{
	d->fixed_ms = fixed_ms;
}

uint64_t orch_dialer_backoff(const struct orch_dialer *d)
{
	return d->backoff_ms;
}
