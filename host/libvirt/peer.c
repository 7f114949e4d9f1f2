/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal host end of a supervisor's control channel (peer.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "peer.h"

struct lv_peer {
	struct orch_loop *loop;
	struct orch_rpc *rpc;
	char name[65];
	void (*on_change)(struct lv_peer *p, void *data);
	void *data;
	struct lv_peer_state st;
	struct lv_peer_task task;
	unsigned n_tasks;
	bool freeing;
};

struct call {
	struct lv_peer *p;
	bool *done, *ok;
	bool thaw;
};

static void changed(struct lv_peer *p)
{
	if (p->on_change && !p->freeing)
		p->on_change(p, p->data);
}

static int m_hello(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	struct lv_peer *p = data;
	struct orch_hello h = {0};
	struct orch_hello_reply rep = {
		.protocol = ORCH_PROTOCOL_VERSION, .heartbeat_ms = 5000, .name = p->name};
	int r;

	if ((r = orch_hello_parse(params, &h, err)) < 0)
		return r;
	p->st.hello_ms = orch_now_ms();
	snprintf(p->st.boot_id, sizeof(p->st.boot_id), "%s", h.boot_id);
	snprintf(p->st.hello_boot_id, sizeof(p->st.hello_boot_id), "%s", h.boot_id);
	p->st.slots = h.slots;
	p->st.frozen = json_is_true(json_object_get(h.capabilities, "frozen"));
	orch_hello_done(&h);
	if ((r = orch_rpc_reply(req, orch_hello_reply_build(&rep))) < 0)
		return orch_errno(err, r, "cannot answer hello");
	orch_rpc_set_state(rpc, ORCH_STATE_READY);
	p->st.hello = true;
	changed(p);
	return 0;
}

static int m_heartbeat(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	struct orch_heartbeat hb;
	return orch_heartbeat_parse(params, &hb, err);
}

static int m_output(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct lv_peer *p = data;
	struct orch_task_output o;
	int r;

	if ((r = orch_task_output_parse(params, &o, err)) < 0)
		return r;
	struct lv_peer_task *t = &p->task;
	if (!strcmp(o.task, t->id)) {
		size_t n = o.len;
		if (!t->first_output_ms)
			t->first_output_ms = orch_now_ms();
		if (n > sizeof(t->out) - 1 - t->out_len)
			n = sizeof(t->out) - 1 - t->out_len;
		memcpy(t->out + t->out_len, o.data, n);
		t->out_len += n;
		t->out[t->out_len] = 0;
	}
	orch_task_output_done(&o);
	changed(p);
	return 0;
}

static int m_exit(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	struct lv_peer *p = data;
	struct orch_task_exit e;
	int r;

	if ((r = orch_task_exit_parse(params, &e, err)) < 0)
		return r;
	if (!strcmp(e.task, p->task.id) && !p->task.done) {
		p->task.done = true;
		p->task.status = e.status;
		p->task.exit_code = e.exit_code;
		p->task.exit_ms = orch_now_ms();
	}
	r = orch_rpc_reply(req, json_object());
	changed(p);
	return r;
}

static const struct orch_rpc_method methods[] = {
	{"hello", ORCH_RPC_M_REQUEST, ORCH_STATE_NEW, m_hello},
	{"heartbeat", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, m_heartbeat},
	{"task.output", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, m_output},
	{"task.exit", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, m_exit},
};

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	struct lv_peer *p = data;
	p->st.closed = true;
	changed(p);
}

int lv_peer_new(struct orch_loop *loop, int fd, const char *name,
		void (*on_change)(struct lv_peer *p, void *data), void *data, struct lv_peer **ret,
		struct orch_error *err)
{
	struct orch_rpc_opts opts = {.max_line = ORCH_PROTOCOL_MAX_LINE, .name = name};
	struct lv_peer *p = calloc(1, sizeof(*p));
	int r;

