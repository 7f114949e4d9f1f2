/* SPDX-License-Identifier: Apache-2.0 */
/* Incoming JSON-RPC 2.0 messages: parse, validate, batch, dispatch to the method table,
 * match responses to pending calls. Everything here is peer input: every failure is an
 * error reply or a counted drop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "rpc-internal.h"

/* ---- batches ---- */

static void batch_maybe_send(struct rpc_batch *b)
{
	struct orch_rpc *rpc = b->rpc;
	int r;

	if (!b->sealed || b->outstanding > 0 || b->sent)
		return;
	b->sent = true;
	if (json_array_size(b->responses) == 0 || rpc->closed)
		return; /* a batch of notifications gets no reply at all */
	r = rpc_send_json(rpc, b->responses, true);
	if (r == -EMSGSIZE)
		r = rpc_send_json_stolen(rpc,
					 orch_rpc_make_error(NULL, ORCH_RPC_INTERNAL_ERROR,
							     "batch response exceeds the maximum "
							     "message size",
							     NULL),
					 true);
	else if (r == -ENOBUFS)
		rpc_fail_later(rpc, -ENOBUFS);
}

void rpc_batch_answered(struct rpc_batch *b)
{
	b->outstanding--;
	batch_maybe_send(b);
}

void rpc_batch_unref(struct rpc_batch *b)
{
	if (!b || --b->ref > 0)
		return;
	json_decref(b->responses);
	free(b);
}

/* An error about a message that has no request to answer through (parse errors, invalid
 * requests): into the batch, or sent alone. */
static void emit_error(struct orch_rpc *rpc, struct rpc_batch *b, json_t *id, int code,
		       const char *msg)
{
	json_t *e = orch_rpc_make_error(id, code, msg, NULL);

	rpc->stats.invalid_messages++;
	if (b) {
		if (e)
			json_array_append_new(b->responses, e);
		return;
	}
	(void)rpc_send_json_stolen(rpc, e, true);
}

static bool id_valid(json_t *id)
{
	return json_is_string(id) || json_is_number(id) || json_is_null(id);
}

static const struct orch_rpc_method *find_method(struct orch_rpc *rpc, const char *name)
{
	for (size_t i = 0; i < rpc->n_methods; i++)
		if (strcmp(rpc->methods[i].name, name) == 0)
			return &rpc->methods[i];
	return NULL;
}

/* ---- requests and notifications ---- */

