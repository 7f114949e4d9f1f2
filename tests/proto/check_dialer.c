/* SPDX-License-Identifier: Apache-2.0 */
/* The reconnecting dialer (proto/dialer.c) against a real Unix socket: the first dial,
 * dialling again with a growing backoff after connections that end at once, the backoff
 * starting over once the owner says the channel works, dial failures retried, a fixed
 * redial delay and a dial now, and an inherited fd dialled once. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check-run.h"
#include "dialer.h"

struct owner {
	struct orch_loop *loop;
	struct orch_dialer *d;
	int fds[16];
	int n_connected, n_failed, n_gone;
};

static int on_connected(void *data, int fd, struct orch_error *err)
{
	struct owner *o = data;

	ck_assert_int_lt(o->n_connected, 16);
	o->fds[o->n_connected++] = fd;
	return 0;
}

static void on_failed(void *data, const struct orch_error *err)
{
	((struct owner *)data)->n_failed++;
}

static void on_gone(void *data)
{
	((struct owner *)data)->n_gone++;
}

static const struct orch_dialer_ops ops = {on_connected, on_failed, on_gone};

static void run_until(struct owner *o, int *counter, int want, int max_ms)
{
	uint64_t end = orch_now_ms() + (uint64_t)max_ms;

	while (*counter < want && orch_now_ms() < end)
		orch_loop_run_once(o->loop, 5);
}

START_TEST(test_reconnect_backoff)
{
	char path[] = "/tmp/check-dialer-XXXXXX";
	struct orch_error err = {0};
	struct orch_addr a = {.kind = ORCH_TRANSPORT_UNIX};
	struct orch_dialer_opts opts = {.min_ms = 20, .max_ms = 80};
	struct owner o = {0};
	int lfd;

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(a.path, sizeof(a.path), "%s/s", path);
	lfd = orch_transport_listen(&a, 0600, &err);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(orch_loop_new(&o.loop), 0);
	ck_assert_int_eq(orch_dialer_new(o.loop, &a, &opts, &ops, &o, &o.d), 0);

	run_until(&o, &o.n_connected, 1, 2000); /* dialled at once */
	ck_assert_int_eq(o.n_connected, 1);
	/* Connections that end at once: dialled again at once, then after 20, 40, 80 ms */
	for (int i = 1; i <= 4; i++) {
		close(o.fds[i - 1]);
		orch_dialer_closed(o.d);
		uint64_t t0 = orch_now_ms();
		run_until(&o, &o.n_connected, i + 1, 2000);
		ck_assert_int_eq(o.n_connected, i + 1);
		uint64_t want = i == 1 ? 0 : i == 2 ? 20 : i == 3 ? 40 : 80;
		ck_assert_msg(orch_now_ms() - t0 + 2 >= want, "redial %d after %llu ms, want %llu",
			      i, (unsigned long long)(orch_now_ms() - t0),
			      (unsigned long long)want);
	}
	ck_assert_uint_eq(orch_dialer_backoff(o.d), 80);
	/* The owner says it works: the next drop is dialled again at once. */
	orch_dialer_ready(o.d);
	ck_assert_uint_eq(orch_dialer_backoff(o.d), 0);
	close(o.fds[4]);
	orch_dialer_closed(o.d);
	run_until(&o, &o.n_connected, 6, 2000);
	ck_assert_int_eq(o.n_connected, 6);

	/* Nobody listening: failures are reported and retried, then it connects again. */
	close(o.fds[5]);
	close(lfd);
	unlink(a.path);
	orch_dialer_closed(o.d);
	run_until(&o, &o.n_failed, 2, 2000);
	ck_assert_int_ge(o.n_failed, 2);
	lfd = orch_transport_listen(&a, 0600, &err);
	ck_assert_int_ge(lfd, 0);
	run_until(&o, &o.n_connected, 7, 2000);
	ck_assert_int_eq(o.n_connected, 7);
	ck_assert_int_eq(o.n_gone, 0);

	close(o.fds[6]);
	orch_dialer_free(o.d);
	orch_loop_free(o.loop);
	close(lfd);
	unlink(a.path);
	rmdir(path);
}
END_TEST

