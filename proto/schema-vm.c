/* SPDX-License-Identifier: Apache-2.0 */
/* vm.freeze and vm.thaw messages (schema-vm.h). */
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "schema-internal.h"
#include "schema-vm.h"
#include "schema.h"

int orch_vm_freeze_parse(json_t *params, struct orch_error *err)
{
	if (!params || (json_is_object(params) && json_object_size(params) == 0))
		return 0;
	return orch_err(err, ORCH_RPC_INVALID_PARAMS, "vm.freeze: takes no params");
}

bool orch_thaw_tag_valid(const char *tag)
{
	size_t n = tag ? strlen(tag) : 0;

	if (n == 0 || n > ORCH_THAW_TAG_MAX || tag[0] == '.' || tag[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = tag[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > ORCH_THAW_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int parse_mount(json_t *v, struct orch_thaw_mount *m, struct orch_error *err)
{
	static const struct member mm[] = {
		{"tag", M_STR, true}, {"path", M_STR, true}, {"readonly", M_BOOL, false}};
	const char *w = "vm.thaw.mounts[]";
	json_t *tag, *path;
	int ro = 0, r;

	if ((r = check_members(v, w, mm, ELEMENTSOF(mm), err)) < 0 ||
	    (r = strict_unpack(v, w, err, "{s:o,s:o,s?b}", "tag", &tag, "path", &path, "readonly",
			       &ro)) < 0 ||
	    (r = check_string(w, "tag", tag, ORCH_THAW_TAG_MAX, false, err)) < 0 ||
	    (r = check_string(w, "path", path, ORCH_THAW_PATH_MAX, false, err)) < 0)
		return r;
	m->tag = json_string_value(tag);
	if (!orch_thaw_tag_valid(m->tag))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member 'tag' must match [a-z0-9._-]{1,%d}", w,
				ORCH_THAW_TAG_MAX);
	m->path = json_string_value(path);
	/* The kernel command line and the guest's scripts never see it, but a space or a
	 * control byte in a mount point has no use either. */
	if (!orch_path_normalised(m->path) || strpbrk(m->path, " \t\n\r"))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"%s: member 'path' must be an absolute, normalised path other "
				"than / without spaces",
				w);
	m->readonly = ro;
	return 0;
}

int orch_vm_thaw_parse(json_t *params, struct orch_vm_thaw *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"seed", M_STR, true},	  {"time_ns", M_INT, true}, {"name", M_STR, true},
		{"mounts", M_ARR, false}, {"warm", M_BOOL, false},
	};
	struct orch_vm_thaw t = {0};
	json_t *seed, *name, *mounts = NULL, *v;
	int warm = 0;
	json_int_t time_ns;
	size_t i;
	int r;

	if ((r = check_members(params, "vm.thaw", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "vm.thaw", err, "{s:o,s:I,s:o,s?o,s?b}", "seed", &seed,
			       "time_ns", &time_ns, "name", &name, "mounts", &mounts, "warm",
			       &warm)) < 0 ||
	    (r = check_range("vm.thaw", "time_ns", time_ns, 0, INT64_MAX, err)) < 0 ||
	    (r = check_string("vm.thaw", "name", name, ORCH_THAW_NAME_MAX, false, err)) < 0)
		return r;
	t.time_ns = time_ns;
	t.warm = warm;
	t.name = json_string_value(name);
	if (!name_valid(t.name))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"vm.thaw: member 'name' must match [A-Za-z0-9._-]{1,%d}",
				ORCH_THAW_NAME_MAX);
	if (mounts && json_array_size(mounts) > ORCH_THAW_MAX_MOUNTS)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"vm.thaw: member 'mounts' holds more than %d shares",
				ORCH_THAW_MAX_MOUNTS);
	json_array_foreach(mounts, i, v)
	{
		if ((r = parse_mount(v, &t.mounts[i], err)) < 0)
			return r;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(t.mounts[j].tag, t.mounts[i].tag) ||
			    orch_paths_overlap(t.mounts[j].path, t.mounts[i].path))
				return orch_err(err, ORCH_RPC_INVALID_PARAMS,
						"vm.thaw: member 'mounts' repeats a tag or nests "
						"one mount point in another");
		t.n_mounts = i + 1;
	}
	if ((r = decode_b64_field("vm.thaw", "seed", seed, ORCH_THAW_SEED_MAX, &t.seed, &t.seed_len,
				  err)) < 0)
		return r;
	if (t.seed_len < ORCH_THAW_SEED_MIN) {
		free(t.seed);
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"vm.thaw: member 'seed' must hold at least %d bytes",
				ORCH_THAW_SEED_MIN);
	}
	*ret = t;
	return 0;
}

void orch_vm_thaw_done(struct orch_vm_thaw *t)
{
	if (!t)
		return;
	if (t->seed)
		explicit_bzero(t->seed, t->seed_len);
	free(t->seed);
	t->seed = NULL;
	t->seed_len = 0;
}

json_t *orch_vm_thaw_build(const struct orch_vm_thaw *t)
{
	_cleanup_free_ char *seed = orch_b64_encode(t->seed, t->seed_len);
	json_t *mounts = json_array();

	if (!seed || !mounts) {
		json_decref(mounts);
		return NULL;
	}
	for (size_t i = 0; i < t->n_mounts; i++)
		if (json_array_append_new(mounts,
					  json_pack("{s:s,s:s,s:b}", "tag", t->mounts[i].tag,
						    "path", t->mounts[i].path, "readonly",
						    t->mounts[i].readonly)) < 0) {
			json_decref(mounts);
			return NULL;
		}
	json_t *o = json_pack("{s:s,s:I,s:s,s:o}", "seed", seed, "time_ns", (json_int_t)t->time_ns,
			      "name", t->name, "mounts", mounts);
	if (o && t->warm && json_object_set_new(o, "warm", json_true()) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int orch_vm_thaw_result_parse(json_t *result, struct orch_vm_thaw_result *ret,
			      struct orch_error *err)
{
	static const struct member m[] = {{"boot_id", M_STR, true}, {"warm_ms", M_INT, false}};
	json_t *v;
	json_int_t warm_ms = -1;
	int r;

	if ((r = check_members(result, "vm.thaw result", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(result, "vm.thaw result", err, "{s:o,s?I}", "boot_id", &v, "warm_ms",
			       &warm_ms)) < 0 ||
	    (r = check_string("vm.thaw result", "boot_id", v, ORCH_MAX_ID_LEN, false, err)) < 0 ||
	    (r = check_id("vm.thaw result", "boot_id", json_string_value(v), err)) < 0)
		return r;
	if (json_object_get(result, "warm_ms") &&
	    (r = check_range("vm.thaw result", "warm_ms", warm_ms, 0, 3600000, err)) < 0)
		return r;
	ret->boot_id = json_string_value(v);
	ret->warm_ms = warm_ms;
	return 0;
}

json_t *orch_vm_thaw_result_build(const struct orch_vm_thaw_result *r)
{
	json_t *o = json_pack("{s:s}", "boot_id", r->boot_id);
	if (o && r->warm_ms >= 0 &&
	    json_object_set_new(o, "warm_ms", json_integer(r->warm_ms)) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}
