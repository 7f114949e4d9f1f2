/* SPDX-License-Identifier: Apache-2.0 */
/* Control methods for VMs: vm.list, vm.up, vm.down, vm.restart, vm.console. A pooled
 * class (host/pool/) is named by its class: up/down fill and empty its pool; one of its
 * VMs taken down or restarted is retired (the pool makes another). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "cleanup.h"
#include "config-util.h"
#include "control.h"
#include "log.h"
#include "pool.h"

#define CONSOLE_TAIL_MAX (256 * 1024)

/* params.name; *ret the VM, NULL (and 0) when it names a pooled class. */
static int get_vm_or_class(struct orchd *d, json_t *params, const char *const *keys,
			   struct vm **ret, char **ret_name, struct orch_error *err)
{
	_cleanup_free_ char *name = NULL;
	int r;

	if (!json_is_object(params))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.name: required (a VM name)");
	r = cfg_check_keys(params, "params", keys, err);
	if (r >= 0)
		r = cfg_string(params, "params", "name", ORCHD_VM_NAME_MAX, false, &name, err);
	if (r < 0) {
		err->code = ORCH_RPC_INVALID_PARAMS;
		return err->code;
	}
	if (!name)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "params.name: required (a VM name)");
	*ret = orchd_find_vm(d, name);
	if (!*ret && !(ret_name && pools_is_class(d, name)))
		return orch_err(err, ORCH_RPC_NOT_FOUND, "no VM named \"%s\"", name);
	if (ret_name)
		*ret_name = TAKE_PTR(name);
	return 0;
}

static int get_vm(struct orchd *d, json_t *params, const char *const *keys, struct vm **ret,
		  struct orch_error *err)
{
	return get_vm_or_class(d, params, keys, ret, NULL, err);
}

int control_vm_list(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct orchd *d = control_orchd(rpc);
	json_t *a;

	if (params && (!json_is_object(params) || json_object_size(params)))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "vm.list takes no params");
	a = json_array();
	for (size_t i = 0; i < d->n_vms; i++)
		json_array_append_new(a, vm_to_json(d->vms[i]));
	return orch_rpc_reply(req, json_pack("{soso}", "vms", a, "pools", pools_json(d)));
}

/* up/down/restart of a pooled class (vm NULL) or of one of its VMs. */
static int pool_action(struct orch_rpc_req *req, struct orchd *d, struct vm *vm, const char *name,
		       const char *what, struct orch_error *err)
{
	int r;

	orch_log(ORCH_LOG_INFO, "control", "pool action", "name", name, "action", what, NULL);
	if (vm)
		r = strcmp(what, "up") == 0
			    ? orch_err(err, ORCH_RPC_CONFLICT,
				       "VM %s is its pool's: `orch vm up %s` fills the pool", name,
				       vm_class_name(vm))
			    : pools_retire(d, name, err);
	else if (strcmp(what, "down") == 0)
		r = pools_down(d, name, err);
	else if (strcmp(what, "up") == 0)
		r = pools_up(d, name, err);
	else /* restart: every VM of the pool retired, the pool fills again */
		r = pools_down(d, name, err) < 0 ? err->code : pools_up(d, name, err);
	if (r < 0)
		return r;
	sched_kick(d);
	return orch_rpc_reply(req, json_pack("{s:s, s:s}", "name", name, "action", what));
}

static int vm_action(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params,
		     const char *what, struct orch_error *err)
{
	static const char *const keys[] = {"name", NULL};
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *name = NULL;
	struct vm *vm;
	char why[64];
	int r;

	if ((r = get_vm_or_class(d, params, keys, &vm, &name, err)) < 0)
		return r;
	if (!vm || vm->owner)
		return pool_action(req, d, vm, name, what, err);
	snprintf(why, sizeof(why), "orch vm %s", what);
	orch_log(ORCH_LOG_INFO, "control", "vm action", "vm", vm->cfg->name, "action", what, NULL);
	if (strcmp(what, "down") == 0 || strcmp(what, "restart") == 0)
		vm_stop(vm, why, strcmp(what, "restart") == 0);
	if (strcmp(what, "up") == 0 || strcmp(what, "restart") == 0) {
		if (vm->state == VM_READY || vm->state == VM_STARTING)
			return orch_err(err, ORCH_RPC_CONFLICT, "VM %s is already %s",
					vm->cfg->name, vm_state_name(vm->state));
		vm->failures = 0;
		orch_timer_disarm(vm->restart_timer);
		vm_start(vm);
	}
	sched_kick(d);
	return orch_rpc_reply(req, vm_to_json(vm));
}

int control_vm_up(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		  struct orch_error *err)
{
	return vm_action(rpc, req, params, "up", err);
}

int control_vm_down(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	return vm_action(rpc, req, params, "down", err);
}

int control_vm_restart(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	return vm_action(rpc, req, params, "restart", err);
}

int control_vm_console(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	static const char *const keys[] = {"name", "bytes", NULL};
	struct orchd *d = control_orchd(rpc);
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	int64_t want = 16384;
	const char *path;
	struct stat st;
	struct vm *vm;
	json_t *tail;
	ssize_t n;
	int r;

	if ((r = get_vm(d, params, keys, &vm, err)) < 0)
		return r;
	if (cfg_int(params, "params", "bytes", 0, CONSOLE_TAIL_MAX, &want, err) < 0) {
		err->code = ORCH_RPC_INVALID_PARAMS;
		return err->code;
	}
	path = vm->ops->console_path ? vm->ops->console_path(vm) : NULL;
	if (!path)
		return orch_err(err, ORCH_RPC_NOT_FOUND,
				"VM %s has no console log (the %s backend has none, or it never "
				"started)",
				vm->cfg->name, vm->ops->name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0)
		return orch_err(err, ORCH_RPC_NOT_FOUND, "cannot open the console log %s", path);
	buf = malloc((size_t)want + 1);
	if (!buf)
		return orch_err(err, -ENOMEM, "out of memory");
	n = pread(fd, buf, (size_t)want, st.st_size > want ? st.st_size - want : 0);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	/* The console is guest output: a JSON string when it is valid UTF-8, else base64. */
	tail = json_stringn(buf, (size_t)n);
	if (!tail) {
		_cleanup_free_ char *b64 = orch_b64_encode(buf, (size_t)n);
		return orch_rpc_reply(req, json_pack("{sssIss?}", "path", path, "size",
						     (json_int_t)st.st_size, "tail_b64", b64));
	}
	return orch_rpc_reply(req, json_pack("{sssIso}", "path", path, "size",
					     (json_int_t)st.st_size, "tail", tail));
}
