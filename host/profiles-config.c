/* SPDX-License-Identifier: Apache-2.0 */
/* Profiles from orchd's config only: command prefix, then the prompt as one argument,
 * then the task's arguments; env and limits as configured. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config-util.h"
#include "orchd.h"
#include "profiles.h"
#include "strv.h"

int orchd_profiles_init(struct orchd *d, struct orch_error *err)
{
	return 0;
}

void orchd_profiles_free(struct orchd *d)
{
}

bool orchd_profile_known(const struct orchd *d, const char *name)
{
	return orchd_config_profile(d->cfg, name) != NULL;
}

static char **strv_dup(const char *const *a, size_t na, const char *const *b, size_t nb)
{
	char **v = calloc(na + nb + 1, sizeof(char *));

	if (!v)
		return NULL;
	for (size_t i = 0; i < na + nb; i++) {
		v[i] = strdup(i < na ? a[i] : b[i - na]);
		if (!v[i]) {
			orch_strv_free(v);
			return NULL;
		}
	}
	return v;
}

int orchd_profile_apply(struct orchd *d, const char *name, const char *prompt,
			const char *const *args, struct task_cmd *ret, struct orch_error *err)
{
	const struct orchd_profile_config *p = orchd_config_profile(d->cfg, name);
	const char *tail[ORCH_MAX_ARGV + 2];
	size_t n = 0;

	if (!p)
		return orch_err(err, -ENOENT, "no profile named \"%s\"", name);
	if (prompt)
		tail[n++] = prompt;
	for (size_t i = 0; args && args[i]; i++) {
		if (n >= ORCH_MAX_ARGV)
			return orch_err(err, -E2BIG, "too many arguments");
		tail[n++] = args[i];
	}
	ret->argv = strv_dup((const char *const *)p->command, p->n_command, tail, n);
	ret->env = strv_dup((const char *const *)p->env, p->n_env, NULL, 0);
	ret->limits = p->limits;
	if (!ret->argv || !ret->env) {
		task_cmd_done(ret);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

void task_cmd_done(struct task_cmd *c)
{
	orch_strv_free(c->argv);
	orch_strv_free(c->env);
	c->argv = c->env = NULL;
}
