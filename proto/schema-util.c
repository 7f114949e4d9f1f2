/* SPDX-License-Identifier: Apache-2.0 */
/* Validation helpers for the schemas, ids and base64. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "schema-internal.h"
#include "schema.h"

static const char *type_name(enum member_type t)
{
	switch (t) {
	case M_INT:
		return "an integer";
	case M_STR:
		return "a string";
	case M_OBJ:
		return "an object";
	case M_ARR:
		return "an array";
	case M_BOOL:
		return "a boolean";
	}
	return "?";
}

static bool type_ok(json_t *v, enum member_type t)
{
	switch (t) {
	case M_INT:
		return json_is_integer(v);
	case M_STR:
		return json_is_string(v);
	case M_OBJ:
		return json_is_object(v);
	case M_ARR:
		return json_is_array(v);
	case M_BOOL:
		return json_is_boolean(v);
	}
	return false;
}

int check_members(json_t *obj, const char *what, const struct member *m, size_t n,
		  struct orch_error *err)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: params must be an object", what);
	json_object_foreach(obj, key, v)
	{
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(key, m[i].name) == 0)
				break;
		if (i == n)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: unknown member '%.64s'",
					what, key);
		if (!type_ok(v, m[i].type))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' must be %s",
					what, m[i].name, type_name(m[i].type));
	}
	for (size_t i = 0; i < n; i++)
		if (m[i].required && !json_object_get(obj, m[i].name))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: missing member '%s'",
					what, m[i].name);
	return 0;
}

int strict_unpack(json_t *obj, const char *what, struct orch_error *err, const char *fmt, ...)
{
	json_error_t jerr;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = json_vunpack_ex(obj, &jerr, JSON_STRICT, fmt, ap);
	va_end(ap);
	if (r < 0)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: %s", what, jerr.text);
	return 0;
}

int check_range(const char *what, const char *field, int64_t v, int64_t lo, int64_t hi,
		struct orch_error *err)
{
	if (v < lo || v > hi)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member '%s' out of range (%lld not in %lld..%lld)", what,
				field, (long long)v, (long long)lo, (long long)hi);
	return 0;
}

bool orch_env_name_valid(const char *s)
{
	size_t n = 0;

	if (!s || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (; s[n]; n++)
		if (n >= ORCH_MAX_ENV_KEY_LEN ||
		    !(s[n] == '_' || (s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
		      (s[n] >= '0' && s[n] <= '9')))
			return false;
	return true;
}

bool orch_id_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= ORCH_MAX_ID_LEN)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return n > 0;
}

int check_id(const char *what, const char *field, const char *s, struct orch_error *err)
{
	if (!orch_id_valid(s))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member '%s' must match [A-Za-z0-9._:-]{1,%d}", what, field,
				ORCH_MAX_ID_LEN);
	return 0;
}

int check_string(const char *what, const char *field, json_t *v, size_t max, bool allow_empty,
		 struct orch_error *err)
{
	size_t len = json_string_length(v);

	if (!json_is_string(v))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' must be a string",
				what, field);
	if (memchr(json_string_value(v), '\0', len))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' contains a NUL byte",
				what, field);
	if (len > max)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member '%s' too long (%zu > %zu bytes)", what, field, len,
				max);
	if (len == 0 && !allow_empty)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' must not be empty",
				what, field);
	return 0;
}

int decode_b64_field(const char *what, const char *field, json_t *v, size_t max,
		     unsigned char **ret, size_t *ret_len, struct orch_error *err)
{
	size_t slen = json_string_length(v);
	int r;

	if (!json_is_string(v))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' must be a string",
				what, field);
	if (slen / 4 * 3 > max + 2)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member '%s' too long (more than %zu bytes decoded)", what,
				field, max);
	r = orch_b64_decode(json_string_value(v), slen, ret, ret_len);
	if (r == -ENOMEM)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "%s: out of memory", what);
	if (r < 0)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' is not valid base64",
				what, field);
	if (*ret_len > max) {
		free(*ret);
		*ret = NULL;
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member '%s' too long (more than %zu bytes decoded)", what,
				field, max);
	}
	return 0;
}

static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int check_headers(const char *what, const char *field, json_t *h, struct orch_error *err)
{
	const char *k;
	json_t *v;

	if (!json_is_object(h))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "%s: member '%s' must be an object",
				what, field);
	if (json_object_size(h) > ORCH_MAX_LLM_HEADERS)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member '%s' has more than %d headers", what, field,
				ORCH_MAX_LLM_HEADERS);
	json_object_foreach(h, k, v)
	{
		size_t kl = strlen(k);
		if (kl == 0 || kl > 256)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"%s: member '%s' has an invalid header name", what, field);
		for (size_t i = 0; i < kl; i++)
			if (!is_tchar((unsigned char)k[i]))
				return orch_err(
					err, ORCH_RPC_INVALID_PARAMS,
					"%s: member '%s' has an invalid header name '%.64s'", what,
					field, k);
		if (!json_is_string(v))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"%s: header '%.64s' must be a string", what, k);
		const char *s = json_string_value(v);
		size_t sl = json_string_length(v);
		if (sl > ORCH_MAX_LLM_HEADER_LEN)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"%s: header '%.64s' is too long", what, k);
		for (size_t i = 0; i < sl; i++)
			if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
				return orch_err(err, ORCH_RPC_INVALID_PARAMS,
						"%s: header '%.64s' contains CR, LF or NUL", what,
						k);
	}
	return 0;
}

/* ---- base64 (RFC 4648, standard alphabet, padded, canonical) ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *orch_b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t olen, i, o = 0;
	char *out;

	if (len > (SIZE_MAX / 4) * 3 - 3)
		return NULL;
	olen = (len + 2) / 3 * 4;
	out = malloc(olen + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < len ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int orch_b64_decode(const char *s, size_t slen, unsigned char **ret, size_t *ret_len)
{
	unsigned char *out;
	size_t o = 0;

	if (slen % 4 != 0)
		return -EINVAL;
	out = malloc(slen / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < slen; i += 4) {
		int v[4];
		bool last = i + 4 == slen;
		for (int k = 0; k < 4; k++)
			v[k] = b64_val(s[i + k]);
		if (v[0] < 0 || v[1] < 0)
			goto invalid;
		if (v[2] < 0 || v[3] < 0) {
			/* padding: only in the last quantum, "xx==" or "xxx=" */
			if (!last || s[i + 3] != '=')
				goto invalid;
			if (v[2] < 0) {
				if (s[i + 2] != '=' || (v[1] & 15))
					goto invalid;
				out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
			} else {
				if (v[2] & 3)
					goto invalid;
				out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
				out[o++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
			}
			break;
		}
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
			     (uint32_t)v[3];
		out[o++] = (unsigned char)(x >> 16);
		out[o++] = (unsigned char)(x >> 8);
		out[o++] = (unsigned char)x;
	}
	*ret = out;
	*ret_len = o;
	return 0;
invalid:
	free(out);
	return -EINVAL;
}
