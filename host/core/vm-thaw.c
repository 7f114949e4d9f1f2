/* SPDX-License-Identifier: Apache-2.0 */
/* vm.thaw (vm-thaw.h; docs/PROTOCOL.md "Snapshots"): a VM restored from a snapshot is its
 * template's copy until its frozen supervisor has mixed a seed of the host's into the
 * kernel's generator, taken the host's time (its own is the snapshot's), its name, and
 * mounted the shares the backend attached after the restore. Only then is it ready. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "backend.h"
#include "cleanup.h"
#include "log.h"
#include "orchd.h"
#include "schema-vm.h"
#include "vm-thaw.h"

#define THAW_SEED_BYTES 64
#define THAW_TIMEOUT_MS 30000

struct thaw_call {
	struct vm *vm;
	struct orch_rpc *rpc; /* the channel it was sent on */
};

static void on_thaw_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *rerr,
			  json_t *err_data, void *data)
{
	_cleanup_free_ struct thaw_call *c = data;
	struct vm *vm = c->vm;
	struct orch_error perr = {0};
	struct orch_vm_thaw_result res = {0};
	char why[300];

	if (vm->rpc != c->rpc || vm->state != VM_STARTING)
		return; /* the channel went (vm_gone saw to it) */
	if (!rerr && orch_vm_thaw_result_parse(result, &res, &perr) == 0) {
		char warm[24] = "none";
		if (res.warm_ms >= 0)
			snprintf(warm, sizeof(warm), "%lld", (long long)res.warm_ms);
		snprintf(vm->boot_id, sizeof(vm->boot_id), "%s", res.boot_id);
		orch_log(ORCH_LOG_INFO, "vm", "thawed", "vm", vm->cfg->name, "boot_id", vm->boot_id,
			 "warm_ms", warm, NULL);
		vm_became_ready(vm);
		return;
	}
	snprintf(why, sizeof(why), "vm.thaw failed: %.256s", rerr ? rerr->msg : perr.msg);
	vm_gone(vm, why);
}

int vm_thaw_start(struct vm *vm, bool frozen, struct orch_error *err)
{
	unsigned char seed[THAW_SEED_BYTES];
	struct orch_vm_thaw t = {0};
	struct timespec now;
	int r;

	if (!vm->ops->thaw) {
		if (frozen)
			return orch_err(err, -EPROTO,
					"the supervisor waits for vm.thaw, but the %s backend "
					"restores no snapshots",
					vm->ops->name);
		return 0;
	}
	if ((r = vm->ops->thaw(vm, frozen, &t, err)) <= 0)
		return r;
	if (getrandom(seed, sizeof(seed), 0) != sizeof(seed))
		return orch_errno(err, -EIO, "cannot draw a seed for vm.thaw");
	clock_gettime(CLOCK_REALTIME, &now);
	t.seed = seed;
	t.seed_len = sizeof(seed);
	/* Its first task would pay for what a restored VM has not run yet (TCG's translation
	 * of bwrap's paths): one throwaway jail before it is ready (guest/warm.h). */
	t.warm = true;
	t.time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	json_t *params = orch_vm_thaw_build(&t);
	explicit_bzero(seed, sizeof(seed));
	struct thaw_call *c = malloc(sizeof(*c));
	if (!params || !c) {
		json_decref(params);
		free(c);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	*c = (struct thaw_call){vm, vm->rpc};
	if ((r = orch_rpc_call(vm->rpc, "vm.thaw", params, THAW_TIMEOUT_MS, on_thaw_reply, c)) <
	    0) {
		free(c);
		return orch_errno(err, r, "cannot send vm.thaw");
	}
	return 1;
}
