/* SPDX-License-Identifier: Apache-2.0 */
/* A profile + a prompt -> the task's argv, env and read-only paths; profiles as JSON. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "profile.h"
#include "strv.h"
#include "schema.h"

/* Writes each ORCH_FILE_<i>_PATH/_DATA under $HOME, then execs "$@". The only values
 * expanded by eval are variable names built from the counter. */
static const char files_writer[] =
	": \"${HOME:=/tmp/home}\"\n"
	"i=0\n"
	"while [ \"$i\" -lt \"${ORCH_FILES:-0}\" ]; do\n"
	"\teval \"p=\\${ORCH_FILE_${i}_PATH} d=\\${ORCH_FILE_${i}_DATA}\"\n"
	"\tmkdir -p \"$HOME/$(dirname \"$p\")\" || exit 127\n"
	"\tprintf '%s' \"$d\" > \"$HOME/$p\" || exit 127\n"
	"\tunset \"ORCH_FILE_${i}_PATH\" \"ORCH_FILE_${i}_DATA\"\n"
	"\ti=$((i + 1))\n"
	"done\n"
	"unset ORCH_FILES\n"
	"exec \"$@\"\n";

struct strv {
	char **v;
	size_t n, cap;
};

/* Takes s (freed on failure). */
static int push_take(struct strv *s, char *a)
{
	if (!a)
		return -ENOMEM;
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof(char *));
		if (!v) {
			free(a);
			return -ENOMEM;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = a;
	s->v[s->n] = NULL;
	return 0;
}

static int push(struct strv *s, const char *a)
{
	return push_take(s, strdup(a));
}

/* Replaces every "{prompt}" in t by prompt. */
static char *expand(const char *t, const char *prompt)
{
	size_t tl = strlen(ORCH_PROFILE_PROMPT_TOKEN), pl = strlen(prompt), n = 0;
	for (const char *p = strstr(t, ORCH_PROFILE_PROMPT_TOKEN); p;
	     p = strstr(p + tl, ORCH_PROFILE_PROMPT_TOKEN))
		n++;
	char *out = malloc(strlen(t) + n * pl + 1), *o = out;
	if (!out)
		return NULL;
	for (const char *p = t; *p;) {
		if (!strncmp(p, ORCH_PROFILE_PROMPT_TOKEN, tl)) {
			memcpy(o, prompt, pl);
			o += pl;
			p += tl;
		} else {
			*o++ = *p++;
		}
	}
	*o = 0;
	return out;
}

static char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strfmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

/* The profile's env with the agent's bin/ first in PATH (the profile's own PATH, else the
 * task default, after it). */
static int push_env(struct strv *env, const struct orch_profile *p, const char *agents_dir)
{
	const char *path = ORCH_TASK_PATH_DEFAULT;
	int r = 0;
	for (size_t i = 0; i < p->n_env && r >= 0; i++) {
		if (p->agent && !strncmp(p->env[i], "PATH=", 5))
			path = p->env[i] + 5;
		else
			r = push(env, p->env[i]);
	}
	if (r >= 0 && p->agent)
		r = push_take(env, strfmt("PATH=%s/%s/current/bin:%s", agents_dir, p->agent, path));
	return r;
}

int orch_profile_command(const struct orch_profile *p, const char *agents_dir, const char *prompt,
			 const char *const *extra, struct orch_profile_cmd *ret,
			 struct orch_error *err)
{
	if (!agents_dir)
		agents_dir = ORCHD_DEFAULT_AGENTS_DIR;
	if (prompt && strlen(prompt) > ORCH_PROFILE_MAX_PROMPT)
		return orch_err(err, -E2BIG, "the prompt is longer than %d bytes",
				ORCH_PROFILE_MAX_PROMPT);
	struct strv argv = {0}, env = {0}, ro = {0};
	int r = 0;
	if (p->n_files > 0) {
		const char *head[] = {"/bin/sh", "-c", files_writer, "orch-profile"};
		for (size_t i = 0; i < ELEMENTSOF(head) && r >= 0; i++)
			r = push(&argv, head[i]);
	}
	for (size_t i = 0; i < p->n_command && r >= 0; i++)
		r = push(&argv, p->command[i]);
	for (size_t i = 0; prompt && i < p->n_prompt && r >= 0; i++)
		r = push_take(&argv, expand(p->prompt[i], prompt));
	for (size_t i = 0; extra && extra[i] && r >= 0; i++)
		r = push(&argv, extra[i]);

	if (r >= 0)
		r = push_env(&env, p, agents_dir);
	if (p->n_files > 0 && r >= 0)
		r = push_take(&env, strfmt("ORCH_FILES=%zu", p->n_files));
	for (size_t i = 0; i < p->n_files && r >= 0; i++) {
		r = push_take(&env, strfmt("ORCH_FILE_%zu_PATH=%s", i, p->files[i].path));
		if (r >= 0)
			r = push_take(&env,
				      strfmt("ORCH_FILE_%zu_DATA=%s", i, p->files[i].content));
	}
	if (p->agent && r >= 0)
		r = push_take(&ro, strfmt("%s/%s/current", agents_dir, p->agent));
	for (size_t i = 0; i < p->n_ro_paths && r >= 0; i++)
		r = push(&ro, p->ro_paths[i]);
	/* Empty lists are still NULL-terminated arrays. */
	struct strv *all[] = {&argv, &env, &ro};
	for (size_t i = 0; i < ELEMENTSOF(all) && r >= 0; i++)
		if (!all[i]->v && !(all[i]->v = calloc(1, sizeof(char *))))
			r = -ENOMEM;
	if (r < 0) {
		orch_strv_free(argv.v);
		orch_strv_free(env.v);
		orch_strv_free(ro.v);
		return orch_err(err, r, "out of memory");
	}
	*ret = (struct orch_profile_cmd){.argv = argv.v, .env = env.v, .ro_paths = ro.v};
	return 0;
}

void orch_profile_cmd_done(struct orch_profile_cmd *c)
{
	orch_strv_free(c->argv);
	orch_strv_free(c->env);
	orch_strv_free(c->ro_paths);
	*c = (struct orch_profile_cmd){0};
}

static json_t *strv_json(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

json_t *orch_profile_to_json(const struct orch_profile *p)
{
	json_t *env = json_object(), *files = json_array();
	for (size_t i = 0; env && i < p->n_env; i++) {
		const char *eq = strchr(p->env[i], '=');
		if (!eq)
			continue;
		_cleanup_free_ char *k = strndup(p->env[i], (size_t)(eq - p->env[i]));
		if (k)
			json_object_set_new(env, k, json_string(eq + 1));
	}
	for (size_t i = 0; files && i < p->n_files; i++)
		json_array_append_new(files, json_string(p->files[i].path));
	const struct orchd_limits *l = &p->limits;
	return json_pack(
		"{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
		"name", p->name, "description", p->description, "source",
		p->from_config ? "config" : "shipped", "command",
		strv_json(p->command, p->n_command), "prompt", strv_json(p->prompt, p->n_prompt),
		"env", env, "ro_paths", strv_json(p->ro_paths, p->n_ro_paths), "files", files,
		"agent", p->agent ? json_string(p->agent) : json_null(), "limits", "timeout_ms",
		(json_int_t)l->timeout_ms, "memory_mib", (json_int_t)l->memory_mib, "pids",
		(json_int_t)l->pids, "cpu_percent", (json_int_t)l->cpu_percent, "nofile",
		(json_int_t)l->nofile, "fsize_mib", (json_int_t)l->fsize_mib);
}
