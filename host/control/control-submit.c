/* SPDX-License-Identifier: Apache-2.0 */
/* task.submit: validates a submission strictly, applies its profile, and hands it to the
 * group commit (control-group.h), which stores it queued and answers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "config-util.h"
#include "control-group.h"
#include "control.h"
#include "store-pg.h"
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

/* With a shared store a VM of any node will do; the profile is checked where it is leased
 * (each node leases only what its VMs allow). */
static int check_cluster_placement(struct orchd *d, const char *vm, int64_t slot,
				   struct orch_error *err)
{
	int64_t slots = 0;
	int r;

	if (!vm)
		return 0;
	if (orchd_find_vm(d, vm))
		slots = orchd_find_vm(d, vm)->n_slots;
	else if ((r = store_vm_find(d->store, vm, NULL, &slots, err)) == -ENOENT)
		return orch_err(err, ORCH_RPC_NOT_FOUND,
				"params.vm: no VM named \"%s\" in the cluster", vm);
	else if (r < 0)
		return r;
	if (slot >= slots)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.vm: VM %s has %lld slots", vm,
				(long long)slots);
	return 0;
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

/* Submissions waiting in the group commit count as queued. */
static int queue_has_room(struct orchd *d, size_t pending, struct orch_error *err)
{
	int64_t counts[_TASK_STATE_MAX];

	if (d->n_queued + (int64_t)pending < d->cfg->scheduler.max_queue)
		return 0;
	/* the cached count only grows between refreshes: refresh before refusing */
	if (store_task_counts(d->store, counts, err) >= 0)
		d->n_queued = counts[TASK_QUEUED];
	if (d->n_queued + (int64_t)pending >= d->cfg->scheduler.max_queue)
		return orch_err(err, ORCH_RPC_BUSY,
				"the queue is full (%lld tasks; scheduler.max_queue)",
				(long long)(d->n_queued + (int64_t)pending));
	return 0;
}

/* One task.submit from its validation to its answer: the task's spec and everything it
 * borrows from, until the group commit has stored it (control-group.h). */
struct submission {
	struct group_entry entry;
	struct task_spec spec;
	json_t *params; /* argv's strings are its */
	const char **args;
	char *vm, *cwd, *profile, *prompt, *repo, *ref;
	struct task_cmd cmd;
	struct orchd_git_submit gs; /* gs.repo: a repository task */
	char **env, **egress;
};

static void submission_free(struct submission *sub)
{
	json_decref(sub->params);
	free(sub->args);
	free(sub->vm);
	free(sub->cwd);
	free(sub->profile);
	free(sub->prompt);
	free(sub->repo);
	free(sub->ref);
	orchd_git_submit_done(&sub->gs);
	task_cmd_done(&sub->cmd);
	orch_strv_free(sub->env);
	orch_strv_free(sub->egress);
	free(sub);
}

/* Validates params strictly, applies the profile and fills sub->spec. */
static int submission_parse(struct orchd *d, struct orch_rpc *rpc, size_t pending, json_t *params,
			    struct submission *sub, struct orch_error *err)
{
	static const char *const keys[] = {"argv",     "env",	     "cwd",	"vm",	   "slot",
					   "priority", "timeout_ms", "retries", "profile", "prompt",
					   "egress",   "repo",	     "ref",	NULL};
	struct task_spec *spec = &sub->spec;
	struct task_cmd *cmd = &sub->cmd;
	size_t n_egress = 0;
	int64_t timeout = 0;
	int r;

