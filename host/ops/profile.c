/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "profile.h"
#include "schema.h"
#include "strv.h"

#define MAX_PROFILE_BYTES (512 * 1024)
#define MAX_STRING 4096

void orch_profile_done(struct orch_profile *p)
{
	free(p->name);
	free(p->description);
	orch_strv_free(p->command);
	orch_strv_free(p->prompt);
	orch_strv_free(p->env);
	orch_strv_free(p->ro_paths);
	free(p->agent);
	for (size_t i = 0; i < p->n_files; i++) {
		free(p->files[i].path);
		free(p->files[i].content);
	}
	free(p->files);
	*p = (struct orch_profile){0};
}

/* The shared rule, and ORCH_FILE* is the profile's own way to carry files (below). */
static bool env_key_valid(const char *k)
{
	return orch_env_name_valid(k) && strncmp(k, "ORCH_FILE", 9) != 0;
}

/* A relative path of plain components below $HOME. */
static bool file_path_valid(const char *p)
{
	size_t len = strlen(p);
	if (len == 0 || len > 256 || p[0] == '/' || p[len - 1] == '/')
		return false;
	for (const char *c = p; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		      (*c >= '0' && *c <= '9') || strchr("._-/", *c)))
			return false;
	for (const char *s = p; s;) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s = e ? e + 1 : NULL;
	}
	return true;
}

/* A JSON string without NUL bytes, at most max bytes. */
static int get_string(json_t *v, size_t max, const char *what, char **ret, struct orch_error *err)
{
	if (!json_is_string(v))
		return orch_err(err, -EINVAL, "%s: expected a string", what);
	size_t len = json_string_length(v);
	if (len > max || strlen(json_string_value(v)) != len)
		return orch_err(err, -EINVAL, "%s: longer than %zu bytes or holds a NUL", what,
				max);
	*ret = strdup(json_string_value(v));
	return *ret ? 0 : -ENOMEM;
}

static int get_strv(json_t *v, const char *what, bool need_abs, char ***ret, size_t *ret_n,
		    struct orch_error *err)
{
	if (!json_is_array(v) || json_array_size(v) > ORCH_PROFILE_MAX_ITEMS)
		return orch_err(err, -EINVAL, "%s: expected an array of at most %d strings", what,
				ORCH_PROFILE_MAX_ITEMS);
	size_t n = json_array_size(v);
	char **out = calloc(n + 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char w[64];
		snprintf(w, sizeof(w), "%s[%zu]", what, i);
		int r = get_string(json_array_get(v, i), MAX_STRING, w, &out[i], err);
		if (r >= 0 && need_abs && !orch_path_normalised(out[i]))
			r = orch_err(err, -EINVAL,
				     "%s: '%s' is not an absolute, normalised path other than / "
				     "(no '.', '..', '//' or trailing '/')",
				     w, out[i]);
		if (r < 0) {
			orch_strv_free(out);
			return r;
		}
	}
	orch_strv_free(*ret);
	*ret = out;
	*ret_n = n;
	return 0;
}

