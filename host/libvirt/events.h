/* SPDX-License-Identifier: Apache-2.0 */
/* Domain lifecycle events through libvirt's event API (virConnectDomainEventRegisterAny).
 * The events run on whatever event implementation the process registered before
 * connecting (orchd: its own loop, host/libvirt/virt-event-loop.c). */
#pragma once

#include <stdbool.h>
#include <libvirt/libvirt.h>

#include "error.h"

enum lv_event_kind {
	LV_EV_STARTED = 1, /* running (booted, resumed, restored) */
	LV_EV_STOPPED,	   /* gone: the VM is down and its tasks are lost */
	LV_EV_OTHER,	   /* defined, suspended, ...: nothing for orch to do */
};

struct lv_event {
	enum lv_event_kind kind;
	const char *reason; /* static: "shutdown", "destroyed", "crashed", "failed", ... */
	bool crashed;	    /* the guest crashed or QEMU failed (worth a backoff) */
	int event, detail;  /* libvirt's raw values */
	char uuid[VIR_UUID_STRING_BUFLEN]; /* the domain's ("" when unknown): a domain
					      started later under the same name differs */
};

/* Maps libvirt's (event, detail) pair; pure. */
void lv_event_classify(int event, int detail, struct lv_event *ret);

typedef void (*lv_event_cb)(const char *domain, const struct lv_event *ev, void *data);

/* Calls cb for lifecycle events of every domain on conn (dom NULL) or of one domain.
 * Returns the callback id in *ret_id (for lv_events_unsubscribe). */
int lv_events_subscribe(virConnectPtr conn, virDomainPtr dom, lv_event_cb cb, void *data,
			int *ret_id, struct orch_error *err);
void lv_events_unsubscribe(virConnectPtr conn, int id);
