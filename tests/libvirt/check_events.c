/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of host/libvirt/events.c: libvirt lifecycle events mapped for orchd. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "events.h"

static struct lv_event classify(int event, int detail)
{
	struct lv_event ev;
	lv_event_classify(event, detail, &ev);
	ck_assert_int_eq(ev.event, event);
	ck_assert_int_eq(ev.detail, detail);
	return ev;
}

START_TEST(test_stopped)
{
	struct lv_event ev = classify(VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
	ck_assert_int_eq(ev.kind, LV_EV_STOPPED);
	ck_assert_str_eq(ev.reason, "destroyed");
	ck_assert(!ev.crashed);

	ev = classify(VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN);
	ck_assert_int_eq(ev.kind, LV_EV_STOPPED);
	ck_assert_str_eq(ev.reason, "shutdown");
	ck_assert(!ev.crashed);

	ev = classify(VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_CRASHED);
	ck_assert_str_eq(ev.reason, "crashed");
	ck_assert(ev.crashed);

	ev = classify(VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_FAILED);
	ck_assert_str_eq(ev.reason, "failed");
	ck_assert(ev.crashed);

	ev = classify(VIR_DOMAIN_EVENT_STOPPED, 9999);
	ck_assert_int_eq(ev.kind, LV_EV_STOPPED);
	ck_assert_str_eq(ev.reason, "stopped");
}
END_TEST

START_TEST(test_crash_and_others)
{
	struct lv_event ev = classify(VIR_DOMAIN_EVENT_CRASHED, VIR_DOMAIN_EVENT_CRASHED_PANICKED);
	ck_assert_int_eq(ev.kind, LV_EV_STOPPED);
	ck_assert(ev.crashed);

	ev = classify(VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED);
	ck_assert_int_eq(ev.kind, LV_EV_STARTED);

	ev = classify(VIR_DOMAIN_EVENT_SHUTDOWN, VIR_DOMAIN_EVENT_SHUTDOWN_GUEST);
	ck_assert_int_eq(ev.kind, LV_EV_OTHER);
	ck_assert_str_eq(ev.reason, "shutting-down");

	ev = classify(VIR_DOMAIN_EVENT_DEFINED, 0);
	ck_assert_int_eq(ev.kind, LV_EV_OTHER);

	ev = classify(-5, -5);
	ck_assert_int_eq(ev.kind, LV_EV_OTHER);
	ck_assert_str_eq(ev.reason, "other");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("libvirt_events");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_stopped);
	tcase_add_test(tc, test_crash_and_others);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
