/* SPDX-License-Identifier: Apache-2.0 */
/* The host channel: dial (with backoff), hello, heartbeats, the method table
 * {task.run, task.cancel} (refused before hello), and task.exit requests kept until the
 * host acknowledges them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orch-config.h"
#include "cleanup.h"
#include "dialer.h"
#include "extras.h"
#include "log.h"
#include "supervisor.h"
#include "task.h"
#include "thaw.h"

#define SV_EXIT_TIMEOUT_MS 30000
#define SV_MAX_EXITS 4096

bool sv_channel_ready(const struct supervisor *sv)
{
	return sv->rpc && sv->ready && !orch_rpc_is_closed(sv->rpc);
}

void sv_tasks_flush_all(struct supervisor *sv)
{
	for (unsigned i = 0; i < sv->cfg->slots && sv_channel_ready(sv); i++)
		if (sv->slots[i].task)
			sv_task_flush(sv->slots[i].task); /* may free the task */
}

/* ---- task.exit, acknowledged ---- */

static void send_exits(struct supervisor *sv);

static void exit_remove(struct supervisor *sv, struct sv_exit *e)
{
	for (struct sv_exit **p = &sv->exits; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			sv->n_exits--;
			json_decref(e->params);
			free(e);
			return;
		}
}

static void exit_reply_cb(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
			  json_t *err_data, void *data)
{
	struct sv_exit *e = data;
	struct supervisor *sv = e->sv;
	e->inflight = false;
	if (!err) {
		exit_remove(sv, e);
		return;
	}
	if (err->code == ORCH_RPC_CLOSED || err->code == ORCH_RPC_TIMEOUT)
		return; /* kept: sent again after the reconnect / with the next heartbeat */
	/* The host refused it: sending it again would be refused again. */
	orch_log(ORCH_LOG_WARN, "channel", "host refused task.exit", "task", e->task, "error",
		 err->msg, NULL);
	exit_remove(sv, e);
}

static void send_exits(struct supervisor *sv)
{
	for (struct sv_exit *e = sv->exits; e && sv_channel_ready(sv); e = e->next) {
		if (e->inflight)
			continue;
		int r = orch_rpc_call(sv->rpc, "task.exit", json_incref(e->params),
				      SV_EXIT_TIMEOUT_MS, exit_reply_cb, e);
		if (r < 0)
			break; /* queue full: retried on drain or the next heartbeat */
		e->inflight = true;
	}
}

void sv_exit_queue(struct supervisor *sv, const char *task, json_t *params_new)
{
	struct sv_exit *e = calloc(1, sizeof(*e));
	if (!e) {
		json_decref(params_new);
		return;
	}
	if (sv->n_exits >= SV_MAX_EXITS) {
		/* Never unbounded: the oldest unacknowledged exit is dropped, loudly. */
		struct sv_exit *old = sv->exits;
		if (old && !old->inflight) {
			orch_log(ORCH_LOG_ERROR, "channel", "dropping unacknowledged task.exit",
				 "task", old->task, NULL);
			exit_remove(sv, old);
		}
	}
	snprintf(e->task, sizeof(e->task), "%s", task);
	e->params = params_new;
	e->sv = sv;
	struct sv_exit **p = &sv->exits;
	while (*p)
		p = &(*p)->next;
	*p = e;
	sv->n_exits++;
	send_exits(sv);
}

bool sv_exit_pending(const struct supervisor *sv, const char *task)
{
	for (const struct sv_exit *e = sv->exits; e; e = e->next)
		if (strcmp(e->task, task) == 0)
			return true;
	return false;
}

/* ---- methods ---- */

static int h_task_run(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		      struct orch_error *err)
{
	struct supervisor *sv = data;
	struct orch_task_run run;
	if (!req)
		return orch_err(err, ORCH_RPC_INVALID_REQUEST, "task.run must be a request");
	int r = orch_task_run_parse(params, &run, err);
	if (r < 0)
		return r;
	json_t *result = NULL;
	if (sv->frozen || sv->template)
		r = orch_err(err, ORCH_RPC_CONFLICT,
			     sv->frozen ? "frozen for a snapshot: no task runs before vm.thaw"
					: "a snapshot template: no task runs before vm.thaw");
	else if (run.slot < 0 || run.slot >= (int64_t)sv->cfg->slots)
		r = orch_err(err, ORCH_RPC_INVALID_PARAMS, "slot %lld is not in 0..%u",
			     (long long)run.slot, sv->cfg->slots - 1);
	else if (sv_task_find(sv, run.task) || sv_exit_pending(sv, run.task))
		r = orch_err(err, ORCH_RPC_CONFLICT, "task %s is already known", run.task);
	else if (sv->slots[run.slot].task)
		r = orch_err(err, ORCH_RPC_BUSY, "slot %lld is busy with task %s",
			     (long long)run.slot, sv_task_id(sv->slots[run.slot].task));
	else
		r = sv_task_start(sv, &sv->slots[run.slot], &run, &result, err);
	orch_task_run_done(&run);
	if (r < 0)
		return r;
	return orch_rpc_reply(req, result);
}

