/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-run.h"
#include "loop.h"

struct ctx {
	struct orch_loop *loop;
	struct orch_io *ios[2];
	struct orch_timer *timers[3];
	int hits[3];
	int order[8];
	int n_order;
};

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static void io_free_other(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t ev,
			  void *data)
{
	struct ctx *c = data;
	int i = io == c->ios[0] ? 0 : 1;
	char b[16];

	(void)!read(fd, b, sizeof(b));
	c->hits[i]++;
	/* Free both: the other's event of this same batch must not be delivered. */
	orch_io_free(c->ios[0]);
	orch_io_free(c->ios[1]);
	c->ios[0] = c->ios[1] = NULL;
}

START_TEST(test_io_free_inside_callback)
{
	struct ctx c = {0};
	int a[2], b[2];

	ck_assert_int_eq(orch_loop_new(&c.loop), 0);
	pair(a);
	pair(b);
	ck_assert_int_eq(orch_io_add(c.loop, a[0], EPOLLIN, io_free_other, &c, &c.ios[0]), 0);
	ck_assert_int_eq(orch_io_add(c.loop, b[0], EPOLLIN, io_free_other, &c, &c.ios[1]), 0);
	ck_assert_int_eq(write(a[1], "x", 1), 1);
	ck_assert_int_eq(write(b[1], "y", 1), 1);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 1000), 0);
	ck_assert_int_eq(c.hits[0] + c.hits[1], 1);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 0), 0);
	ck_assert_int_eq(c.hits[0] + c.hits[1], 1);
	orch_loop_free(c.loop);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}
END_TEST

static void io_events_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t ev,
			 void *data)
{
	struct ctx *c = data;

	if (ev & EPOLLOUT) {
		c->hits[0]++;
		ck_assert_int_eq(orch_io_set_events(io, EPOLLIN), 0);
	}
	if (ev & EPOLLIN)
		c->hits[1]++;
	if (ev & (EPOLLHUP | EPOLLRDHUP))
		c->hits[2]++;
}

START_TEST(test_io_set_events)
{
	struct ctx c = {0};
	struct orch_io *io;
	int a[2];

	ck_assert_int_eq(orch_loop_new(&c.loop), 0);
	pair(a);
	ck_assert_int_eq(orch_io_add(c.loop, a[0], EPOLLOUT, io_events_cb, &c, &io), 0);
	ck_assert_int_eq(orch_io_fd(io), a[0]);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 1000), 0);
	ck_assert_int_eq(c.hits[0], 1);
	ck_assert_uint_eq(orch_io_get_events(io), EPOLLIN);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 0), 0);
	ck_assert_int_eq(c.hits[0], 1);
	ck_assert_int_eq(c.hits[1], 0);
	close(a[1]);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 1000), 0);
	ck_assert_int_ge(c.hits[1] + c.hits[2], 1);
	orch_io_free(io);
	orch_loop_free(c.loop);
	close(a[0]);
}
END_TEST

static void timer_order_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct ctx *c = data;

	for (int i = 0; i < 3; i++)
		if (c->timers[i] == t) {
			c->hits[i]++;
			if (c->n_order < 8)
				c->order[c->n_order++] = i;
		}
}

START_TEST(test_timer_order)
{
	struct ctx c = {0};

	ck_assert_int_eq(orch_loop_new(&c.loop), 0);
	ck_assert_int_eq(orch_timer_add(c.loop, 30, 0, timer_order_cb, &c, &c.timers[0]), 0);
	ck_assert_int_eq(orch_timer_add(c.loop, 10, 0, timer_order_cb, &c, &c.timers[1]), 0);
	ck_assert_int_eq(orch_timer_add(c.loop, 20, 0, timer_order_cb, &c, &c.timers[2]), 0);
	while (c.n_order < 3)
		ck_assert_int_eq(orch_loop_run_once(c.loop, -1), 0);
	ck_assert_int_eq(c.order[0], 1);
	ck_assert_int_eq(c.order[1], 2);
	ck_assert_int_eq(c.order[2], 0);
	/* A fired one-shot timer stays allocated and can be re-armed. */
	orch_timer_rearm(c.timers[1], 0);
	while (c.n_order < 4)
		ck_assert_int_eq(orch_loop_run_once(c.loop, -1), 0);
	ck_assert_int_eq(c.order[3], 1);
	/* A disarmed timer never fires. */
	orch_timer_rearm(c.timers[0], 0);
	orch_timer_disarm(c.timers[0]);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 20), 0);
	ck_assert_int_eq(c.hits[0], 1);
	orch_loop_free(c.loop); /* frees the remaining timers */
}
END_TEST

static void timer_self_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct ctx *c = data;

	c->hits[0]++;
	if (c->hits[0] == 3) {
		orch_timer_free(t);
		orch_timer_free(c->timers[1]); /* another, also pending */
		orch_loop_quit(loop);
	}
}

static void timer_never_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	ck_abort_msg("freed timer fired");
}

START_TEST(test_timer_interval_and_self_free)
{
	struct ctx c = {0};

	ck_assert_int_eq(orch_loop_new(&c.loop), 0);
	ck_assert_int_eq(orch_timer_add(c.loop, 1, 1, timer_self_cb, &c, &c.timers[0]), 0);
	ck_assert_int_eq(orch_timer_add(c.loop, 100000, 0, timer_never_cb, &c, &c.timers[1]), 0);
	ck_assert_int_eq(orch_loop_run(c.loop), 0);
	ck_assert_int_eq(c.hits[0], 3);
	orch_loop_free(c.loop);
}
END_TEST

static void timer_rearm0_cb(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct ctx *c = data;

	c->hits[0]++;
	orch_timer_rearm(t, 0); /* must not spin inside one iteration */
}

START_TEST(test_timer_rearm_zero_no_spin)
{
	struct ctx c = {0};
	struct orch_timer *t;

	ck_assert_int_eq(orch_loop_new(&c.loop), 0);
	ck_assert_int_eq(orch_timer_add(c.loop, 0, 0, timer_rearm0_cb, &c, &t), 0);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 0), 0);
	ck_assert_int_eq(c.hits[0], 1);
	ck_assert_int_eq(orch_loop_run_once(c.loop, 0), 0);
	ck_assert_int_eq(c.hits[0], 2);
	orch_timer_free(t);
	orch_timer_free(NULL);
	orch_io_free(NULL);
	orch_loop_free(c.loop);
}
END_TEST

START_TEST(test_io_add_bad_fd)
{
	struct orch_loop *loop;
	struct orch_io *io;

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(orch_io_add(loop, -1, EPOLLIN, io_events_cb, NULL, &io), -EINVAL);
	ck_assert_int_eq(orch_io_add(loop, 987, EPOLLIN, io_events_cb, NULL, &io), -EBADF);
	orch_loop_free(loop);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_io_free_inside_callback);
	tcase_add_test(tc, test_io_set_events);
	tcase_add_test(tc, test_timer_order);
	tcase_add_test(tc, test_timer_interval_and_self_free);
	tcase_add_test(tc, test_timer_rearm_zero_no_spin);
	tcase_add_test(tc, test_io_add_bad_fd);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
