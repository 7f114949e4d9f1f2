/* SPDX-License-Identifier: Apache-2.0 */
/* Boot to the supervisor's hello, next to a baseline measured in the same run: the same
 * kernel booted through libvirt with a trivial /init that powers off at once. The ratio
 * is orch's own boot overhead (initramfs modules, root mount, init, supervisor start).
 *
 *   vm-boot-bench --image DIR --work DIR [--runs N] [--accel auto|kvm|tcg]
 *
 * Prints p50/min/max in ms for both and the ratio of the p50s (target <= 1.3x; on a KVM
 * host hello within 300 ms). See docs/VM.md. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench-vm.h"
#include "choose.h"
#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "virt-event-loop.h"
#include "events.h"
#include "loop.h"

#define MAX_RUNS 50

struct bench {
	struct orch_loop *loop;
	const char *name;
	bool stopped;
};

static void on_event(const char *domain, const struct lv_event *ev, void *data)
{
	struct bench *b = data;
	if (!strcmp(domain, b->name) && ev->kind == LV_EV_STOPPED)
		b->stopped = true;
}

static bool run_until(struct bench *b, const bool *flag, uint64_t timeout_ms)
{
	uint64_t deadline = orch_now_ms() + timeout_ms;
	while (!*flag && orch_now_ms() < deadline)
		orch_loop_run_once(b->loop, 20);
	return *flag;
}

/* Connects to the control channel and reads until the hello request arrives. */
static int wait_hello(const char *path, uint64_t deadline)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	_cleanup_close_ int fd = -1;
	while (fd < 0) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			fd = -1;
			if (orch_now_ms() >= deadline)
				return -ETIMEDOUT;
			usleep(5000);
		}
	}
	char buf[4096];
	size_t n = 0;
	for (;;) {
		uint64_t now = orch_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, (int)(deadline - now)) <= 0)
			continue;
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		n += (size_t)k;
		buf[n] = 0;
		if (strstr(buf, "\"hello\""))
			return 0;
		if (n == sizeof(buf) - 1)
			n = 0;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t p50(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static void report(const char *what, uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	printf("%-34s p50 %6llu ms   min %6llu   max %6llu   (n=%d)\n", what,
	       (unsigned long long)v[n / 2], (unsigned long long)v[0], (unsigned long long)v[n - 1],
	       n);
}

int main(int argc, char **argv)
{
	struct bv_args a = BV_ARGS_DEFAULTS;
	const struct bv_opt opts[] = {BV_OPT_IMAGE(&a), BV_OPT_WORK(&a), BV_OPT_RUNS(&a, MAX_RUNS),
				      BV_OPT_ACCEL(&a)};
	if (bv_parse_args("vm-boot-bench", opts, ELEMENTSOF(opts), argc, argv) < 0)
		return 2;
	const char *image = a.image, *work = a.work;
	int runs = a.runs;
	int forced = !strcmp(a.accel, "kvm")   ? LV_ACCEL_KVM
		     : !strcmp(a.accel, "tcg") ? LV_ACCEL_TCG
					       : 0;

	char kernel[4096], initrd[4096], rootfs[4096], baseline[4096], ws[4096], console[4096],
		sock[4096], cache[4096], name[64];
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", image);
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", image);
	snprintf(rootfs, sizeof(rootfs), "%s/rootfs.erofs", image);
	snprintf(baseline, sizeof(baseline), "%s/baseline-initrd.img", image);
	snprintf(ws, sizeof(ws), "%s/workspace", work);
	snprintf(console, sizeof(console), "%s/console.log", work);
	snprintf(sock, sizeof(sock), "%s/chan/control.sock", work);
	snprintf(cache, sizeof(cache), "%s/accel-probe.json", work);
	snprintf(name, sizeof(name), "orch-bench-%d", (int)getpid());

	struct bench b = {.name = name};
	struct orch_error err = {0};
	int r;
	if ((r = orch_loop_new(&b.loop)) < 0 || (r = orchd_event_libvirt_register(b.loop)) < 0)
		return 1;
	_cleanup_(virConnectClosep) virConnectPtr conn = NULL;
	if (lv_connect(NULL, &conn, &err) < 0) {
		fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
		return 1;
	}
	int ev_id;
	if (lv_events_subscribe(conn, NULL, on_event, &b, &ev_id, &err) < 0) {
		fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
		return 1;
	}
	struct lv_accel_probe probe = {
		.kernel = kernel, .initrd = baseline, .timeout_ms = 8000, .cache_path = cache};
	enum lv_accel accel;
	char why[256];
	if (lv_accel_choose(forced, &probe, &accel, NULL, why, sizeof(why), &err) < 0) {
		fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
		return 1;
	}
	printf("accelerator: %s (%s)\n", lv_accel_name(accel), why);

	struct lv_port ports[] = {{LV_PORT_CONTROL, sock}};
	struct lv_domain_config base = {
		.name = name,
		.accel = accel,
		.vcpus = 2,
		.memory_mib = 512,
		.kernel = kernel,
		.initrd = baseline,
		.cmdline = "console=ttyS0 panic=-1 quiet",
		.console_log = console,
		.transport = LV_TRANSPORT_VIRTIO_SERIAL,
		.ports = ports,
		.n_ports = 1,
	};
	struct lv_domain_config full = base;
	full.initrd = initrd;
	full.rootfs = rootfs;
	full.workspace_dir = ws;
	_cleanup_free_ char *cmdline = NULL;
	if (lv_kernel_cmdline("console=ttyS0 panic=-1 quiet root=/dev/vda rootfstype=erofs", &full,
			      2, &cmdline, &err) < 0) {
		fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
		return 1;
	}
	full.cmdline = cmdline;

	uint64_t t_base[MAX_RUNS], t_hello[MAX_RUNS];
	for (int i = 0; i < runs; i++) {
		/* Baseline: start -> the guest powered itself off (lifecycle event). */
		virDomainPtr dom = NULL;
		b.stopped = false;
		uint64_t t0 = orch_now_ms();
		if (lv_domain_start(conn, &base, true, &dom, &err) < 0) {
			fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
			return 1;
		}
		if (!run_until(&b, &b.stopped, 120000)) {
			lv_console_error(&err, -ETIMEDOUT, console, "baseline did not power off");
			fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
			lv_domain_stop(dom, true, &err);
			virDomainFree(dom);
			return 1;
		}
		t_base[i] = orch_now_ms() - t0;
		virDomainFree(dom);

		/* orch: start -> hello on the control channel. */
		b.stopped = false;
		t0 = orch_now_ms();
		if (lv_domain_start(conn, &full, true, &dom, &err) < 0) {
			fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
			return 1;
		}
		r = wait_hello(sock, t0 + 180000);
		t_hello[i] = orch_now_ms() - t0;
		if (r < 0) {
			lv_console_error(&err, r, console, "no hello");
			fprintf(stderr, "vm-boot-bench: %s\n", err.msg);
		}
		lv_domain_stop(dom, true, &err);
		run_until(&b, &b.stopped, 30000);
		virDomainFree(dom);
		if (r < 0)
			return 1;
		printf("run %d: baseline %llu ms, hello %llu ms\n", i + 1,
		       (unsigned long long)t_base[i], (unsigned long long)t_hello[i]);
		fflush(stdout);
	}
	report("baseline (trivial /init, poweroff)", t_base, runs);
	report("orch (boot to supervisor hello)", t_hello, runs);
	uint64_t pb = p50(t_base, runs), ph = p50(t_hello, runs);
	printf("ratio hello/baseline p50: %.2fx (target <= 1.30x)\n", pb ? (double)ph / pb : 0.0);
	lv_events_unsubscribe(conn, ev_id);
	return 0;
}
