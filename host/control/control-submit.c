/* SPDX-License-Identifier: Apache-2.0 */
/* task.submit: validates a submission strictly, applies its profile, stores it queued. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config-util.h"
#include "control.h"
#include "log.h"
#include "orchd-egress.h"
#include "orchd-git.h"
#include "profiles.h"
#include "strv.h"

static int bad(struct orch_error *err, int r)
{
	if (r == -EINVAL)
		err->code = ORCH_RPC_INVALID_PARAMS;
	return err->code;
}

/* Refuses a task that no configured VM could ever run. */
static int check_placement(struct orchd *d, const char *vm, int64_t slot, const char *profile,
			   struct orch_error *err)
{
	for (size_t i = 0; i < d->cfg->n_vms; i++) { /* the config's: a pool may have none now */
		const struct orchd_vm_config *c = &d->cfg->vms[i];
		bool prof_ok = !profile || c->n_profiles == 0;

		for (size_t j = 0; !prof_ok && j < c->n_profiles; j++)
			prof_ok = strcmp(c->profiles[j], profile) == 0;
		if ((!vm || strcmp(vm, c->name) == 0) && slot < c->slots && prof_ok)
			return 0;
	}
	return orch_err(err, ORCH_RPC_INVALID_PARAMS,
			"no configured VM can run this task (%s%s%s%s slot %lld)", vm ? "vm " : "",
			vm ? vm : "", profile ? " profile " : "", profile ? profile : "",
			(long long)slot);
}

/* params.argv: strings without NUL, at most ORCH_MAX_ARGV; NULL-terminated, borrowed. */
static int get_args(json_t *a, bool required, const char ***ret, struct orch_error *err)
{
	const char **v;
	json_t *s;
	size_t i;

	if (!a && !required) {
		*ret = calloc(1, sizeof(char *));
		return *ret ? 0 : orch_err(err, -ENOMEM, "out of memory");
	}
	if (!json_is_array(a) || json_array_size(a) < (required ? 1u : 0u) ||
	    json_array_size(a) > ORCH_MAX_ARGV)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.argv: expected an array of %d..%d strings",
				required ? 1 : 0, ORCH_MAX_ARGV);
	v = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!v)
		return orch_err(err, -ENOMEM, "out of memory");
	json_array_foreach(a, i, s)
	{
		if (!json_is_string(s) || json_string_length(s) > ORCH_MAX_ARG_LEN ||
		    strlen(json_string_value(s)) != json_string_length(s)) {
			free(v);
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"params.argv[%zu]: expected a string without NUL bytes", i);
		}
		v[i] = json_string_value(s);
	}
	*ret = v;
	return 0;
}

/* base env (may be NULL) + params.env, as an owned NULL-terminated "K=V" array. */
static int get_env(json_t *e, char *const *base, char ***ret, struct orch_error *err)
{
	size_t nb = 0, n = 0;
	const char *k;
	char **v;
	json_t *s;

	while (base && base[nb])
		nb++;
	if (e && (!json_is_object(e) || json_object_size(e) > ORCH_MAX_ENV))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.env: expected an object of at most %d strings",
				ORCH_MAX_ENV);
	if (nb + (e ? json_object_size(e) : 0) > ORCH_MAX_ENV)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.env: too many variables");
	v = calloc(nb + (e ? json_object_size(e) : 0) + 1, sizeof(char *));
	if (!v)
		return orch_err(err, -ENOMEM, "out of memory");
	for (; n < nb; n++)
		if (!(v[n] = strdup(base[n])))
			goto oom;
	if (e)
		json_object_foreach(e, k, s)
		{
			if (!orch_env_name_valid(k) || !json_is_string(s) ||
			    json_string_length(s) > ORCH_MAX_ARG_LEN ||
			    strlen(json_string_value(s)) != json_string_length(s)) {
				orch_strv_free(v);
				return orch_err(err, ORCH_RPC_INVALID_PARAMS,
						"params.env.%.64s: expected NAME (letters, digits, "
						"_) and a string value",
						k);
			}
			if (asprintf(&v[n], "%s=%s", k, json_string_value(s)) < 0) {
				v[n] = NULL;
				goto oom;
			}
			n++;
		}
	*ret = v;
	return 0;