/* A frozen supervisor's fixed redial delay, and a dial now that skips the backoff. */
START_TEST(test_fixed_and_now)
{
	char path[] = "/tmp/check-dialer-XXXXXX";
	struct orch_error err = {0};
	struct orch_addr a = {.kind = ORCH_TRANSPORT_UNIX};
	struct orch_dialer_opts opts = {.min_ms = 400, .max_ms = 3000};
	struct owner o = {0};

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(a.path, sizeof(a.path), "%s/s", path);
	int lfd = orch_transport_listen(&a, 0600, &err);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(orch_loop_new(&o.loop), 0);
	ck_assert_int_eq(orch_dialer_new(o.loop, &a, &opts, &ops, &o, &o.d), 0);
	run_until(&o, &o.n_connected, 1, 2000);
	ck_assert_int_eq(o.n_connected, 1);
	/* fixed: every redial after 10 ms, the backoff does not grow */
	orch_dialer_set_fixed(o.d, 10);
	for (int i = 1; i <= 4; i++) {
		close(o.fds[i - 1]);
		orch_dialer_closed(o.d);
		uint64_t t0 = orch_now_ms();
		run_until(&o, &o.n_connected, i + 1, 2000);
		ck_assert_int_eq(o.n_connected, i + 1);
		ck_assert_msg(orch_now_ms() - t0 < 300, "redial %d after %llu ms", i,
			      (unsigned long long)(orch_now_ms() - t0));
	}
	/* back to the backoff: the first drop redials at once, the next after 400 ms */
	orch_dialer_set_fixed(o.d, 0);
	close(o.fds[4]);
	orch_dialer_closed(o.d);
	run_until(&o, &o.n_connected, 6, 2000);
	close(o.fds[5]);
	orch_dialer_closed(o.d);
	/* now: dialled at once instead of after the backoff */
	orch_dialer_now(o.d);
	uint64_t t0 = orch_now_ms();
	run_until(&o, &o.n_connected, 7, 2000);
	ck_assert_int_eq(o.n_connected, 7);
	ck_assert_msg(orch_now_ms() - t0 < 300, "dialled after %llu ms",
		      (unsigned long long)(orch_now_ms() - t0));
	/* while connected, now does nothing */
	orch_dialer_now(o.d);
	for (int i = 0; i < 20; i++)
		orch_loop_run_once(o.loop, 5);
	ck_assert_int_eq(o.n_connected, 7);

	close(o.fds[6]);
	orch_dialer_free(o.d);
	orch_loop_free(o.loop);
	close(lfd);
	unlink(a.path);
	rmdir(path);
}
END_TEST

START_TEST(test_fd_once)
{
	struct orch_addr a = {.kind = ORCH_TRANSPORT_FD};
	struct owner o = {0};
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a.fd = sv[0];
	ck_assert_int_eq(orch_loop_new(&o.loop), 0);
	ck_assert_int_eq(orch_dialer_new(o.loop, &a, NULL, &ops, &o, &o.d), 0);
	run_until(&o, &o.n_connected, 1, 2000);
	ck_assert_int_eq(o.n_connected, 1);
	ck_assert_int_eq(o.fds[0], sv[0]);
	close(o.fds[0]);
	orch_dialer_closed(o.d); /* nothing to dial again */
	ck_assert_int_eq(o.n_gone, 1);
	for (int i = 0; i < 20; i++)
		orch_loop_run_once(o.loop, 5);
	ck_assert_int_eq(o.n_connected, 1);
	orch_dialer_free(o.d);
	orch_loop_free(o.loop);
	close(sv[1]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dialer");
	TCase *tc = tcase_create("dialer");

	tcase_add_test(tc, test_reconnect_backoff);
	tcase_add_test(tc, test_fixed_and_now);
	tcase_add_test(tc, test_fd_once);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
