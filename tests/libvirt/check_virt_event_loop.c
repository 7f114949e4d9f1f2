/* SPDX-License-Identifier: Apache-2.0 */
/* libvirt's event API driven by orchd's loop (host/libvirt/virt-event-loop.c): handles, timeouts,
 * updates, removal with the deferred free callback, and the callbacks still pending at
 * teardown. Uses libvirt's public wrappers
 * (virEventAddHandle, ...) exactly as libvirt's own code does. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <libvirt/libvirt.h>

#include "check-run.h"
#include "virt-event-loop.h"

static struct orch_loop *loop;
static int handle_calls, handle_events, timeout_calls, freed;

static void on_handle(int watch, int fd, int events, void *opaque)
{
	char buf[16];

	handle_calls++;
	handle_events |= events;
	if (events & VIR_EVENT_HANDLE_READABLE)
		(void)!read(fd, buf, sizeof(buf));
}

static void on_timeout(int timer, void *opaque)
{
	timeout_calls++;
}

static void on_free(void *opaque)
{
	freed++;
}

static void spin(int ms)
{
	uint64_t end = orch_now_ms() + (uint64_t)ms;

	while (orch_now_ms() < end)
		orch_loop_run_once(loop, 5);
}

START_TEST(test_events)
{
	int p[2], w, t;

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(orchd_event_libvirt_register(loop), 0);
	ck_assert_int_eq(orchd_event_libvirt_register(loop), -EALREADY);

	/* handles */
	ck_assert_int_eq(pipe(p), 0);
	w = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, NULL, on_free);
	ck_assert_int_ge(w, 0);
	spin(20);
	ck_assert_int_eq(handle_calls, 0);
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	spin(20);
	ck_assert_int_eq(handle_calls, 1);
	ck_assert(handle_events & VIR_EVENT_HANDLE_READABLE);
	virEventUpdateHandle(w, 0); /* disabled: no more callbacks */
	ck_assert_int_eq(write(p[1], "y", 1), 1);
	spin(20);
	ck_assert_int_eq(handle_calls, 1);
	virEventUpdateHandle(w, VIR_EVENT_HANDLE_READABLE);
	spin(20);
	ck_assert_int_eq(handle_calls, 2);
	ck_assert_int_eq(virEventRemoveHandle(w), 0);
	ck_assert_int_eq(freed, 0); /* deferred past the remove call */
	spin(20);
	ck_assert_int_eq(freed, 1);
	ck_assert_int_eq(virEventRemoveHandle(w), -1);

	/* timeouts: repeating, disabled with -1, re-enabled, removed */
	t = virEventAddTimeout(10, on_timeout, NULL, on_free);
	ck_assert_int_ge(t, 0);
	spin(100);
	ck_assert_int_ge(timeout_calls, 3);
	virEventUpdateTimeout(t, -1);
	timeout_calls = 0;
	spin(60);
	ck_assert_int_eq(timeout_calls, 0);
	virEventUpdateTimeout(t, 0); /* 0: as soon as possible, repeatedly */
	spin(30);
	ck_assert_int_ge(timeout_calls, 2);
	ck_assert_int_eq(virEventRemoveTimeout(t), 0);
	timeout_calls = 0;
	spin(30);
	ck_assert_int_eq(timeout_calls, 0);
	ck_assert_int_eq(freed, 2);
	/* a disabled-from-the-start timeout never fires */
	t = virEventAddTimeout(-1, on_timeout, NULL, NULL);
	spin(30);
	ck_assert_int_eq(timeout_calls, 0);
	ck_assert_int_eq(virEventRemoveTimeout(t), 0);

	/* removed when the loop runs no more (orchd's teardown): drain runs the free
	 * callbacks left pending, once */
	w = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, on_handle, NULL, on_free);
	t = virEventAddTimeout(10, on_timeout, NULL, on_free);
	ck_assert_int_eq(virEventRemoveHandle(w), 0);
	ck_assert_int_eq(virEventRemoveTimeout(t), 0);
	ck_assert_int_eq(freed, 2);
	orchd_event_libvirt_drain();
	ck_assert_int_eq(freed, 4);
	spin(20);
	ck_assert_int_eq(freed, 4);
	orchd_event_libvirt_drain();
	ck_assert_int_eq(freed, 4);
	close(p[0]);
	close(p[1]);
	orch_loop_free(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("host_event_libvirt");
	TCase *tc = tcase_create("events");

	tcase_add_test(tc, test_events);
	suite_add_tcase(s, tc);
	return orch_check_run_opts(s, &(struct orch_check_opts){.no_fork = true});
}
