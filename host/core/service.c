/* SPDX-License-Identifier: Apache-2.0 */
/* The services table (service.h): the core's calls fan out to every service added. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orchd.h"

int orchd_service_add(struct orchd *d, const struct orchd_service *s, struct orch_error *err)
{
	if (d->vm_methods)
		return orch_err(err, -EBUSY, "service %s: added after the VMs' channels exist",
				s->name);
	if (d->n_services >= ORCHD_MAX_SERVICES)
		return orch_err(err, -E2BIG, "service %s: too many services", s->name);
	for (size_t i = 0; i < d->n_services; i++)
		if (s->lane != ORCHD_LANE_NONE && d->services[i]->lane == s->lane)
			return orch_err(err, -EEXIST, "service %s: its lane is %s's", s->name,
					d->services[i]->name);
	d->services[d->n_services++] = s;
	return 0;
}

static const struct orchd_service *lane_service(const struct orchd *d, enum orchd_lane lane)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->lane == lane)
			return d->services[i];
	return NULL;
}

bool orchd_lane_wanted(const struct orchd *d, enum orchd_lane lane)
{
	const struct orchd_service *s = lane_service(d, lane);
	return s && s->lane_attach && (!s->lane_wanted || s->lane_wanted(d));
}

int vm_lane_attach(struct vm *vm, enum orchd_lane lane, int fd, struct orch_error *err)
{
	const struct orchd_service *s = lane_service(vm->d, lane);
	if (!s || !s->lane_attach) {
		close(fd);
		return orch_err(err, -EOPNOTSUPP, "no service takes this lane");
	}
	return s->lane_attach(vm, fd, err);
}

int orchd_services_channel_up(struct vm *vm, struct orch_error *err)
{
	for (size_t i = 0; i < vm->d->n_services; i++) {
		const struct orchd_service *s = vm->d->services[i];
		int r = s->channel_up ? s->channel_up(vm, err) : 0;
		if (r < 0)
			return r;
	}
	return 0;
}

void orchd_services_channel_down(struct vm *vm)
{
	for (size_t i = 0; i < vm->d->n_services; i++) {
		const struct orchd_service *s = vm->d->services[i];
		if (s->lane_drop)
			s->lane_drop(vm);
		if (s->channel_down)
			s->channel_down(vm);
	}
}

void orchd_services_vm_json(const struct vm *vm, json_t *obj)
{
	for (size_t i = 0; i < vm->d->n_services; i++)
		if (vm->d->services[i]->vm_json)
			vm->d->services[i]->vm_json(vm, obj);
}

void orchd_services_task_done(struct orchd *d, int64_t task)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->task_done)
			d->services[i]->task_done(d, task);
}

void orchd_services_task_pruned(struct orchd *d, int64_t task)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->task_pruned)
			d->services[i]->task_pruned(d, task);
}

void orchd_services_task_json(struct orchd *d, int64_t task, json_t *obj, bool detail)
{
	if (!obj)
		return;
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->task_json)
			d->services[i]->task_json(d, task, obj, detail);
}

void orchd_services_sched_pass(struct orchd *d)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->sched_pass)
			d->services[i]->sched_pass(d);
}

int orchd_services_task_leased(struct orchd *d, struct vm *vm, int64_t slot, int64_t task,
			       struct orch_error *err)
{
	for (size_t i = 0; i < d->n_services; i++) {
		if (!d->services[i]->task_leased)
			continue;
		int r = d->services[i]->task_leased(d, vm, slot, task, err);
		if (r != 0)
			return r;
	}
	return 0;
}

void orchd_services_task_changed(struct orchd *d, int64_t task)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->task_changed)
			d->services[i]->task_changed(d, task);
}

bool orchd_services_task_settled(struct orchd *d, int64_t task)
{
	for (size_t i = 0; i < d->n_services; i++)
		if (d->services[i]->task_settled && !d->services[i]->task_settled(d, task))
			return false;
	return true;
}

const struct orch_rpc_method *orchd_vm_methods(struct orchd *d, size_t *ret_n)
{
	if (!d->vm_methods) {
		size_t n = vm_n_core_methods;
		for (size_t i = 0; i < d->n_services; i++)
			n += d->services[i]->n_methods;
		struct orch_rpc_method *m = calloc(n, sizeof(*m));
		if (!m)
			return NULL;
		memcpy(m, vm_core_methods, vm_n_core_methods * sizeof(*m));
		n = vm_n_core_methods;
		for (size_t i = 0; i < d->n_services; i++) {
			if (!d->services[i]->n_methods)
				continue;
			memcpy(m + n, d->services[i]->methods,
			       d->services[i]->n_methods * sizeof(*m));
			n += d->services[i]->n_methods;
		}
		d->vm_methods = m;
		d->n_vm_methods = n;
	}
	*ret_n = d->n_vm_methods;
	return d->vm_methods;
}