oom:
	orch_strv_free(v);
	return orch_err(err, -ENOMEM, "out of memory");
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

/* "repo" and "ref" (or the profile's): a repository task of the client's uid. */
static int submit_git(struct orchd *d, struct orch_rpc *rpc, const char *profile, const char *repo,
		      const char *ref, struct orchd_git_submit *gs, struct orch_error *err)
{
	uid_t uid = 65534;
	gid_t gid = 65534;
	int r;
	if ((repo || ref || profile) && (r = control_peer(rpc, &uid, &gid, err)) < 0)
		return r;
	return orchd_git_submit_check(d, uid, gid, profile, repo, ref, gs, err);
}

static int queue_has_room(struct orchd *d, struct orch_error *err)
{
	int64_t counts[_TASK_STATE_MAX];

	if (d->n_queued < d->cfg->scheduler.max_queue)
		return 0;
	/* the cached count only grows between refreshes: refresh before refusing */
	if (store_task_counts(d->store, counts, err) >= 0)
		d->n_queued = counts[TASK_QUEUED];
	if (d->n_queued >= d->cfg->scheduler.max_queue)
		return orch_err(err, ORCH_RPC_BUSY,
				"the queue is full (%lld tasks; scheduler.max_queue)",
				(long long)d->n_queued);
	return 0;
}

