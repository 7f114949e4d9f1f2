/* SPDX-License-Identifier: Apache-2.0 */
/* The egress lane's frames and control messages (egress.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "egress.h"

void orch_egress_hdr_put(uint8_t out[ORCH_EGRESS_HDR_LEN], uint8_t type, uint32_t conn,
			 uint32_t len)
{
	out[0] = type;
	out[1] = 0;
	out[2] = 0;
	out[3] = 0;
	out[4] = (uint8_t)(conn >> 24);
	out[5] = (uint8_t)(conn >> 16);
	out[6] = (uint8_t)(conn >> 8);
	out[7] = (uint8_t)conn;
	out[8] = (uint8_t)(len >> 24);
	out[9] = (uint8_t)(len >> 16);
	out[10] = (uint8_t)(len >> 8);
	out[11] = (uint8_t)len;
}

const char *orch_egress_type_name(uint8_t type)
{
	switch (type) {
	case ORCH_EGRESS_OPEN:
		return "open";
	case ORCH_EGRESS_VERDICT:
		return "verdict";
	case ORCH_EGRESS_DATA:
		return "data";
	case ORCH_EGRESS_CREDIT:
		return "credit";
	case ORCH_EGRESS_EOF:
		return "eof";
	case ORCH_EGRESS_CLOSE:
		return "close";
	case ORCH_EGRESS_HELLO:
		return "hello";
	default:
		return "?";
	}
}

int orch_egress_hdr_get(const uint8_t in[ORCH_EGRESS_HDR_LEN], struct orch_egress_hdr *ret,
			struct orch_error *err)
{
	struct orch_egress_hdr h = {
		.type = in[0],
		.conn = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 |
			in[7],
		.len = (uint32_t)in[8] << 24 | (uint32_t)in[9] << 16 | (uint32_t)in[10] << 8 |
		       in[11],
	};
	uint32_t lo = 0, hi = ORCH_EGRESS_MAX_PAYLOAD;

	if (in[1] || in[2] || in[3])
		return orch_err(err, -EPROTO, "egress frame: flags and reserved bytes must be 0");
	switch (h.type) {
	case ORCH_EGRESS_OPEN:
	case ORCH_EGRESS_VERDICT:
	case ORCH_EGRESS_HELLO:
	case ORCH_EGRESS_DATA:
		lo = 1;
		break;
	case ORCH_EGRESS_CREDIT:
		lo = hi = 4;
		break;
	case ORCH_EGRESS_EOF:
		hi = 0;
		break;
	case ORCH_EGRESS_CLOSE:
		hi = ORCH_EGRESS_MAX_REASON;
		break;
	default:
		return orch_err(err, -EPROTO, "egress frame: unknown type %u", h.type);
	}
	if (h.len < lo || h.len > hi)
		return orch_err(err, -EPROTO, "egress frame: %s of %u bytes (allowed %u..%u)",
				orch_egress_type_name(h.type), h.len, lo, hi);
	if (h.type == ORCH_EGRESS_HELLO ? h.conn != 0
					: h.conn == 0 || h.conn > ORCH_EGRESS_MAX_CONN_ID)
		return orch_err(err, -EPROTO, "egress frame: %s for connection %u",
				orch_egress_type_name(h.type), h.conn);
	*ret = h;
	return 0;
}

/* ---- text rules ---- */

bool orch_egress_reason_valid(const char *s, size_t len)
{
	if (len == 0 || len > ORCH_EGRESS_MAX_REASON)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

bool orch_egress_host_is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

bool orch_egress_host_valid(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > ORCH_EGRESS_MAX_HOST)
		return false;
	if (strchr(s, ':')) { /* IPv6: only a literal inet_pton accepts, lower case */
		for (const char *p = s; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				return false;
		return orch_egress_host_is_ip(s);
	}
	if (s[0] == '.' || s[0] == '-' || s[len - 1] == '.' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-' || s[i + 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

bool orch_egress_token_valid(const char *s, size_t len)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr(extra, c))))
			return false;
	}
	return true;
}

bool orch_egress_value_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

/* ---- JSON messages ---- */

static int load(const char *what, const void *buf, size_t len, json_t **ret, struct orch_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);

	if (!root)
		return orch_err(err, -EPROTO, "egress %s: invalid JSON: %s", what, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return orch_err(err, -EPROTO, "egress %s: expected an object", what);
	}
	*ret = root;
	return 0;
}