static int h_task_cancel(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			 struct orch_error *err)
{
	struct supervisor *sv = data;
	struct orch_task_cancel c;
	if (!req)
		return orch_err(err, ORCH_RPC_INVALID_REQUEST, "task.cancel must be a request");
	int r = orch_task_cancel_parse(params, &c, err);
	if (r < 0)
		return r;
	struct sv_task *t = sv_task_find(sv, c.task);
	if (!t) {
		if (sv_exit_pending(sv, c.task))
			return orch_rpc_reply(
				req, json_pack("{s:s, s:b}", "task", c.task, "running", 0));
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no task %s", c.task);
	}
	/* Reply first: the cancel may finish the task at once. */
	r = orch_rpc_reply(req, json_pack("{s:s, s:b}", "task", c.task, "running", 1));
	sv_task_cancel(t, c.grace_ms >= 0 ? (uint64_t)c.grace_ms : sv->cfg->kill_grace_ms);
	return r;
}

static const struct orch_rpc_method own_methods[] = {
	{"task.run", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, h_task_run},
	{"task.cancel", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, h_task_cancel},
	{"vm.freeze", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, sv_thaw_m_freeze},
	{"vm.thaw", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, sv_thaw_m_thaw},
};
#define SV_MAX_METHODS 16

/* ---- connection ---- */

static void heartbeat_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct supervisor *sv = data;
	if (!sv_channel_ready(sv))
		return;
	int64_t running = 0;
	for (unsigned i = 0; i < sv->cfg->slots; i++)
		running += sv->slots[i].task != NULL;
	struct orch_heartbeat hb = {.seq = sv->heartbeat_seq++, .running = running};
	json_t *p = orch_heartbeat_build(&hb);
	if (p)
		(void)orch_rpc_notify(sv->rpc, "heartbeat", p);
	send_exits(sv); /* those that timed out */
}

static void close_cb(struct orch_rpc *rpc, int code, void *data)
{
	struct supervisor *sv = data;
	if (sv->rpc != rpc)
		return;
	orch_logf(sv->frozen ? ORCH_LOG_DEBUG : ORCH_LOG_INFO, "channel",
		  "host channel closed (%d)", code);
	sv->ready = false;
	sv->rpc = NULL;
	sv_extras_set_rpc(sv, NULL);
	orch_timer_disarm(sv->heartbeat);
	for (struct sv_exit *e = sv->exits; e; e = e->next)
		e->inflight = false;
	orch_rpc_unref(rpc);
	if (!sv->quitting)
		orch_dialer_closed(sv->dialer);
}

static void drain_cb(struct orch_rpc *rpc, void *data)
{
	struct supervisor *sv = data;
	send_exits(sv);
	sv_tasks_flush_all(sv);
}

static void hello_reply_cb(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
			   json_t *err_data, void *data)
{
	struct supervisor *sv = data;
	struct orch_hello_reply hr;
	struct orch_error perr = {0};
	if (sv->rpc != rpc)
		return;
	if (err || orch_hello_reply_parse(result, &hr, &perr) < 0) {
		orch_log(sv->frozen ? ORCH_LOG_DEBUG : ORCH_LOG_WARN, "channel", "hello refused",
			 "error", err ? err->msg : perr.msg, NULL);
		orch_rpc_close(rpc); /* close_cb schedules the reconnect */
		return;
	}
	snprintf(sv->host_name, sizeof(sv->host_name), "%s", hr.name ? hr.name : "");
	sv->heartbeat_ms = (uint64_t)hr.heartbeat_ms;
	sv->ready = true;
	sv->hellos++;
	sv_thaw_wait(sv); /* frozen: a vm.thaw must follow */
	orch_dialer_ready(sv->dialer);
	orch_rpc_set_state(rpc, ORCH_STATE_READY);
	orch_timer_disarm(sv->heartbeat);
	orch_timer_free(sv->heartbeat);
	sv->heartbeat = NULL;
	if (orch_timer_add(sv->loop, sv->heartbeat_ms, sv->heartbeat_ms, heartbeat_cb, sv,
			   &sv->heartbeat) < 0)
		sv->heartbeat = NULL;
	orch_log(ORCH_LOG_INFO, "channel", "hello accepted", "host", sv->host_name, NULL);
	sv_extras_set_rpc(sv, rpc);
	send_exits(sv);
	sv_tasks_flush_all(sv);
}

