/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <libvirt/virterror.h>

#include "events.h"

void lv_event_classify(int event, int detail, struct lv_event *ret)
{
	struct lv_event ev = {
		.kind = LV_EV_OTHER, .reason = "other", .event = event, .detail = detail};
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
	case VIR_DOMAIN_EVENT_RESUMED:
		ev.kind = LV_EV_STARTED;
		ev.reason = "started";
		break;
	case VIR_DOMAIN_EVENT_STOPPED:
		ev.kind = LV_EV_STOPPED;
		switch (detail) {
		case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
			ev.reason = "shutdown";
			break;
		case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
			ev.reason = "destroyed";
			break;
		case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
			ev.reason = "crashed";
			ev.crashed = true;
			break;
		case VIR_DOMAIN_EVENT_STOPPED_FAILED:
			ev.reason = "failed";
			ev.crashed = true;
			break;
		case VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
			ev.reason = "migrated";
			break;
		case VIR_DOMAIN_EVENT_STOPPED_SAVED:
			ev.reason = "saved";
			break;
		case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT:
			ev.reason = "snapshot";
			break;
		default:
			ev.reason = "stopped";
		}
		break;
	case VIR_DOMAIN_EVENT_CRASHED:
		/* on_crash=destroy follows with STOPPED; report the crash itself too. */
		ev.kind = LV_EV_STOPPED;
		ev.reason = "crashed";
		ev.crashed = true;
		break;
	case VIR_DOMAIN_EVENT_SHUTDOWN:
		ev.reason = "shutting-down";
		break;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		ev.reason = "suspended";
		break;
	default:
		break;
	}
	*ret = ev;
}

struct sub {
	lv_event_cb cb;
	void *data;
};

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	struct sub *s = opaque;
	struct lv_event ev;
	lv_event_classify(event, detail, &ev);
	if (virDomainGetUUIDString(dom, ev.uuid) < 0)
		ev.uuid[0] = 0;
	const char *name = virDomainGetName(dom);
	s->cb(name ? name : "", &ev, s->data);
	return 0;
}

int lv_events_subscribe(virConnectPtr conn, virDomainPtr dom, lv_event_cb cb, void *data,
			int *ret_id, struct orch_error *err)
{
	struct sub *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cb = cb;
	s->data = data;
	int id = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
						  VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), s, free);
	if (id < 0) {
		const char *m = virGetLastErrorMessage();
		free(s);
		return orch_err(err, -EIO,
				"cannot subscribe to libvirt lifecycle events: %s (was an event "
				"implementation registered before connecting?)",
				m ? m : "unknown error");
	}
	*ret_id = id;
	return 0;
}

void lv_events_unsubscribe(virConnectPtr conn, int id)
{
	if (conn && id >= 0)
		virConnectDomainEventDeregisterAny(conn, id);
}