static int unpack(json_t *root, const char *what, struct orch_error *err, const char *fmt, ...)
{
	json_error_t jerr;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = json_vunpack_ex(root, &jerr, JSON_STRICT, fmt, ap);
	va_end(ap);
	if (r < 0)
		return orch_err(err, -EPROTO, "egress %s: %s", what, jerr.text);
	return 0;
}

static int check_str(const char *what, const char *field, const char *s, size_t max,
		     struct orch_error *err)
{
	size_t len = strlen(s);
	if (len == 0 || len > max)
		return orch_err(err, -EPROTO, "egress %s: member '%s' must be 1..%zu bytes", what,
				field, max);
	return 0;
}

static int check_headers_array(json_t *h, struct orch_error *err)
{
	size_t i;
	json_t *pair;

	if (!json_is_array(h) || json_array_size(h) > ORCH_EGRESS_MAX_HEADERS)
		return orch_err(err, -EPROTO,
				"egress open: member 'headers' must be an array of at most %d "
				"[name, value] pairs",
				ORCH_EGRESS_MAX_HEADERS);
	json_array_foreach(h, i, pair)
	{
		json_t *n = json_array_get(pair, 0), *v = json_array_get(pair, 1);
		if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(n) ||
		    !json_is_string(v))
			return orch_err(err, -EPROTO,
					"egress open: headers[%zu] is not [name, value]", i);
		if (json_string_length(n) > 256 ||
		    !orch_egress_token_valid(json_string_value(n), json_string_length(n)))
			return orch_err(err, -EPROTO, "egress open: headers[%zu]: bad name", i);
		if (json_string_length(v) > ORCH_EGRESS_MAX_HEADER_LEN ||
		    !orch_egress_value_valid(json_string_value(v), json_string_length(v)))
			return orch_err(err, -EPROTO, "egress open: headers[%zu]: bad value", i);
	}
	return 0;
}