	if (!p) {
		close(fd);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	p->loop = loop;
	p->st.warm_ms = -1;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->on_change = on_change;
	p->data = data;
	if ((r = orch_rpc_new(loop, fd, methods, ELEMENTSOF(methods), &opts, p, &p->rpc)) < 0) {
		close(fd);
		free(p);
		return orch_errno(err, r, "cannot set up the channel to %s", name);
	}
	orch_rpc_set_close_cb(p->rpc, on_close);
	orch_rpc_set_state(p->rpc, ORCH_STATE_NEW);
	*ret = p;
	return 0;
}

void lv_peer_free(struct lv_peer *p)
{
	if (!p)
		return;
	p->freeing = true;
	orch_rpc_set_close_cb(p->rpc, NULL);
	orch_rpc_close(p->rpc); /* pending calls end with -32004 now */
	orch_rpc_unref(p->rpc);
	free(p);
}

const struct lv_peer_state *lv_peer_state(const struct lv_peer *p)
{
	return &p->st;
}

struct orch_rpc *lv_peer_rpc(const struct lv_peer *p)
{
	return p->rpc;
}

static void on_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *rerr,
		     json_t *err_data, void *data)
{
	_cleanup_free_ struct call *c = data;
	struct orch_error perr = {0};
	struct orch_vm_thaw_result res = {0};
	bool ok = !rerr;

	if (ok && c->thaw && orch_vm_thaw_result_parse(result, &res, &perr) < 0)
		ok = false;
	if (ok && res.boot_id) {
		snprintf(c->p->st.boot_id, sizeof(c->p->st.boot_id), "%s", res.boot_id);
		c->p->st.warm_ms = res.warm_ms;
	}
	if (c->ok)
		*c->ok = ok;
	*c->done = true;
	changed(c->p);
}

static int call(struct lv_peer *p, const char *method, json_t *params, bool thaw, bool *done,
		bool *ok)
{
	struct call *c = malloc(sizeof(*c));
	int r;

	*done = false;
	if (!c || !params) {
		free(c);
		json_decref(params);
		return -ENOMEM;
	}
	*c = (struct call){p, done, ok, thaw};
	if ((r = orch_rpc_call(p->rpc, method, params, 30000, on_reply, c)) < 0)
		free(c);
	return r;
}

int lv_peer_freeze(struct lv_peer *p, bool *done, bool *ok)
{
	return call(p, "vm.freeze", json_object(), false, done, ok);
}

int lv_peer_thaw(struct lv_peer *p, const struct orch_vm_thaw *t, bool *done, bool *ok)
{
	return call(p, "vm.thaw", orch_vm_thaw_build(t), true, done, ok);
}

struct run_call {
	struct lv_peer *p;
	unsigned n; /* the task's number: the reply may come after the next task.run */
};

/* A refused task.run (a frozen or template supervisor, a busy slot) ends the task. */
static void on_run_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *rerr,
			 json_t *err_data, void *data)
{
	_cleanup_free_ struct run_call *c = data;
	struct lv_peer_task *t = &c->p->task;

	if (!rerr || c->n != c->p->n_tasks || t->done)
		return;
	t->done = true;
	t->status = ORCH_EXIT_FAILED;
	t->exit_code = -1;
	t->out_len = (size_t)snprintf(t->out, sizeof(t->out), "task.run refused: %s", rerr->msg);
	if (t->out_len >= sizeof(t->out))
		t->out_len = sizeof(t->out) - 1;
	t->exit_ms = orch_now_ms();
	changed(c->p);
}

struct lv_peer_task *lv_peer_run(struct lv_peer *p, int64_t slot, const char *script,
				 int64_t memory_bytes)
{
	struct lv_peer_task *t = &p->task;
	const char *argv[] = {"/bin/sh", "-c", script, NULL};

	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "peer-%u.1", ++p->n_tasks);
	struct orch_task_run run = {
		.task = t->id,
		.slot = slot,
		.argc = 3,
		.argv = argv,
		.limits = {.memory_bytes = memory_bytes},
	};
	t->sent_ms = orch_now_ms();
	struct run_call *c = malloc(sizeof(*c));
	if (c)
		*c = (struct run_call){p, p->n_tasks};
	if (!c || orch_rpc_call(p->rpc, "task.run", orch_task_run_build(&run), 30000, on_run_reply,
				c) < 0) {
		free(c);
		t->done = true;
		t->status = ORCH_EXIT_FAILED;
		t->exit_code = -1;
	}
	return t;
}

bool lv_peer_wait(struct orch_loop *loop, const bool *flag, uint64_t timeout_ms)
{
	uint64_t deadline = orch_now_ms() + timeout_ms;
	while (!*flag && orch_now_ms() < deadline)
		orch_loop_run_once(loop, 20);
	return *flag;
}

int lv_dial_unix(const char *path, uint64_t timeout_ms, struct orch_error *err)
{
	uint64_t deadline = orch_now_ms() + timeout_ms;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(path) >= sizeof(sa.sun_path))
		return orch_err(err, -ENAMETOOLONG, "socket path %s is too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		_cleanup_close_ int fd =
			socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return orch_errno(err, -errno, "socket");
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return TAKE_FD(fd);
		int r = -errno;
		if (orch_now_ms() >= deadline)
			return orch_errno(err, r, "cannot connect to %s", path);
		usleep(2000);
	}
}
