/* SPDX-License-Identifier: Apache-2.0 */
/* llm.request (and its result), llm.chunk, llm.done, llm.cancel (docs/PROTOCOL.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "schema-internal.h"
#include "schema.h"

/* ---- llm.request ---- */

static int check_path(json_t *v, struct orch_error *err)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	int r;

	if ((r = check_string("llm.request", "path", v, ORCH_MAX_LLM_PATH_LEN, false, err)) < 0)
		return r;
	if (s[0] != '/')
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"llm.request: member 'path' must start with '/'");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"llm.request: member 'path' must be printable ASCII "
					"without spaces");
	return 0;
}

int orch_llm_request_parse(json_t *params, struct orch_llm_request *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"req", M_STR, true},	 {"slot", M_INT, true}, {"task", M_STR, false},
		{"method", M_STR, true}, {"path", M_STR, true}, {"headers", M_OBJ, false},
		{"body", M_STR, false},
	};
	struct orch_llm_request q = {0};
	json_t *path, *body = NULL;
	json_int_t slot;
	int r;

	if ((r = check_members(params, "llm.request", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "llm.request", err, "{s:s,s:I,s?s,s:s,s:o,s?o,s?o}", "req",
			       &q.req, "slot", &slot, "task", &q.task, "method", &q.method, "path",
			       &path, "headers", &q.headers, "body", &body)) < 0 ||
	    (r = check_id("llm.request", "req", q.req, err)) < 0 ||
	    (r = check_range("llm.request", "slot", slot, 0, ORCH_MAX_SLOTS - 1, err)) < 0 ||
	    (q.task && (r = check_id("llm.request", "task", q.task, err)) < 0) ||
	    (r = check_path(path, err)) < 0 ||
	    (q.headers && (r = check_headers("llm.request", "headers", q.headers, err)) < 0))
		return r;
	if (strcmp(q.method, "GET") != 0 && strcmp(q.method, "POST") != 0)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"llm.request: member 'method' must be \"GET\" or \"POST\"");
	q.slot = slot;
	q.path = json_string_value(path);
	if (body && (r = decode_b64_field("llm.request", "body", body, ORCH_MAX_LLM_BODY, &q.body,
					  &q.body_len, err)) < 0)
		return r;
	*ret = q;
	return 0;
}

void orch_llm_request_done(struct orch_llm_request *r)
{
	if (!r)
		return;
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

json_t *orch_llm_request_build(const struct orch_llm_request *r)
{
	_cleanup_free_ char *b64 =
		orch_b64_encode(r->body ? (const void *)r->body : "", r->body_len);
	json_t *msg;

	if (!b64)
		return NULL;
	msg = json_pack("{s:s,s:I,s:s,s:s,s:o,s:s}", "req", r->req, "slot", (json_int_t)r->slot,
			"method", r->method, "path", r->path, "headers",
			r->headers ? json_incref(r->headers) : json_object(), "body", b64);
	if (msg && r->task && json_object_set_new(msg, "task", json_string(r->task)) < 0) {
		json_decref(msg);
		return NULL;
	}
	return msg;
}

/* ---- llm.request result ---- */

int orch_llm_response_parse(json_t *result, struct orch_llm_response *ret, struct orch_error *err)
{
	static const struct member m[] = {{"status", M_INT, true}, {"headers", M_OBJ, true}};
	json_int_t status;
	json_t *headers;
	int r;

	if ((r = check_members(result, "llm.request result", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(result, "llm.request result", err, "{s:I,s:o}", "status", &status,
			       "headers", &headers)) < 0 ||
	    (r = check_range("llm.request result", "status", status, 100, 599, err)) < 0 ||
	    (r = check_headers("llm.request result", "headers", headers, err)) < 0)
		return r;
	ret->status = status;
	ret->headers = headers;
	return 0;
}

json_t *orch_llm_response_build(const struct orch_llm_response *r)
{
	return json_pack("{s:I,s:o}", "status", (json_int_t)r->status, "headers",
			 r->headers ? json_incref(r->headers) : json_object());
}

/* ---- llm.chunk ---- */

int orch_llm_chunk_parse(json_t *params, struct orch_llm_chunk *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"req", M_STR, true}, {"seq", M_INT, true}, {"data", M_STR, true}};
	struct orch_llm_chunk c = {0};
	json_int_t seq;
	json_t *data;
	int r;

	if ((r = check_members(params, "llm.chunk", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "llm.chunk", err, "{s:s,s:I,s:o}", "req", &c.req, "seq",
			       &seq, "data", &data)) < 0 ||
	    (r = check_id("llm.chunk", "req", c.req, err)) < 0 ||
	    (r = check_range("llm.chunk", "seq", seq, 0, ORCH_MAX_SEQ, err)) < 0 ||
	    (r = decode_b64_field("llm.chunk", "data", data, ORCH_MAX_LLM_CHUNK, &c.data, &c.len,
				  err)) < 0)
		return r;
	c.seq = seq;
	*ret = c;
	return 0;
}

