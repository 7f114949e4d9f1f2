/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: bytes from a hostile peer through framing, JSON-RPC parsing and dispatch
 * into a method table whose handlers run every schema parser. The input is written to
 * one end of a socketpair, the other end is an orch_rpc that also has outgoing calls
 * pending (ids 1..3), so responses, duplicates and batches all reach real code. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "rpc.h"
#include "schema.h"

struct fz {
	struct orch_rpc_req *held[4];
	int n_held;
	bool closed;
};

static int h_schema(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	const char *m = req ? orch_rpc_req_method(req) : NULL;
	int r = 0;

	if (!params)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params missing");
	if (!m || strcmp(m, "hello") == 0) {
		struct orch_hello h;
		if ((r = orch_hello_parse(params, &h, err)) >= 0) {
			json_decref(orch_hello_build(&h));
			orch_hello_done(&h);
			orch_rpc_set_state(rpc, ORCH_STATE_READY);
		}
		struct orch_hello_reply hr;
		(void)orch_hello_reply_parse(params, &hr, NULL);
		struct orch_heartbeat hb;
		(void)orch_heartbeat_parse(params, &hb, NULL);
	} else if (strcmp(m, "task.run") == 0) {
		struct orch_task_run t;
		if ((r = orch_task_run_parse(params, &t, err)) >= 0) {
			json_decref(orch_task_run_build(&t));
			orch_task_run_done(&t);
		}
	} else if (strcmp(m, "task.exit") == 0) {
		struct orch_task_exit e;
		struct orch_task_cancel c;
		if ((r = orch_task_exit_parse(params, &e, err)) >= 0)
			json_decref(orch_task_exit_build(&e));
		(void)orch_task_cancel_parse(params, &c, NULL);
	} else if (strcmp(m, "llm.request") == 0) {
		struct orch_llm_request q;
		struct orch_llm_response resp;
		if ((r = orch_llm_request_parse(params, &q, err)) >= 0) {
			json_decref(orch_llm_request_build(&q));
			orch_llm_request_done(&q);
		}
		(void)orch_llm_response_parse(params, &resp, NULL);
	}
	if (r < 0)
		return r;
	return req ? orch_rpc_reply(req, json_true()) : 0;
}

static int h_notify(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct orch_task_output o;
	struct orch_llm_chunk c;
	struct orch_llm_done d;
	struct orch_llm_cancel x;

	if (orch_task_output_parse(params, &o, NULL) >= 0)
		orch_task_output_done(&o);
	if (orch_llm_chunk_parse(params, &c, NULL) >= 0)
		orch_llm_chunk_done(&c);
	(void)orch_llm_done_parse(params, &d, NULL);
	(void)orch_llm_cancel_parse(params, &x, NULL);
	return 0;
}

static int h_hold(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	struct fz *z = data;

	if (z->n_held == (int)ELEMENTSOF(z->held))
		return orch_err(err, ORCH_RPC_BUSY, "holding enough");
	z->held[z->n_held++] = orch_rpc_req_ref(req);
	return 0;
}

static int h_release(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err)
{
	struct fz *z = data;

	while (z->n_held > 0) {
		struct orch_rpc_req *h = z->held[--z->n_held];
		(void)orch_rpc_reply_error(h, ORCH_RPC_CONFLICT, "released", json_incref(params));
		orch_rpc_req_unref(h);
	}
	return req ? orch_rpc_reply(req, NULL) : 0;
}

static int h_close(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		   struct orch_error *err)
{
	orch_rpc_close(rpc);
	return 0;
}

static const struct orch_rpc_method methods[] = {
	{"hello", ORCH_RPC_M_REQUEST, ORCH_STATE_NEW, h_schema},
	{"task.run", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, h_schema},
	{"task.exit", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, h_schema},
	{"llm.request", ORCH_RPC_M_REQUEST, 0, h_schema},
	{"heartbeat", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, h_schema},
	{"task.output", ORCH_RPC_M_NOTIFY, 0, h_notify},
	{"hold", ORCH_RPC_M_REQUEST, 0, h_hold},
	{"release", ORCH_RPC_M_REQUEST | ORCH_RPC_M_NOTIFY, 0, h_release},
	{"close", ORCH_RPC_M_REQUEST | ORCH_RPC_M_NOTIFY, 0, h_close},
};

static void on_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
		     json_t *err_data, void *data)
{
	if (result)
		free(json_dumps(result, JSON_ENCODE_ANY));
}

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	((struct fz *)data)->closed = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_rpc_opts opts = {.max_line = 512, .max_inflight = 8, .max_queued = 1 << 16};
	struct orch_loop *loop = NULL;
	struct orch_rpc *rpc = NULL;
	struct fz z = {0};
	size_t off = 0;
	bool shut = false;
	int sv[2];
	char sink[65536];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	if (orch_loop_new(&loop) < 0 ||
	    orch_rpc_new(loop, sv[0], methods, ELEMENTSOF(methods), &opts, &z, &rpc) < 0)
		abort();
	orch_rpc_set_close_cb(rpc, on_close);
	for (int i = 0; i < 3; i++)
		(void)orch_rpc_call(rpc, "x", json_pack("[i]", i), 0, on_reply, NULL);
	while (!z.closed) {
		if (off < size) {
			ssize_t n = write(sv[1], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
		}
		if (off == size && !shut) {
			shutdown(sv[1], SHUT_WR); /* EOF once everything is in */
			shut = true;
		}
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
		if (orch_loop_run_once(loop, 100) < 0)
			abort();
	}
	for (int i = 0; i < z.n_held; i++)
		orch_rpc_req_unref(z.held[i]);
	orch_rpc_unref(rpc);
	close(sv[1]);
	orch_loop_free(loop);
	return 0;
}
