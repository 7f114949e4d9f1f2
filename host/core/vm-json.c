/* SPDX-License-Identifier: Apache-2.0 */
/* A VM as the status methods show it (vm_to_json, vm.h): its slots' tasks, state, backend
 * and what the services beside the core add. */
#include "backend.h"
#include "orchd.h"
#include "service.h"

json_t *vm_to_json(const struct vm *vm)
{
	json_t *o = json_object(), *slots = json_array();

	for (int64_t i = 0; i < vm->n_slots; i++)
		json_array_append_new(slots, json_pack("{sIso}", "slot", (json_int_t)i, "task",
						       vm_slot_task(vm, i)
							       ? json_integer(vm_slot_task(vm, i))
							       : json_null()));
	json_object_set_new(o, "name", json_string(vm->cfg->name));
	if (vm->class_name)
		json_object_set_new(o, "class", json_string(vm->class_name));
	json_object_set_new(o, "backend", json_string(vm->ops->name));
	json_object_set_new(o, "state", json_string(vm_state_name(vm->state)));
	json_object_set_new(o, "boot_id", vm->boot_id[0] ? json_string(vm->boot_id) : json_null());
	json_object_set_new(o, "last_error",
			    vm->last_error[0] ? json_string(vm->last_error) : json_null());
	json_object_set_new(o, "workspace", json_string(vm->cfg->workspace));
	json_object_set_new(o, "slots", slots);
	if (vm->ops->describe)
		vm->ops->describe(vm, o);
	orchd_services_vm_json(vm, o);
	return o;
}