void orch_llm_chunk_done(struct orch_llm_chunk *c)
{
	if (!c)
		return;
	free(c->data);
	c->data = NULL;
	c->len = 0;
}

json_t *orch_llm_chunk_build(const char *req, int64_t seq, const void *data, size_t len)
{
	_cleanup_free_ char *b64 = orch_b64_encode(data ? data : "", len);

	if (!b64)
		return NULL;
	return json_pack("{s:s,s:I,s:s}", "req", req, "seq", (json_int_t)seq, "data", b64);
}

/* ---- llm.done ---- */

int orch_llm_done_parse(json_t *params, struct orch_llm_done *ret, struct orch_error *err)
{
	static const struct member m[] = {{"req", M_STR, true}, {"error", M_OBJ, false}};
	static const struct member em[] = {{"code", M_INT, true}, {"message", M_STR, true}};
	struct orch_llm_done d = {0};
	json_t *error = NULL, *msg;
	json_int_t code;
	int r;

	if ((r = check_members(params, "llm.done", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "llm.done", err, "{s:s,s?o}", "req", &d.req, "error",
			       &error)) < 0 ||
	    (r = check_id("llm.done", "req", d.req, err)) < 0)
		return r;
	if (error) {
		if ((r = check_members(error, "llm.done.error", em, ELEMENTSOF(em), err)) < 0 ||
		    (r = strict_unpack(error, "llm.done.error", err, "{s:I,s:o}", "code", &code,
				       "message", &msg)) < 0 ||
		    (r = check_range("llm.done.error", "code", code, INT32_MIN, INT32_MAX, err)) <
			    0 ||
		    (r = check_string("llm.done.error", "message", msg, ORCH_MAX_REASON_LEN, true,
				      err)) < 0)
			return r;
		if (code == 0)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"llm.done.error: member 'code' must not be 0");
		d.error_code = code;
		d.error_message = json_string_value(msg);
	}
	*ret = d;
	return 0;
}

json_t *orch_llm_done_build(const struct orch_llm_done *d)
{
	if (d->error_code == 0)
		return json_pack("{s:s}", "req", d->req);
	return json_pack("{s:s,s:{s:I,s:s}}", "req", d->req, "error", "code",
			 (json_int_t)d->error_code, "message",
			 d->error_message ? d->error_message : "");
}

/* ---- llm.cancel ---- */

int orch_llm_cancel_parse(json_t *params, struct orch_llm_cancel *ret, struct orch_error *err)
{
	static const struct member m[] = {{"req", M_STR, true}};
	const char *req;
	int r;

	if ((r = check_members(params, "llm.cancel", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "llm.cancel", err, "{s:s}", "req", &req)) < 0 ||
	    (r = check_id("llm.cancel", "req", req, err)) < 0)
		return r;
	ret->req = req;
	return 0;
}

json_t *orch_llm_cancel_build(const struct orch_llm_cancel *c)
{
	return json_pack("{s:s}", "req", c->req);
}