static void handle_request(struct orch_rpc *rpc, json_t *msg, struct rpc_batch *b)
{
	json_t *jsonrpc = NULL, *method = NULL, *params = NULL, *id = NULL;
	const struct orch_rpc_method *m;
	struct orch_rpc_req *req;
	struct orch_error err;
	const char *key, *name;
	json_t *v;
	bool has_id;
	char buf[160];
	int r;

	json_object_foreach(msg, key, v)
	{
		if (strcmp(key, "jsonrpc") == 0)
			jsonrpc = v;
		else if (strcmp(key, "method") == 0)
			method = v;
		else if (strcmp(key, "params") == 0)
			params = v;
		else if (strcmp(key, "id") == 0)
			id = v;
		else {
			emit_error(rpc, b, NULL, ORCH_RPC_INVALID_REQUEST,
				   "Invalid Request: unknown member in request");
			return;
		}
	}
	has_id = id != NULL;
	if (has_id && !id_valid(id)) {
		emit_error(rpc, b, NULL, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: id must be a string, number or null");
		return;
	}
	if (!json_is_string(jsonrpc) || strcmp(json_string_value(jsonrpc), "2.0") != 0) {
		emit_error(rpc, b, id, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: jsonrpc must be \"2.0\"");
		return;
	}
	if (!json_is_string(method)) {
		emit_error(rpc, b, id, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: method must be a string");
		return;
	}
	if (params && !json_is_object(params) && !json_is_array(params)) {
		emit_error(rpc, b, id, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: params must be an object or an array");
		return;
	}
	name = json_string_value(method);
	m = find_method(rpc, name);
	if (!has_id) {
		if (!m || !(m->flags & ORCH_RPC_M_NOTIFY) ||
		    (m->states && !(m->states & rpc->state))) {
			rpc->stats.dropped_notifications++;
			return; /* notifications are never answered, not even with errors */
		}
		orch_err_clear(&err);
		(void)m->handler(rpc, NULL, params, rpc->data, &err);
		return;
	}
	if (!m) {
		emit_error(rpc, b, id, ORCH_RPC_METHOD_NOT_FOUND, "Method not found");
		return;
	}
	if (!(m->flags & ORCH_RPC_M_REQUEST)) {
		snprintf(buf, sizeof(buf),
			 "Invalid Request: %.64s is a notification, not a request", name);
		emit_error(rpc, b, id, ORCH_RPC_INVALID_REQUEST, buf);
		return;
	}
	if (m->states && !(m->states & rpc->state)) {
		snprintf(buf, sizeof(buf), "%.64s is not allowed in this state", name);
		emit_error(rpc, b, id, ORCH_RPC_NOT_ALLOWED, buf);
		return;
	}
	if (rpc->n_inflight >= rpc->opts.max_inflight) {
		rpc->stats.busy_refusals++;
		emit_error(rpc, b, id, ORCH_RPC_BUSY, "too many requests in flight");
		return;
	}

	size_t nlen = strlen(name);
	req = calloc(1, sizeof(*req) + nlen + 1);
	if (!req) {
		emit_error(rpc, b, id, ORCH_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	req->ref = 1;
	req->rpc = orch_rpc_ref(rpc);
	req->id = json_incref(id);
	memcpy(req->method, name, nlen + 1);
	if (b) {
		req->batch = b;
		b->ref++;
		b->outstanding++;
	}
	rpc->n_inflight++;

	orch_err_clear(&err);
	r = m->handler(rpc, req, params, rpc->data, &err);
	if (r < 0 && !req->answered) {
		int code = orch_rpc_is_rpc_code(err.code) ? err.code
			   : orch_rpc_is_rpc_code(r)	  ? r
							  : ORCH_RPC_INTERNAL_ERROR;
		(void)orch_rpc_reply_error(req, code, err.msg[0] ? err.msg : "Internal error",
					   NULL);
	}
	orch_rpc_req_unref(req);
}

/* ---- responses ---- */

static void handle_response(struct orch_rpc *rpc, json_t *msg)
{
	json_t *jsonrpc = NULL, *result = NULL, *error = NULL, *id = NULL;
	json_t *code = NULL, *message = NULL, *edata = NULL;
	struct rpc_pending *p;
	struct orch_error err;
	const char *key;
	json_t *v;
	bool ok = true;

	json_object_foreach(msg, key, v)
	{
		if (strcmp(key, "jsonrpc") == 0)
			jsonrpc = v;
		else if (strcmp(key, "result") == 0)
			result = v;
		else if (strcmp(key, "error") == 0)
			error = v;
		else if (strcmp(key, "id") == 0)
			id = v;
		else
			ok = false;
	}
	if (!json_is_integer(id)) {
		/* Ours are integers; null means the peer could not read something we sent. */
		rpc->stats.dropped_responses++;
		return;
	}
	p = rpc_pending_take(rpc, json_integer_value(id));
	if (!p) {
		rpc->stats.dropped_responses++; /* unknown, timed out, or a duplicate */
		return;
	}
	if (!json_is_string(jsonrpc) || strcmp(json_string_value(jsonrpc), "2.0") != 0)
		ok = false;
	if ((result != NULL) == (error != NULL))
		ok = false;
	if (error) {
		json_object_foreach(error, key, v)
		{
			if (strcmp(key, "code") == 0)
				code = v;
			else if (strcmp(key, "message") == 0)
				message = v;
			else if (strcmp(key, "data") == 0)
				edata = v;
			else
				ok = false;
		}
		if (!json_is_integer(code) || !json_is_string(message) ||
		    json_integer_value(code) < INT32_MIN || json_integer_value(code) > INT32_MAX)
			ok = false;
	}
	if (!ok) {
		rpc->stats.invalid_messages++;
		orch_err(&err, ORCH_RPC_INVALID_REQUEST, "malformed response to %s from peer",
			 p->method);
		if (p->cb)
			p->cb(rpc, NULL, &err, NULL, p->data);
	} else if (error) {
		orch_err(&err, (int)json_integer_value(code), "%s", json_string_value(message));
		if (p->cb)
			p->cb(rpc, NULL, &err, edata, p->data);
	} else if (p->cb) {
		p->cb(rpc, result, NULL, NULL, p->data);
	}
	free(p);
}

/* ---- one message, one line ---- */

static void handle_message(struct orch_rpc *rpc, json_t *msg, struct rpc_batch *b)
{
	if (!json_is_object(msg)) {
		emit_error(rpc, b, NULL, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: not an object");
		return;
	}
	if (json_object_get(msg, "method"))
		handle_request(rpc, msg, b);
	else if (json_object_get(msg, "result") || json_object_get(msg, "error"))
		handle_response(rpc, msg); /* never answered, even when malformed */
	else {
		json_t *id = json_object_get(msg, "id");
		emit_error(rpc, b, id && id_valid(id) ? id : NULL, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: no method");
	}
}

static void handle_batch(struct orch_rpc *rpc, json_t *arr)
{
	struct rpc_batch *b;
	size_t i;
	json_t *v;

	if (json_array_size(arr) == 0) {
		emit_error(rpc, NULL, NULL, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: empty batch");
		return;
	}
	if (json_array_size(arr) > RPC_MAX_BATCH) {
		emit_error(rpc, NULL, NULL, ORCH_RPC_INVALID_REQUEST,
			   "Invalid Request: batch too large");
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b || !(b->responses = json_array())) {
		free(b);
		emit_error(rpc, NULL, NULL, ORCH_RPC_INTERNAL_ERROR, "out of memory");
		return;
	}
	b->ref = 1;
	b->rpc = rpc;
	json_array_foreach(arr, i, v)
	{
		if (rpc->closed)
			break;
		handle_message(rpc, v, b);
	}
	b->sealed = true;
	batch_maybe_send(b);
	rpc_batch_unref(b);
}

int rpc_on_line(void *data, const char *line, size_t len)
{
	struct orch_rpc *rpc = data;
	_cleanup_json_ json_t *root = NULL;
	json_error_t jerr;
	size_t i;

	if (rpc->closed || rpc->fail_code)
		return -ECANCELED;
	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			break;
	if (i == len)
		return 0; /* blank line */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		char msg[200];
		snprintf(msg, sizeof(msg), "Parse error: %.150s", jerr.text);
		emit_error(rpc, NULL, NULL, ORCH_RPC_PARSE_ERROR, msg);
	} else if (json_is_array(root)) {
		handle_batch(rpc, root);
	} else {
		handle_message(rpc, root, NULL);
	}
	return rpc->closed || rpc->fail_code ? -ECANCELED : 0;
}

void rpc_on_frame_error(void *data, int code, const char *msg)
{
	struct orch_rpc *rpc = data;
	char buf[128];

	if (code != -EMSGSIZE || rpc->closed)
		return; /* -EPIPE (EOF mid-line) is followed by the close itself */
	rpc->stats.oversized_lines++;
	snprintf(buf, sizeof(buf), "Invalid Request: message exceeds %zu bytes",
		 rpc->opts.max_line);
	emit_error(rpc, NULL, NULL, ORCH_RPC_INVALID_REQUEST, buf);
	rpc->stats.invalid_messages--; /* counted as oversized, not twice */
}