static int get_env(json_t *v, struct orch_profile *p, struct orch_error *err)
{
	if (!json_is_object(v) || json_object_size(v) > ORCH_PROFILE_MAX_ITEMS)
		return orch_err(err, -EINVAL, "env: expected an object of at most %d strings",
				ORCH_PROFILE_MAX_ITEMS);
	char **out = calloc(json_object_size(v) + 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	size_t n = 0;
	const char *k;
	json_t *val;
	json_object_foreach(v, k, val)
	{
		_cleanup_free_ char *s = NULL;
		char w[160];
		snprintf(w, sizeof(w), "env.%.128s", k);
		int r = env_key_valid(k) ? get_string(val, MAX_STRING, w, &s, err)
					 : orch_err(err, -EINVAL,
						    "env: bad variable name '%.128s' (expected "
						    "[A-Za-z_][A-Za-z0-9_]*, not ORCH_FILE*)",
						    k);
		if (r >= 0 && asprintf(&out[n], "%s=%s", k, s) < 0)
			r = -ENOMEM;
		if (r < 0) {
			orch_strv_free(out);
			return r;
		}
		n++;
	}
	p->env = out;
	p->n_env = n;
	return 0;
}

static int get_files(json_t *v, struct orch_profile *p, struct orch_error *err)
{
	if (!json_is_object(v) || json_object_size(v) > ORCH_PROFILE_MAX_ITEMS)
		return orch_err(err, -EINVAL, "files: expected an object of at most %d strings",
				ORCH_PROFILE_MAX_ITEMS);
	p->files = calloc(json_object_size(v) + 1, sizeof(*p->files));
	if (!p->files)
		return -ENOMEM;
	const char *k;
	json_t *val;
	json_object_foreach(v, k, val)
	{
		char w[300];
		snprintf(w, sizeof(w), "files.%.256s", k);
		if (!file_path_valid(k))
			return orch_err(err, -EINVAL,
					"%s: expected a relative path of plain components "
					"([A-Za-z0-9._-], no '..')",
					w);
		struct orch_profile_file *f = &p->files[p->n_files];
		int r = get_string(val, ORCH_PROFILE_MAX_FILE, w, &f->content, err);
		if (r < 0)
			return r;
		p->n_files++;
		if (!(f->path = strdup(k)))
			return -ENOMEM;
	}
	return 0;
}

static int get_limits(json_t *v, struct orchd_limits *l, struct orch_error *err)
{
	static const struct {
		const char *key;
		size_t off;
		int64_t max;
	} keys[] = {
		{"timeout_ms", offsetof(struct orchd_limits, timeout_ms), 604800000},
		{"memory_mib", offsetof(struct orchd_limits, memory_mib), 1048576},
		{"pids", offsetof(struct orchd_limits, pids), 1000000},
		{"cpu_percent", offsetof(struct orchd_limits, cpu_percent), 6400},
		{"nofile", offsetof(struct orchd_limits, nofile), 1048576},
		{"fsize_mib", offsetof(struct orchd_limits, fsize_mib), 1048576},
	};
	if (!json_is_object(v))
		return orch_err(err, -EINVAL, "limits: expected an object");
	const char *k;
	json_t *val;
	json_object_foreach(v, k, val)
	{
		size_t i;
		for (i = 0; i < ELEMENTSOF(keys); i++)
			if (!strcmp(k, keys[i].key))
				break;
		if (i == ELEMENTSOF(keys))
			return orch_err(err, -EINVAL, "limits: unknown key '%.64s'", k);
		if (!json_is_integer(val) || json_integer_value(val) < 0 ||
		    json_integer_value(val) > keys[i].max)
			return orch_err(err, -EINVAL, "limits.%s: expected an integer 0..%lld", k,
					(long long)keys[i].max);
		*(int64_t *)((char *)l + keys[i].off) = json_integer_value(val);
	}
	return 0;
}

static int parse_into(json_t *root, struct orch_profile *p, struct orch_error *err)
{
	if (!json_is_object(root))
		return orch_err(err, -EINVAL, "expected a JSON object");
	const char *k;
	json_t *v;
	int r = 0;
	json_object_foreach(root, k, v)
	{
		if (!strcmp(k, "description"))
			r = get_string(v, 256, "description", &p->description, err);
		else if (!strcmp(k, "command"))
			r = get_strv(v, "command", false, &p->command, &p->n_command, err);
		else if (!strcmp(k, "prompt"))
			r = get_strv(v, "prompt", false, &p->prompt, &p->n_prompt, err);
		else if (!strcmp(k, "env"))
			r = get_env(v, p, err);
		else if (!strcmp(k, "ro_paths")) {
			r = get_strv(v, "ro_paths", true, &p->ro_paths, &p->n_ro_paths, err);
			if (r >= 0 && p->n_ro_paths > ORCH_MAX_RO_PATHS)
				r = orch_err(err, -EINVAL, "ro_paths: at most %d paths",
					     ORCH_MAX_RO_PATHS);
		} else if (!strcmp(k, "files"))
			r = get_files(v, p, err);
		else if (!strcmp(k, "agent")) {
			r = get_string(v, ORCHD_NAME_MAX, "agent", &p->agent, err);
			if (r >= 0 && !orchd_name_valid(p->agent))
				r = orch_err(err, -EINVAL,
					     "agent: expected an agent name ([A-Za-z0-9_-]{1,32})");
		} else if (!strcmp(k, "limits"))
			r = get_limits(v, &p->limits, err);
		else
			r = orch_err(err, -EINVAL, "unknown key '%.64s'", k);
		if (r < 0)
			return r;
	}
	if (p->n_command == 0)
		return orch_err(err, -EINVAL, "command: must not be empty");
	return 0;
}

static int empty_defaults(struct orch_profile *p)
{
	char ***v[] = {&p->command, &p->prompt, &p->env, &p->ro_paths};
	for (size_t i = 0; i < ELEMENTSOF(v); i++)
		if (!*v[i] && !(*v[i] = calloc(1, sizeof(char *))))
			return -ENOMEM;
	if (!p->description && !(p->description = strdup("")))
		return -ENOMEM;
	return 0;
}

int orch_profile_parse(const char *name, const char *text, size_t len, struct orch_profile *ret,
		       struct orch_error *err)
{
	struct orch_profile p = {0};
	if (!orchd_name_valid(name))
		return orch_err(err, -EINVAL, "bad profile name '%.64s'", name);
	json_error_t jerr;
	_cleanup_json_ json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return orch_err(err, -EINVAL, "profile %s: line %d: %s", name, jerr.line,
				jerr.text);
	int r = -ENOMEM;
	if (!(p.name = strdup(name)) || (r = parse_into(root, &p, err)) < 0 ||
	    (r = empty_defaults(&p)) < 0) {
		orch_profile_done(&p);
		return r == -ENOMEM ? orch_err(err, r, "out of memory")
				    : orch_err_prefix(err, "profile %s", name);
	}
	*ret = p;
	return 0;
}

static int push(struct orch_profiles *ps, struct orch_profile *p)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->v[i].name, p->name)) {
			orch_profile_done(&ps->v[i]);
			ps->v[i] = *p;
			*p = (struct orch_profile){0};
			return 0;
		}
	struct orch_profile *v = realloc(ps->v, (ps->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ps->v = v;
	ps->v[ps->n++] = *p;
	*p = (struct orch_profile){0};
	return 0;
}

static int read_small(int dfd, const char *name, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	_cleanup_free_ char *buf = malloc(MAX_PROFILE_BYTES + 1);
	if (!buf)
		return -ENOMEM;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, MAX_PROFILE_BYTES + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_PROFILE_BYTES)
			return -EFBIG;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(((const struct orch_profile *)a)->name,
		      ((const struct orch_profile *)b)->name);
}

