/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the schema parsers (schema-util.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "rpc.h"

/* Member types for check_members. */
enum member_type { M_INT, M_STR, M_OBJ, M_ARR, M_BOOL };

struct member {
	const char *name;
	enum member_type type;
	bool required;
};

/* obj must be an object holding only the listed members, each of the listed type, the
 * required ones present. what names the message ("task.run"). Errors: -32602 naming the
 * member. */
int check_members(json_t *obj, const char *what, const struct member *m, size_t n,
		  struct orch_error *err);

/* Runs json_unpack_ex(JSON_STRICT) and turns a failure into -32602. */
int strict_unpack(json_t *obj, const char *what, struct orch_error *err, const char *fmt, ...);

int check_range(const char *what, const char *field, int64_t v, int64_t lo, int64_t hi,
		struct orch_error *err);
int check_id(const char *what, const char *field, const char *s, struct orch_error *err);
/* A string of 0/1..max bytes without NUL (json strings may hold NUL when built in process). */
int check_string(const char *what, const char *field, json_t *v, size_t max, bool allow_empty,
		 struct orch_error *err);
/* Decodes base64 data of at most max decoded bytes. */
int decode_b64_field(const char *what, const char *field, json_t *v, size_t max,
		     unsigned char **ret, size_t *ret_len, struct orch_error *err);
/* An object of HTTP header name (token) -> value (no CR/LF/NUL). */
int check_headers(const char *what, const char *field, json_t *h, struct orch_error *err);
