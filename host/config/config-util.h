/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for strict, path-naming validation of JSON configuration objects. Each getter
 * leaves *ret untouched when the key is absent (so the caller presets the default), and
 * on a bad value returns -EINVAL with "<path>.<key>: expected ..." in err. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "cleanup.h"
#include "error.h"

/* Every key of obj must be in allowed (NULL-terminated). */
int cfg_check_keys(json_t *obj, const char *path, const char *const *allowed,
		   struct orch_error *err);
/* obj must be an object (NULL allowed when optional: returns 0 and *present = false). */
int cfg_object(json_t *v, const char *path, struct orch_error *err);

int cfg_int(json_t *obj, const char *path, const char *key, int64_t min, int64_t max, int64_t *ret,
	    struct orch_error *err);
int cfg_double(json_t *obj, const char *path, const char *key, double min, double max, double *ret,
	       struct orch_error *err);
int cfg_bool(json_t *obj, const char *path, const char *key, bool *ret, struct orch_error *err);
/* Strings are copied (free the old *ret yourself: these replace only when present).
 * nullable: JSON null sets *ret to NULL. max_len bounds the byte length. */
int cfg_string(json_t *obj, const char *path, const char *key, size_t max_len, bool nullable,
	       char **ret, struct orch_error *err);
/* An absolute path without NUL/newline, <= 4095 bytes. */
int cfg_path(json_t *obj, const char *path, const char *key, bool nullable, char **ret,
	     struct orch_error *err);
/* One of choices (NULL-terminated); *ret is the index. */
int cfg_enum(json_t *obj, const char *path, const char *key, const char *const *choices, int *ret,
	     struct orch_error *err);
/* An array of strings (each <= max_len), at most max_items; result NULL-terminated. */
int cfg_strv(json_t *obj, const char *path, const char *key, size_t max_items, size_t max_len,
	     char ***ret, size_t *ret_n, struct orch_error *err);
