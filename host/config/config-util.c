/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config-util.h"
#include "strv.h"

static const char *join(char *buf, size_t len, const char *path, const char *key)
{
	if (path && *path)
		snprintf(buf, len, "%s.%s", path, key);
	else
		snprintf(buf, len, "%s", key);
	return buf;
}

int cfg_check_keys(json_t *obj, const char *path, const char *const *allowed,
		   struct orch_error *err)
{
	const char *key;
	json_t *v;
	char buf[256];

	json_object_foreach(obj, key, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], key) == 0) {
				ok = true;
				break;
			}
		if (!ok)
			return orch_err(err, -EINVAL, "%.200s: unknown key",
					join(buf, sizeof(buf), path, key));
	}
	return 0;
}

int cfg_object(json_t *v, const char *path, struct orch_error *err)
{
	if (!json_is_object(v))
		return orch_err(err, -EINVAL, "%s: expected an object",
				*path ? path : "(top level)");
	return 0;
}

int cfg_int(json_t *obj, const char *path, const char *key, int64_t min, int64_t max, int64_t *ret,
	    struct orch_error *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[256];

	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return orch_err(err, -EINVAL, "%s: expected an integer %lld..%lld",
				join(buf, sizeof(buf), path, key), (long long)min, (long long)max);
	*ret = json_integer_value(v);
	return 0;
}

int cfg_double(json_t *obj, const char *path, const char *key, double min, double max, double *ret,
	       struct orch_error *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[256];
	double d;

	if (!v)
		return 0;
	if (!json_is_number(v))
		goto bad;
	d = json_number_value(v);
	if (!isfinite(d) || d < min || d > max)
		goto bad;
	*ret = d;
	return 0;
bad:
	return orch_err(err, -EINVAL, "%s: expected a number %g..%g",
			join(buf, sizeof(buf), path, key), min, max);
}

int cfg_bool(json_t *obj, const char *path, const char *key, bool *ret, struct orch_error *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[256];

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return orch_err(err, -EINVAL, "%s: expected true or false",
				join(buf, sizeof(buf), path, key));
	*ret = json_is_true(v);
	return 0;
}

static bool clean_string(const char *s, size_t len)
{
	return strlen(s) == len && !strpbrk(s, "\n\r");
}

int cfg_string(json_t *obj, const char *path, const char *key, size_t max_len, bool nullable,
	       char **ret, struct orch_error *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[256];
	char *s;

	if (!v)
		return 0;
	if (nullable && json_is_null(v)) {
		free(*ret);
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) > max_len ||
	    !clean_string(json_string_value(v), json_string_length(v)))
		return orch_err(err, -EINVAL, "%s: expected a string of at most %zu bytes%s",
				join(buf, sizeof(buf), path, key), max_len,
				nullable ? " or null" : "");
	s = strdup(json_string_value(v));
	if (!s)
		return orch_err(err, -ENOMEM, "out of memory");
	free(*ret);
	*ret = s;
	return 0;
}

int cfg_path(json_t *obj, const char *path, const char *key, bool nullable, char **ret,
	     struct orch_error *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[256];

	if (!v || (nullable && json_is_null(v)))
		return cfg_string(obj, path, key, 4095, nullable, ret, err);
	if (!json_is_string(v) || json_string_value(v)[0] != '/' || json_string_length(v) > 4095 ||
	    !clean_string(json_string_value(v), json_string_length(v)))
		return orch_err(err, -EINVAL, "%s: expected an absolute path%s",
				join(buf, sizeof(buf), path, key), nullable ? " or null" : "");
	return cfg_string(obj, path, key, 4095, nullable, ret, err);
}

int cfg_enum(json_t *obj, const char *path, const char *key, const char *const *choices, int *ret,
	     struct orch_error *err)
{
	json_t *v = json_object_get(obj, key);
	char buf[256], list[256] = "";
	size_t off = 0;

	if (!v)
		return 0;
	if (json_is_string(v))
		for (int i = 0; choices[i]; i++)
			if (strcmp(choices[i], json_string_value(v)) == 0) {
				*ret = i;
				return 0;
			}
	for (int i = 0; choices[i] && off < sizeof(list); i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s\"%s\"", i ? ", " : "",
					choices[i]);
	return orch_err(err, -EINVAL, "%s: expected one of %s", join(buf, sizeof(buf), path, key),
			list);
}

int cfg_strv(json_t *obj, const char *path, const char *key, size_t max_items, size_t max_len,
	     char ***ret, size_t *ret_n, struct orch_error *err)
{
	json_t *v = json_object_get(obj, key), *e;
	char buf[256];
	char **out;
	size_t i;

	if (!v)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > max_items)
		return orch_err(err, -EINVAL, "%s: expected an array of at most %zu strings",
				join(buf, sizeof(buf), path, key), max_items);
	out = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!out)
		return orch_err(err, -ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) > max_len ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			orch_strv_free(out);
			return orch_err(err, -EINVAL,
					"%s[%zu]: expected a string of at most %zu bytes",
					join(buf, sizeof(buf), path, key), i, max_len);
		}
		out[i] = strdup(json_string_value(e));
		if (!out[i]) {
			orch_strv_free(out);
			return orch_err(err, -ENOMEM, "out of memory");
		}
	}
	orch_strv_free(*ret);
	*ret = out;
	*ret_n = json_array_size(v);
	return 0;
}
