/* SPDX-License-Identifier: Apache-2.0 */
/* Shipped profiles plus the config's (host/profile.h), loaded once at start. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config-util.h"
#include "log.h"
#include "orchd.h"
#include "profile.h"
#include "profiles.h"

int orchd_profiles_init(struct orchd *d, struct orch_error *err)
{
	struct orch_profiles *ps = calloc(1, sizeof(*ps));
	struct orch_error e2 = {0};

	if (!ps)
		return orch_err(err, -ENOMEM, "out of memory");
	if (orch_profiles_load(ps, NULL, d->cfg, &e2) < 0) {
		/* no shipped profiles (e.g. a missing data dir): the config's still work */
		orch_log(ORCH_LOG_WARN, "profiles", "cannot load the shipped profiles", "error",
			 e2.msg, NULL);
		if (orch_profiles_add_config(ps, d->cfg, err) < 0) {
			orch_profiles_done(ps);
			free(ps);
			return orch_err_prefix(err, "profiles");
		}
	}
	d->profiles = ps;
	orch_logf(ORCH_LOG_INFO, "profiles", "%zu agent profile(s)", ps->n);
	return 0;
}

void orchd_profiles_free(struct orchd *d)
{
	if (!d->profiles)
		return;
	orch_profiles_done(d->profiles);
	free(d->profiles);
	d->profiles = NULL;
}

bool orchd_profile_known(const struct orchd *d, const char *name)
{
	return d->profiles && orch_profiles_find(d->profiles, name);
}

int orchd_profile_apply(struct orchd *d, const char *name, const char *prompt,
			const char *const *args, struct task_cmd *ret, struct orch_error *err)
{
	const struct orch_profile *p = d->profiles ? orch_profiles_find(d->profiles, name) : NULL;
	struct orch_profile_cmd pc = {0};
	int r;

	if (!p)
		return orch_err(err, -ENOENT, "no profile named \"%s\"", name);
	r = orch_profile_command(p, prompt, args, &pc, err);
	if (r < 0)
		return r;
	ret->argv = pc.argv; /* transferred */
	ret->env = pc.env;   /* transferred */
	pc.argv = pc.env = NULL;
	ret->limits = p->limits;
	orch_profile_cmd_done(&pc);
	return 0;
}

void task_cmd_done(struct task_cmd *c)
{
	cfg_strv_free(c->argv);
	cfg_strv_free(c->env);
	c->argv = c->env = NULL;
}