	*spec = (struct task_spec){.slot = -1, .retries = d->cfg->scheduler.retries};
	if (!json_is_object(params))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.argv: required");
	sub->params = json_incref(params);
	if ((r = cfg_check_keys(params, "params", keys, err)) < 0 ||
	    (r = cfg_string(params, "params", "vm", ORCHD_VM_NAME_MAX, false, &sub->vm, err)) < 0 ||
	    (r = cfg_string(params, "params", "cwd", 4095, false, &sub->cwd, err)) < 0 ||
	    (r = cfg_string(params, "params", "profile", ORCHD_NAME_MAX, false, &sub->profile,
			    err)) < 0 ||
	    (r = cfg_int(params, "params", "slot", 0, ORCH_MAX_SLOTS - 1, &spec->slot, err)) < 0 ||
	    (r = cfg_int(params, "params", "priority", -1000000, 1000000, &spec->priority, err)) <
		    0 ||
	    (r = cfg_int(params, "params", "timeout_ms", 0, 604800000, &timeout, err)) < 0 ||
	    (r = cfg_int(params, "params", "retries", 0, 10, &spec->retries, err)) < 0 ||
	    (r = cfg_strv(params, "params", "egress", 64, ORCHD_NAME_MAX, &sub->egress, &n_egress,
			  err)) < 0 ||
	    (r = cfg_string(params, "params", "repo", 4096, false, &sub->repo, err)) < 0 ||
	    (r = cfg_string(params, "params", "ref", 255, false, &sub->ref, err)) < 0)
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
	    !(sub->prompt = strdup(json_string_value(json_object_get(params, "prompt")))))
		return orch_err(err, -ENOMEM, "out of memory");
	if (sub->prompt && !sub->profile)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.prompt: needs params.profile");
	/* A VM of the config (a pooled one is its class: any of its VMs may take it); in a
	 * cluster the task may be for another node's VM. */
	if (sub->vm && !orchd_config_vm(d->cfg, sub->vm) && !store_shared(d->store))
		return orch_err(err, ORCH_RPC_NOT_FOUND, "params.vm: no VM named \"%s\"%s", sub->vm,
				orchd_find_vm(d, sub->vm)
					? " in the config (ask for its pool's class)"
					: "");
	if (sub->profile && !orchd_profile_known(d, sub->profile))
		return orch_err(err, ORCH_RPC_NOT_FOUND, "params.profile: no profile named \"%s\"",
				sub->profile);
	if (store_shared(d->store)) {
		/* a cluster: the task may be for another node's VM (or fit only there) */
		if ((r = check_cluster_placement(d, sub->vm, spec->slot, err)) < 0)
			return r;
	} else if ((r = check_placement(d, sub->vm, spec->slot, sub->profile, err)) < 0) {
		return r;
	}
	if ((r = orchd_egress_submit_check(d, sub->vm, sub->profile, sub->egress, err)) < 0 ||
	    (r = submit_git(d, rpc, sub->profile, sub->repo, sub->ref, &sub->gs, err)) < 0)
		return r;
	if (sub->cwd && sub->cwd[0] != '/')
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.cwd: expected an absolute path");
	if ((r = get_args(json_object_get(params, "argv"), !sub->profile, &sub->args, err)) < 0)
		return r;
	if (sub->profile) {
		r = orchd_profile_apply(d, sub->profile, sub->prompt, sub->args, cmd, err);
		if (r < 0) {
			/* err->msg is both the message and an argument: prefix it in place. */
			orch_err_prefix(err, "profile %s", sub->profile);
			return err->code = ORCH_RPC_INVALID_PARAMS;
		}
		if (!cmd->argv[0] || strv_len(cmd->argv) > ORCH_MAX_ARGV)
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"profile %s: the command is empty or too long",
					sub->profile);
		spec->limits = cmd->limits;
		for (size_t i = 0; cmd->ro_paths && cmd->ro_paths[i]; i++)
			if ((r = orchd_ro_path_check(d->cfg, cmd->ro_paths[i], err)) < 0) {
				orch_err_prefix(err, "profile %s", sub->profile);
				return err->code = ORCH_RPC_INVALID_PARAMS;
			}
	}
	if (timeout)
		spec->limits.timeout_ms = timeout;
	if ((r = get_env(json_object_get(params, "env"), cmd->env, &sub->env, err)) < 0 ||
	    (r = queue_has_room(d, pending, err)) < 0)
		return r;
	spec->argv = cmd->argv ? (const char *const *)cmd->argv : sub->args;
	spec->argc = cmd->argv ? strv_len(cmd->argv) : strv_len((char *const *)sub->args);
	spec->env = (const char *const *)sub->env;
	spec->n_env = strv_len(sub->env);
	spec->cwd = sub->cwd;
	spec->vm = sub->vm;
	spec->profile = sub->profile;
	spec->ro_paths = (const char *const *)cmd->ro_paths;
	spec->n_ro_paths = cmd->ro_paths ? strv_len(cmd->ro_paths) : 0;
	return 0;
}

/* The group's commit is over: the answer. */
static void submission_done(struct orchd *d, struct group_entry *e)
{
	struct submission *sub = (struct submission *)e;
	struct orch_error err;
	int code;

	orch_err_clear(&err);
	if (e->id > 0) {
		if (orchd_egress_task_sets(d, e->id, sub->egress, &err) < 0)
			/* the task runs without egress: deny by default */
			orch_log(ORCH_LOG_WARN, "egress", "cannot record the task's egress sets",
				 "error", err.msg, NULL);
		d->n_queued++;
		(void)orch_rpc_reply(
			e->req, json_pack("{sIss}", "id", (json_int_t)e->id, "state", "queued"));
	} else {
		code = orch_rpc_is_rpc_code(e->err.code) ? e->err.code : ORCH_RPC_INTERNAL_ERROR;
		(void)orch_rpc_reply_error(e->req, code,
					   e->err.msg[0] ? e->err.msg : "Internal error", NULL);
	}
	submission_free(sub);
}

/* A repository task: the task and what it works on (git_tasks) are one transaction of
 * their own, outside the group commit, which inserts tasks only. The group is committed
 * first, so the replies keep the order of the requests. */
static void submit_repository_task(struct orchd *d, struct control_group *g, struct submission *sub)
{
	struct group_entry *e = &sub->entry;
	int r;

	control_group_commit(g);
	if ((r = store_begin(d->store, &e->err)) < 0)
		goto out;
	if ((r = store_task_insert(d->store, &sub->spec, &e->id, &e->err)) < 0 ||
	    (r = orchd_git_task_insert(d, e->id, &sub->gs, sub->prompt, &e->err)) < 0) {
		store_rollback(d->store);
		goto out;
	}
	if ((r = store_commit(d->store, &e->err)) < 0)
		store_rollback(d->store);
out:
	if (r < 0) {
		e->id = 0;
		orch_err_prefix(&e->err, "the task was not stored");
	}
	e->done(d, e);
	if (r >= 0)
		sched_kick(d);
}

int control_task_submit(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	struct orchd *d = control_orchd(rpc);
	struct control_group *g = control_group_of(rpc);
	struct submission *sub = calloc(1, sizeof(*sub));

	if (!sub)
		return orch_err(err, -ENOMEM, "out of memory");
	sub->entry.req = req;
	sub->entry.done = submission_done;
	orch_err_clear(&sub->entry.err);
	if (submission_parse(d, rpc, control_group_pending(g), params, sub, &sub->entry.err) >= 0)
		sub->entry.spec = &sub->spec;
	if (sub->entry.spec && sub->gs.repo) {
		submit_repository_task(d, g, sub);
		return 0;
	}
	/* answered after the group's commit, a refusal too (replies keep their order) */
	control_group_add(g, &sub->entry);
	return 0;
}