static int send_hello(struct supervisor *sv)
{
	struct orch_hello_running running[ORCH_MAX_SLOTS];
	size_t n = 0;
	for (unsigned i = 0; i < sv->cfg->slots; i++)
		if (sv->slots[i].task)
			running[n++] =
				(struct orch_hello_running){sv_task_id(sv->slots[i].task), i};
	_cleanup_json_ json_t *caps = sv_capabilities(sv);
	struct orch_hello h = {
		.protocol = ORCH_PROTOCOL_VERSION,
		.supervisor = ORCH_VERSION,
		.slots = sv->cfg->slots,
		.boot_id = sv->boot_id,
		.capabilities = caps,
		.n_running = n,
		.running = running,
	};
	json_t *p = orch_hello_build(&h);
	if (!p)
		return -ENOMEM;
	/* Frozen, a hello may be lost in the instant a snapshot is taken: ask again. */
	return orch_rpc_call(sv->rpc, "hello", p, sv->frozen ? SV_FROZEN_HELLO_TIMEOUT_MS : 0,
			     hello_reply_cb, sv);
}

/* A connection to the host: the rpc, then hello. */
static int on_connected(void *data, int fd, struct orch_error *err)
{
	struct supervisor *sv = data;
	sv_thaw_before_hello(sv);
	struct orch_rpc_opts opts = {.max_queued = 4 * 1024 * 1024, .name = "host"};
	int r = orch_rpc_new(sv->loop, fd, sv->methods, sv->n_methods, &opts, sv, &sv->rpc);
	if (r < 0) {
		close(fd);
		return orch_errno(err, r, "cannot set up the channel");
	}
	orch_rpc_set_close_cb(sv->rpc, close_cb);
	orch_rpc_set_drain_cb(sv->rpc, drain_cb);
	orch_rpc_set_state(sv->rpc, ORCH_STATE_NEW);
	sv->ready = false;
	if ((r = send_hello(sv)) < 0) {
		orch_rpc_close(sv->rpc); /* close_cb: dialled again */
		return 0;
	}
	return 0;
}

static void on_dial_failed(void *data, const struct orch_error *err)
{
	struct supervisor *sv = data;
	orch_log(sv->frozen ? ORCH_LOG_DEBUG : ORCH_LOG_WARN, "channel", "cannot reach the host",
		 "error", err->msg, NULL);
}

/* An inherited fd (fd:N) cannot be dialled again: the host (orchd) is gone. */
static void on_gone(void *data)
{
	struct supervisor *sv = data;
	orch_log(ORCH_LOG_WARN, "channel", "host channel closed; exiting", NULL);
	sv->quitting = true;
	orch_loop_quit(sv->loop);
}

static const struct orch_dialer_ops dialer_ops = {
	.connected = on_connected,
	.failed = on_dial_failed,
	.gone = on_gone,
};

int sv_channel_start(struct supervisor *sv)
{
	/* The table: our methods, then those of the extras (LLM endpoint). */
	sv->n_methods = 0;
	for (size_t i = 0; i < ELEMENTSOF(own_methods); i++)
		sv->methods[sv->n_methods++] = own_methods[i];
	/* With --llm-connect, llm.* travel on their own channel (llm-channel.c) only. */
	size_t n_extras = sv->cfg->llm_connect ? 0 : sv_extras_n_methods;
	for (size_t i = 0; i < n_extras && sv->n_methods < SV_MAX_METHODS; i++)
		sv->methods[sv->n_methods++] = sv_extras_methods[i];
	return orch_dialer_new(sv->loop, &sv->addr, NULL, &dialer_ops, sv, &sv->dialer);
}

void sv_channel_stop(struct supervisor *sv)
{
	orch_dialer_free(sv->dialer);
	sv->dialer = NULL;
	orch_timer_free(sv->heartbeat);
	sv->heartbeat = NULL;
	sv_extras_set_rpc(sv, NULL);
	if (sv->rpc) {
		struct orch_rpc *rpc = sv->rpc;
		sv->rpc = NULL;
		orch_rpc_close(rpc); /* fails pending exits (kept) */
		orch_rpc_unref(rpc);
	}
	while (sv->exits)
		exit_remove(sv, sv->exits);
}
