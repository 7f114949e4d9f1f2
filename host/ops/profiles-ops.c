/* SPDX-License-Identifier: Apache-2.0 */
/* Shipped profiles plus the config's (host/profile.h), loaded once at start. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config-util.h"
#include "log.h"
#include "orchd.h"
#include "profile.h"
#include "profiles.h"
#include "schema.h"
#include "strv.h"

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
	r = orch_profile_command(p, d->cfg->agents_dir, prompt, args, &pc, err);
	if (r < 0)
		return r;
	ret->argv = pc.argv;	     /* transferred */
	ret->env = pc.env;	     /* transferred */
	ret->ro_paths = pc.ro_paths; /* transferred */
	pc.argv = pc.env = pc.ro_paths = NULL;
	ret->limits = p->limits;
	orch_profile_cmd_done(&pc);
	return 0;
}

/* Resolved when it exists (symlinks followed), else as written. */
static const char *resolved(const char *p, char buf[PATH_MAX])
{
	return realpath(p, buf) ? buf : p;
}

static int ro_path_check_one(const char *path, const char *what, const char *which,
			     struct orch_error *err)
{
	char rp[PATH_MAX], rw[PATH_MAX];
	if (!which)
		return 0;
	if (orch_paths_overlap(resolved(path, rp), resolved(which, rw)) ||
	    orch_paths_overlap(path, which))
		return orch_err(err, -EPERM, "read-only path %s overlaps %s (%s)", path, what,
				which);
	return 0;
}

int orchd_ro_path_check(const struct orchd_config *c, const char *path, struct orch_error *err)
{
	int r;
	if ((r = ro_path_check_one(path, "orchd's state directory", c->state_dir, err)) < 0 ||
	    (r = ro_path_check_one(path, "orchd's socket", c->socket, err)) < 0 ||
	    (r = ro_path_check_one(path, "the workspace root", c->workspace_root, err)) < 0)
		return r;
	for (size_t i = 0; i < c->n_vms; i++)
		if ((r = ro_path_check_one(path, "a VM's workspaces", c->vms[i].workspace, err)) <
		    0)
			return r;
	for (size_t i = 0; i < c->llm.n_upstreams; i++)
		if ((r = ro_path_check_one(path, "an LLM key file", c->llm.upstreams[i].key_file,
					   err)) < 0)
			return r;
	return 0;
}

void task_cmd_done(struct task_cmd *c)
{
	orch_strv_free(c->argv);
	orch_strv_free(c->env);
	orch_strv_free(c->ro_paths);
	c->argv = c->env = c->ro_paths = NULL;
}
