/* SPDX-License-Identifier: Apache-2.0 */
/* vms.<name>.isolation, .pool and .snapshot (docs/CONFIG.md, docs/VM.md "Pools"). */
#include <errno.h>
#include <string.h>

#include "config-util.h"
#include "config.h"

static const char *const isolation_names[] = {"shared", "vm-per-task", NULL};

const char *orchd_isolation_name(enum orchd_isolation i)
{
	return i == ORCHD_ISOLATION_VM_PER_TASK ? "vm-per-task" : "shared";
}

int orchd_config_vm_pool(json_t *o, const char *path, struct orchd_vm_config *vm,
			 struct orch_error *err)
{
	static const char *const keys[] = {"ready", "max", "keep_workspaces", NULL};
	json_t *pool = o ? json_object_get(o, "pool") : NULL;
	char pp[80];
	int e = 0, r;

	if (!o)
		return 0;
	snprintf(pp, sizeof(pp), "%s.pool", path);
	if ((r = cfg_enum(o, path, "isolation", isolation_names, &e, err)) < 0 ||
	    (r = cfg_bool(o, path, "snapshot", &vm->snapshot, err)) < 0)
		return r;
	vm->isolation = (enum orchd_isolation)e;
	vm->pooled = pool != NULL || vm->isolation == ORCHD_ISOLATION_VM_PER_TASK;
	if (pool &&
	    ((r = cfg_object(pool, pp, err)) < 0 || (r = cfg_check_keys(pool, pp, keys, err)) < 0))
		return r;
	if (vm->isolation == ORCHD_ISOLATION_VM_PER_TASK) {
		/* One task per VM: a second slot would put two tasks in one VM. */
		if (json_object_get(o, "slots") && vm->slots != 1)
			return orch_err(err, -EINVAL,
					"%s.slots: a vm-per-task VM runs one task: slots must be 1",
					path);
		vm->slots = 1;
		vm->pool_ready = 1;
		if ((r = cfg_int(pool, pp, "ready", 0, 64, &vm->pool_ready, err)) < 0)
			return r;
		vm->pool_max = vm->pool_ready > 4 ? vm->pool_ready : 4;
		if ((r = cfg_int(pool, pp, "max", 1, 256, &vm->pool_max, err)) < 0)
			return r;
		if (vm->pool_max < vm->pool_ready)
			return orch_err(err, -EINVAL,
					"%s.max: %lld is below pool.ready (%lld): the pool could "
					"never hold its ready VMs",
					pp, (long long)vm->pool_max, (long long)vm->pool_ready);
		vm->pool_keep_workspaces = ORCHD_POOL_KEEP_WORKSPACES_DEFAULT;
		if ((r = cfg_int(pool, pp, "keep_workspaces", 0, 1000000, &vm->pool_keep_workspaces,
				 err)) < 0)
			return r;
	} else if (pool) {
		/* Shared: the class is pool.ready VMs alike, kept up. */
		vm->pool_ready = 1;
		if ((r = cfg_int(pool, pp, "ready", 1, 64, &vm->pool_ready, err)) < 0)
			return r;
		if (json_object_get(pool, "max"))
			return orch_err(err, -EINVAL,
					"%s.max: only a vm-per-task pool grows; a shared one is "
					"pool.ready VMs",
					pp);
		if (json_object_get(pool, "keep_workspaces"))
			return orch_err(err, -EINVAL,
					"%s.keep_workspaces: only a vm-per-task pool prunes its "
					"retired VMs' workspaces",
					pp);
		vm->pool_max = vm->pool_ready;
	}
	if (vm->snapshot && vm->backend != ORCHD_BACKEND_LIBVIRT)
		return orch_err(err, -EINVAL,
				"%s.snapshot: only the libvirt backend starts VMs from snapshots",
				path);
	if (vm->snapshot && !vm->pooled)
		return orch_err(err, -EINVAL,
				"%s.snapshot: snapshots serve pools: add \"pool\" or isolation "
				"\"vm-per-task\"",
				path);
	return 0;
}