int control_task_submit(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	static const char *const keys[] = {"argv",     "env",	     "cwd",	"vm",	   "slot",
					   "priority", "timeout_ms", "retries", "profile", "prompt",
					   "egress",   "repo",	     "ref",	NULL};
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ const char **args = NULL;
	_cleanup_free_ char *vm = NULL, *cwd = NULL, *profile = NULL, *prompt = NULL;
	_cleanup_free_ char *repo = NULL, *ref = NULL;
	struct orchd_git_submit gs = {0};
	struct task_spec spec = {.slot = -1, .retries = d->cfg->scheduler.retries};
	struct task_cmd cmd = {0};
	char **env = NULL;
	_cleanup_(orch_strv_freep) char **egress = NULL;
	size_t n_egress = 0;
	int64_t id, timeout = 0;
	int r;

	if (!json_is_object(params))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.argv: required");
	if ((r = cfg_check_keys(params, "params", keys, err)) < 0 ||
	    (r = cfg_string(params, "params", "vm", ORCHD_VM_NAME_MAX, false, &vm, err)) < 0 ||
	    (r = cfg_string(params, "params", "cwd", 4095, false, &cwd, err)) < 0 ||
	    (r = cfg_string(params, "params", "profile", ORCHD_NAME_MAX, false, &profile, err)) <
		    0 ||
	    (r = cfg_int(params, "params", "slot", 0, ORCH_MAX_SLOTS - 1, &spec.slot, err)) < 0 ||
	    (r = cfg_int(params, "params", "priority", -1000000, 1000000, &spec.priority, err)) <
		    0 ||
	    (r = cfg_int(params, "params", "timeout_ms", 0, 604800000, &timeout, err)) < 0 ||
	    (r = cfg_int(params, "params", "retries", 0, 10, &spec.retries, err)) < 0 ||
	    (r = cfg_strv(params, "params", "egress", 64, ORCHD_NAME_MAX, &egress, &n_egress,
			  err)) < 0 ||
	    (r = cfg_string(params, "params", "repo", 4096, false, &repo, err)) < 0 ||
	    (r = cfg_string(params, "params", "ref", 255, false, &ref, err)) < 0)
		return bad(err, r);
	if (json_object_get(params, "prompt") &&
	    (!json_is_string(json_object_get(params, "prompt")) ||
	     json_string_length(json_object_get(params, "prompt")) > ORCHD_MAX_PROMPT ||
	     strlen(json_string_value(json_object_get(params, "prompt"))) !=
		     json_string_length(json_object_get(params, "prompt"))))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.prompt: expected a string of at most %d bytes without NUL",
				ORCHD_MAX_PROMPT);
	if (json_object_get(params, "prompt") &&
	    !(prompt = strdup(json_string_value(json_object_get(params, "prompt")))))
		return orch_err(err, -ENOMEM, "out of memory");
	if (prompt && !profile)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.prompt: needs params.profile");
	/* A VM of the config (a pooled one is its class: any of its VMs may take it). */
	if (vm && !orchd_config_vm(d->cfg, vm))
		return orch_err(err, ORCH_RPC_NOT_FOUND, "params.vm: no VM named \"%s\"%s", vm,
				orchd_find_vm(d, vm) ? " in the config (ask for its pool's class)"
						     : "");
	if (profile && !orchd_profile_known(d, profile))
		return orch_err(err, ORCH_RPC_NOT_FOUND, "params.profile: no profile named \"%s\"",
				profile);
	if ((r = check_placement(d, vm, spec.slot, profile, err)) < 0 ||
	    (r = orchd_egress_submit_check(d, vm, profile, egress, err)) < 0 ||
	    (r = submit_git(d, rpc, profile, repo, ref, &gs, err)) < 0)
		return r;
	if (cwd && cwd[0] != '/')
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.cwd: expected an absolute path");
	if ((r = get_args(json_object_get(params, "argv"), !profile, &args, err)) < 0)
		return r;
	if (profile) {
		r = orchd_profile_apply(d, profile, prompt, args, &cmd, err);
		if (r < 0) {
			/* err->msg is both the message and an argument: prefix it in place. */
			orch_err_prefix(err, "profile %s", profile);
			return err->code = ORCH_RPC_INVALID_PARAMS;
		}
		if (!cmd.argv[0] || strv_len(cmd.argv) > ORCH_MAX_ARGV) {
			task_cmd_done(&cmd);
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"profile %s: the command is empty or too long", profile);
		}
		spec.limits = cmd.limits;
		for (size_t i = 0; cmd.ro_paths && cmd.ro_paths[i]; i++)
			if ((r = orchd_ro_path_check(d->cfg, cmd.ro_paths[i], err)) < 0) {
				task_cmd_done(&cmd);
				orch_err_prefix(err, "profile %s", profile);
				return err->code = ORCH_RPC_INVALID_PARAMS;
			}
	}
	if (timeout)
		spec.limits.timeout_ms = timeout;
	r = get_env(json_object_get(params, "env"), cmd.env, &env, err);
	if (r >= 0)
		r = queue_has_room(d, err);
	if (r >= 0) {
		spec.argv = cmd.argv ? (const char *const *)cmd.argv : args;
		spec.argc = cmd.argv ? strv_len(cmd.argv) : strv_len((char *const *)args);
		spec.env = (const char *const *)env;
		spec.n_env = strv_len(env);
		spec.cwd = cwd;
		spec.vm = vm;
		spec.profile = profile;
		spec.ro_paths = (const char *const *)cmd.ro_paths;
		spec.n_ro_paths = cmd.ro_paths ? strv_len(cmd.ro_paths) : 0;
		/* the task and what it works on are one transaction */
		r = gs.repo ? store_begin(d->store, err) : 0;
		if (r >= 0)
			r = store_task_insert(d->store, &spec, &id, err);
		if (r >= 0 && gs.repo)
			r = orchd_git_task_insert(d, id, &gs, prompt, err);
		if (gs.repo && r >= 0)
			r = store_commit(d->store, err);
		else if (gs.repo)
			store_rollback(d->store);
	}
	task_cmd_done(&cmd);
	orch_strv_free(env);
	orchd_git_submit_done(&gs);
	if (r < 0)
		return r;
	if (orchd_egress_task_sets(d, id, egress, err) < 0) {
		/* the task runs without egress: deny by default */
		orch_log(ORCH_LOG_WARN, "egress", "cannot record the task's egress sets", "error",
			 err->msg, NULL);
		orch_err_clear(err);
	}
	d->n_queued++;
	sched_kick(d);
	return orch_rpc_reply(req, json_pack("{sIss}", "id", (json_int_t)id, "state", "queued"));
}
