/* SPDX-License-Identifier: Apache-2.0 */
/* A helper started on a listener's first connection (helper-listener.h). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "helper-listener.h"
#include "log.h"

static void on_listen(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct sv_listener *l = data;
	struct orch_error err = {0};
	uint64_t now = orch_now_ms();
	char slot[16];

	if (now >= l->refuse_until_ms) {
		if (l->ops->start(l->data, &err) == 0)
			return;
		if (!l->warned) {
			snprintf(slot, sizeof(slot), "%u", l->slot);
			orch_log(ORCH_LOG_WARN, l->comp, l->unavailable, "slot", slot, "error",
				 err.msg, NULL);
			l->warned = true;
		}
		l->backoff_ms = sv_helper_backoff(l->backoff_ms);
		l->refuse_until_ms = now + l->backoff_ms;
	}
	l->ops->refuse(fd); /* a fixed answer each, so that clients fail at once */
}

static void watch_listener(struct sv_listener *l)
{
	if (!l->listen_io &&
	    orch_io_add(l->loop, l->listen_fd, EPOLLIN, on_listen, l, &l->listen_io) < 0)
		orch_timer_rearm(l->restart, SV_HELPER_RESTART_MAX_MS); /* try again later */
}

static void on_restart(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct sv_listener *l = data;

	if (!l->proc.pid)
		watch_listener(l);
}

static void on_pid(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct sv_listener *l = data;

	l->ops->exited(l->data);
}

static void on_log(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct sv_listener *l = data;

	if (sv_helper_log_read(fd, &l->log, l->comp, l->slot) < 0) {
		orch_io_free(l->log_io); /* EOF; the fd is closed with the process */
		l->log_io = NULL;
	}
}

int sv_listener_init(struct sv_listener *l, int listen_fd, struct orch_error *err)
{
	int r;

	l->listen_fd = -1;
	l->proc = (struct sv_helper){.pidfd = -1, .log_fd = -1};
	if ((r = orch_timer_add(l->loop, 0, 0, on_restart, l, &l->restart)) < 0)
		return orch_errno(err, r, "%s: cannot add a timer", l->comp);
	orch_timer_disarm(l->restart);
	if ((r = orch_io_add(l->loop, listen_fd, EPOLLIN, on_listen, l, &l->listen_io)) < 0) {
		orch_timer_free(l->restart);
		l->restart = NULL;
		return orch_errno(err, r, "%s: cannot watch the listening socket", l->comp);
	}
	l->listen_fd = listen_fd;
	return 0;
}

void sv_listener_free(struct sv_listener *l)
{
	sv_listener_stop(l, NULL, false);
	orch_io_free(l->listen_io);
	l->listen_io = NULL;
	orch_timer_free(l->restart);
	l->restart = NULL;
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	l->listen_fd = -1;
}

int sv_listener_started(struct sv_listener *l)
{
	char slot[16], pid[16];

	l->started_ms = orch_now_ms();
	l->log = (struct sv_helper_log){0};
	if (orch_io_add(l->loop, l->proc.pidfd, EPOLLIN, on_pid, l, &l->pid_io) < 0 ||
	    orch_io_add(l->loop, l->proc.log_fd, EPOLLIN, on_log, l, &l->log_io) < 0)
		return -ENOMEM;
	orch_io_free(l->listen_io); /* the helper accepts from now on */
	l->listen_io = NULL;
	snprintf(slot, sizeof(slot), "%u", l->slot);
	snprintf(pid, sizeof(pid), "%d", (int)l->proc.pid);
	char msg[96];
	snprintf(msg, sizeof(msg), "%s started", l->name);
	orch_log(ORCH_LOG_INFO, l->comp, msg, "slot", slot, "pid", pid, NULL);
	return 0;
}

void sv_listener_stop(struct sv_listener *l, const char *why, bool restart)
{
	char slot[16], pid[16], msg[96];

	if (!l->proc.pid)
		return;
	snprintf(slot, sizeof(slot), "%u", l->slot);
	snprintf(pid, sizeof(pid), "%d", (int)l->proc.pid);
	snprintf(msg, sizeof(msg), "%s stopped", l->name);
	if (why)
		orch_log(ORCH_LOG_WARN, l->comp, msg, "slot", slot, "pid", pid, "reason", why,
			 NULL);
	if (l->log_io)
		(void)sv_helper_log_read(l->proc.log_fd, &l->log, l->comp, l->slot);
	orch_io_free(l->log_io);
	orch_io_free(l->pid_io);
	l->log_io = l->pid_io = NULL;
	sv_helper_kill(&l->proc);
	l->proc.pid = 0;
	if (!restart)
		return;
	l->backoff_ms = sv_helper_restart_wait(l->backoff_ms, l->started_ms, orch_now_ms());
	if (l->backoff_ms)
		orch_timer_rearm(l->restart, l->backoff_ms);
	else
		watch_listener(l);
}