int orch_egress_open_parse(const void *buf, size_t len, json_t **ret_root,
			   struct orch_egress_open *ret, struct orch_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct orch_egress_open o = {0};
	const char *kind;
	json_int_t slot, port;
	int r;

	if ((r = load("open", buf, len, &root, err)) < 0 ||
	    (r = unpack(root, "open", err, "{s:I, s?s, s:s, s:s, s:I, s?s, s?s, s?o}", "slot",
			&slot, "task", &o.task, "kind", &kind, "host", &o.host, "port", &port,
			"method", &o.method, "target", &o.target, "headers", &o.headers)) < 0)
		return r;
	if (slot < 0 || slot > 63)
		return orch_err(err, -EPROTO, "egress open: member 'slot' out of range");
	if (port < 1 || port > 65535)
		return orch_err(err, -EPROTO, "egress open: member 'port' out of range");
	if (o.task && (strlen(o.task) == 0 || strlen(o.task) > 64))
		return orch_err(err, -EPROTO, "egress open: member 'task' must be 1..64 bytes");
	if (!orch_egress_host_valid(o.host))
		return orch_err(err, -EPROTO, "egress open: member 'host' is not a host name");
	if (!strcmp(kind, "connect")) {
		o.kind = ORCH_EGRESS_CONNECT;
		if (o.method || o.target || o.headers)
			return orch_err(err, -EPROTO,
					"egress open: connect takes no method, target or headers");
	} else if (!strcmp(kind, "http")) {
		o.kind = ORCH_EGRESS_HTTP;
		if (!o.method || !o.target || !o.headers)
			return orch_err(err, -EPROTO,
					"egress open: http needs method, target and headers");
		if ((r = check_str("open", "method", o.method, ORCH_EGRESS_MAX_METHOD, err)) < 0 ||
		    (r = check_str("open", "target", o.target, ORCH_EGRESS_MAX_TARGET, err)) < 0)
			return r;
		if (!orch_egress_token_valid(o.method, strlen(o.method)) ||
		    !strcmp(o.method, "CONNECT"))
			return orch_err(err, -EPROTO, "egress open: bad method");
		if (o.target[0] != '/')
			return orch_err(err, -EPROTO, "egress open: target must start with '/'");
		for (const char *p = o.target; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				return orch_err(
					err, -EPROTO,
					"egress open: target holds a space or control byte");
		if ((r = check_headers_array(o.headers, err)) < 0)
			return r;
	} else
		return orch_err(err, -EPROTO, "egress open: member 'kind' must be connect or http");
	o.slot = slot;
	o.port = port;
	*ret = o;
	*ret_root = TAKE_PTR(root);
	return 0;
}

static char *dump(json_t *j_new, size_t *ret_len)
{
	_cleanup_json_ json_t *j = j_new;
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	if (s)
		*ret_len = strlen(s);
	return s;
}

char *orch_egress_open_build(const struct orch_egress_open *o, size_t *ret_len)
{
	json_t *j = json_pack("{s:I, s:s, s:s, s:I}", "slot", (json_int_t)o->slot, "kind",
			      o->kind == ORCH_EGRESS_HTTP ? "http" : "connect", "host", o->host,
			      "port", (json_int_t)o->port);
	if (!j)
		return NULL;
	if ((o->task && json_object_set_new(j, "task", json_string(o->task)) < 0) ||
	    (o->method && json_object_set_new(j, "method", json_string(o->method)) < 0) ||
	    (o->target && json_object_set_new(j, "target", json_string(o->target)) < 0) ||
	    (o->headers && json_object_set(j, "headers", o->headers) < 0)) {
		json_decref(j);
		return NULL;
	}
	return dump(j, ret_len);
}

int orch_egress_verdict_parse(const void *buf, size_t len, json_t **ret_root,
			      struct orch_egress_verdict *ret, struct orch_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct orch_egress_verdict v = {0};
	json_int_t status = 0;
	int ok, r;

	if ((r = load("verdict", buf, len, &root, err)) < 0 ||
	    (r = unpack(root, "verdict", err, "{s:b, s?I, s?s}", "ok", &ok, "status", &status,
			"reason", &v.reason)) < 0)
		return r;
	v.ok = ok;
	if (!v.ok) {
		if (status < 400 || status > 599)
			return orch_err(err, -EPROTO, "egress verdict: status out of 400..599");
		if (!v.reason || !orch_egress_reason_valid(v.reason, strlen(v.reason)))
			return orch_err(err, -EPROTO, "egress verdict: bad or missing reason");
	} else if (status || v.reason)
		return orch_err(err, -EPROTO, "egress verdict: ok takes no status or reason");
	v.status = status;
	*ret = v;
	*ret_root = TAKE_PTR(root);
	return 0;
}

char *orch_egress_verdict_build(const struct orch_egress_verdict *v, size_t *ret_len)
{
	if (v->ok)
		return dump(json_pack("{s:b}", "ok", 1), ret_len);
	return dump(json_pack("{s:b, s:I, s:s}", "ok", 0, "status", (json_int_t)v->status, "reason",
			      v->reason),
		    ret_len);
}

int orch_egress_hello_parse(const void *buf, size_t len, json_t **ret_root,
			    struct orch_egress_hello *ret, struct orch_error *err)
{
	_cleanup_json_ json_t *root = NULL;
	struct orch_egress_hello h = {0};
	json_int_t version;
	int r;

	if ((r = load("hello", buf, len, &root, err)) < 0 ||
	    (r = unpack(root, "hello", err, "{s:I, s?s}", "version", &version, "ca", &h.ca_pem)) <
		    0)
		return r;
	if (version < 1 || version > 1000)
		return orch_err(err, -EPROTO, "egress hello: version out of range");
	if (h.ca_pem && (strlen(h.ca_pem) > ORCH_EGRESS_MAX_CA ||
			 strncmp(h.ca_pem, "-----BEGIN CERTIFICATE-----", 27) != 0))
		return orch_err(err, -EPROTO, "egress hello: 'ca' is not a PEM certificate");
	h.version = version;
	*ret = h;
	*ret_root = TAKE_PTR(root);
	return 0;
}

char *orch_egress_hello_build(const struct orch_egress_hello *h, size_t *ret_len)
{
	json_t *j = json_pack("{s:I}", "version", (json_int_t)h->version);
	if (j && h->ca_pem && json_object_set_new(j, "ca", json_string(h->ca_pem)) < 0) {
		json_decref(j);
		j = NULL;
	}
	return dump(j, ret_len);
}
