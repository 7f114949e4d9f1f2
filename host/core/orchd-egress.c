/* SPDX-License-Identifier: Apache-2.0 */
/* orchd with the egress gateway (see orchd-egress.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "strv.h"
#include "config-egress.h"
#include "egress-log.h"
#include "egress-serve.h"
#include "log.h"
#include "orchd-egress.h"
#include "orchd.h"

static void drop_lane(struct vm *vm);

int orchd_egress_new(struct orchd *d, struct orch_error *err)
{
	if (!d->cfg->egress)
		return 0;
	if (!store_db(d->store))
		return orch_err(
			err, -EOPNOTSUPP,
			"egress: the egress gateway keeps its log in the SQLite store; with a "
			"postgresql store leave the egress section out (docs/FLEET.md)");
	int r = egress_host_new(d->loop, d->cfg->egress, store_db(d->store), d->cfg->state_dir,
				&d->egress, err);
	if (r < 0)
		return orch_err_prefix(err, "egress");
	orch_logf(ORCH_LOG_INFO, "egress", "egress gateway ready: %zu set(s)",
		  d->cfg->egress->n_sets);
	return 0;
}

void orchd_egress_free(struct orchd *d)
{
	for (size_t i = 0; i < d->n_vms; i++)
		drop_lane(d->vms[i]);
	egress_host_free(d->egress);
	d->egress = NULL;
}

bool orchd_egress_enabled(const struct orchd *d)
{
	return d->egress != NULL;
}

static bool in(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* The sets of the config's profile name that lists some (NULL: it lists none, or the
 * profile is not one of the config's: no restriction). */
static char *const *profile_sets(const struct orchd *d, const char *profile)
{
	const struct orchd_profile_config *p =
		profile ? orchd_config_profile(d->cfg, profile) : NULL;
	return p ? p->egress : NULL;
}

/* The slot's task and the sets it may use: those it asked for that its VM allows (and
 * its profile, when the profile lists sets). */
static int slot_info(void *data, int64_t slot, int64_t *ret_task, char ***ret_sets)
{
	struct vm *vm = data;
	char **asked = NULL, **v;
	char *const *prof = NULL;
	struct task_row *t = NULL;
	size_t n = 0;

	int64_t task = vm_slot_task(vm, slot);

	if (!task)
		return -ENOENT;
	if (store_task_get(vm->d->store, task, &t, NULL) == 0)
		prof = profile_sets(vm->d, t->profile);
	if (egress_task_sets_get(store_db(vm->d->store), task, &asked, NULL) < 0) {
		task_row_free(t);
		return -EIO;
	}
	for (size_t i = 0; asked[i]; i++)
		n++;
	if (!(v = calloc(n + 1, sizeof(*v)))) {
		orch_strv_free(asked);
		return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; asked[i]; i++)
		if (in(vm->cfg->egress, asked[i]) && (!prof || in(prof, asked[i])))
			v[n++] = TAKE_PTR(asked[i]);
	orch_strv_free(asked);
	task_row_free(t);
	*ret_task = task;
	*ret_sets = v;
	return 0;
}

static void on_lane_close(void *data)
{
	drop_lane(data);
}

static int attach_lane(struct vm *vm, int fd, struct orch_error *err)
{
	int r;

	drop_lane(vm);
	if (!vm->d->egress) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP, "egress is not configured");
	}
	r = egress_serve_new(vm->d->egress, fd, vm->cfg->name, vm->n_slots, slot_info, vm,
			     &vm->egress, err);
	if (r < 0)
		return orch_err_prefix(err, "vm %s: egress lane", vm->cfg->name);
	egress_serve_set_close_cb(vm->egress, on_lane_close, vm);
	return 0;
}

static void drop_lane(struct vm *vm)
{
	struct egress_serve *s = vm->egress;

	vm->egress = NULL;
	egress_serve_free(s);
}

int orchd_egress_submit_check(struct orchd *d, const char *vm, const char *profile,
			      char *const *sets, struct orch_error *err)
{
	char *const *prof = profile_sets(d, profile);

	if (!sets || !sets[0])
		return 0;
	if (!d->cfg->egress)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"params.egress: egress is not configured (no \"egress\" in orchd's "
				"config)");
	for (size_t i = 0; sets[i]; i++) {
		bool ok = false;
		if (!egress_config_set(d->cfg->egress, sets[i]))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"params.egress: no egress set named \"%s\"", sets[i]);
		if (prof && !in(prof, sets[i]))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"params.egress: set \"%s\" is not allowed for profile %s "
					"(profiles.<name>.egress)",
					sets[i], profile);
		/* the config's VMs: a pooled class may have none running now */
		for (size_t j = 0; j < d->cfg->n_vms && !ok; j++)
			ok = (!vm || !strcmp(vm, d->cfg->vms[j].name)) &&
			     in(d->cfg->vms[j].egress, sets[i]);
		if (!ok)
			return orch_err(
				err, ORCH_RPC_INVALID_PARAMS,
				"params.egress: set \"%s\" is not allowed on %s%s (vms.<name>"
				".egress)",
				sets[i], vm ? "VM " : "any VM", vm ? vm : "");
	}
	return 0;
}

int orchd_egress_task_sets(struct orchd *d, int64_t task, char *const *sets, struct orch_error *err)
{
	if (!sets || !sets[0])
		return 0;
	return egress_task_sets_put(store_db(d->store), task, sets, err);
}

static void task_json(struct orchd *d, int64_t task, json_t *obj, bool detail)
{
	char **sets = NULL;
	json_t *e, *a;

	if (!detail || !d->cfg->egress || !obj)
		return;
	if (d->egress)
		egress_host_flush_log(d->egress);
	if (egress_task_sets_get(store_db(d->store), task, &sets, NULL) < 0)
		return;
	a = json_array();
	for (size_t i = 0; a && sets[i]; i++)
		json_array_append_new(a, json_string(sets[i]));
	orch_strv_free(sets);
	e = egress_log_summary(store_db(d->store), task);
	if (!e)
		e = json_pack("{sIsIsIsIsIs[]}", "connections", (json_int_t)0, "allowed",
			      (json_int_t)0, "denied", (json_int_t)0, "bytes_up", (json_int_t)0,
			      "bytes_down", (json_int_t)0, "hosts");
	if (e && a)
		json_object_set_new(e, "sets", a);
	else
		json_decref(a);
	if (e)
		json_object_set_new(obj, "egress", e);
}

static bool lane_wanted(const struct orchd *d)
{
	return orchd_egress_enabled(d);
}

const struct orchd_service orchd_egress_service = {
	.name = "egress",
	.lane = ORCHD_LANE_EGRESS,
	.lane_wanted = lane_wanted,
	.lane_attach = attach_lane,
	.lane_drop = drop_lane,
	.task_json = task_json,
};