int orch_profiles_load_dir(struct orch_profiles *ps, const char *dir, struct orch_error *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return orch_errno(err, -errno, "cannot open the profile directory %s", dir);
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		char name[ORCHD_NAME_MAX + 1];
		if (len - 5 > ORCHD_NAME_MAX) {
			r = orch_err(err, -EINVAL, "%s/%s: profile name too long", dir, de->d_name);
			break;
		}
		memcpy(name, de->d_name, len - 5);
		name[len - 5] = 0;
		_cleanup_free_ char *text = NULL;
		size_t tlen = 0;
		if ((r = read_small(dirfd(d), de->d_name, &text, &tlen)) < 0) {
			orch_errno(err, r, "cannot read %s/%s", dir, de->d_name);
			break;
		}
		struct orch_profile p;
		if ((r = orch_profile_parse(name, text, tlen, &p, err)) < 0) {
			orch_err_prefix(err, "%s/%s", dir, de->d_name);
			break;
		}
		if ((r = push(ps, &p)) < 0) {
			orch_profile_done(&p);
			break;
		}
	}
	closedir(d);
	if (ps->n)
		qsort(ps->v, ps->n, sizeof(*ps->v), cmp_names);
	return r;
}

static char **strv_dup(char *const *v, size_t n)
{
	char **out = calloc(n + 1, sizeof(char *));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(out[i] = strdup(v[i]))) {
			orch_strv_free(out);
			return NULL;
		}
	return out;
}

int orch_profiles_add_config(struct orch_profiles *ps, const struct orchd_config *c,
			     struct orch_error *err)
{
	for (size_t i = 0; i < c->n_profiles; i++) {
		const struct orchd_profile_config *pc = &c->profiles[i];
		struct orch_profile p = {
			.from_config = true,
			.limits = pc->limits,
			.n_command = pc->n_command,
			.n_env = pc->n_env,
			.n_prompt = 1,
			.n_ro_paths = pc->n_ro_paths,
		};
		char *const tmpl[] = {ORCH_PROFILE_PROMPT_TOKEN};
		p.name = strdup(pc->name);
		p.description = strdup(pc->description ? pc->description : "");
		p.command = strv_dup(pc->command, pc->n_command);
		p.env = strv_dup(pc->env, pc->n_env);
		p.prompt = strv_dup(tmpl, 1);
		p.ro_paths = pc->ro_paths ? strv_dup(pc->ro_paths, pc->n_ro_paths)
					  : calloc(1, sizeof(char *));
		p.agent = pc->agent ? strdup(pc->agent) : NULL;
		int r = -ENOMEM;
		if (p.name && p.description && p.command && p.env && p.prompt && p.ro_paths &&
		    (p.agent || !pc->agent))
			r = push(ps, &p);
		if (r < 0) {
			orch_profile_done(&p);
			return orch_err(err, r, "out of memory");
		}
	}
	if (ps->n)
		qsort(ps->v, ps->n, sizeof(*ps->v), cmp_names);
	return 0;
}

const char *orch_profiles_default_dir(void)
{
	const char *e = getenv("ORCH_PROFILES_DIR");
	if (e && e[0])
		return e;
	if (access(ORCH_DATADIR "/profiles", R_OK | X_OK) == 0)
		return ORCH_DATADIR "/profiles";
	return ORCH_SOURCEDIR "/host/profiles";
}

int orch_profiles_load(struct orch_profiles *ps, const char *dir, const struct orchd_config *c,
		       struct orch_error *err)
{
	int r = orch_profiles_load_dir(ps, dir ? dir : orch_profiles_default_dir(), err);
	if (r >= 0 && c)
		r = orch_profiles_add_config(ps, c, err);
	if (r < 0)
		orch_profiles_done(ps);
	return r;
}

const struct orch_profile *orch_profiles_find(const struct orch_profiles *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (!strcmp(ps->v[i].name, name))
			return &ps->v[i];
	return NULL;
}

void orch_profiles_done(struct orch_profiles *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		orch_profile_done(&ps->v[i]);
	free(ps->v);
	*ps = (struct orch_profiles){0};
}
