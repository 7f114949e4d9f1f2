/* SPDX-License-Identifier: Apache-2.0 */
/* Guests for the VM benchmarks (bench-vm.h). */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench-vm.h"
#include "choose.h"
#include "cleanup.h"
#include "console.h"
#include "domain.h"
#include "virt-event-loop.h"
#include "events.h"
#include "save-stream.h"
#include "snapshot.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

#define BV_BOOT_TIMEOUT_MS 180000
#define BV_BASE_CMDLINE "console=ttyS0 panic=-1 quiet root=/dev/vda rootfstype=erofs"

static void usage(FILE *f, const char *prog, const struct bv_opt *opts, size_t n)
{
	fprintf(f, "usage: %s", prog);
	for (size_t i = 0; i < n; i++) {
		const struct bv_opt *o = &opts[i];
		fprintf(f, " %s--%s ", o->required ? "" : "[", o->name);
		if (o->arg)
			fputs(o->arg, f);
		else
			fprintf(f, "%llu..%llu", (unsigned long long)o->min,
				(unsigned long long)o->max);
		if (!o->required)
			fputc(']', f);
	}
	fputc('\n', f);
}

static bool in_range(const struct bv_opt *o, uint64_t v)
{
	return v >= o->min && (!o->max || v <= o->max);
}

/* A required option is given, a number within its range. */
static bool valid(const struct bv_opt *o)
{
	switch (o->type) {
	case BV_OPT_STR:
		return !o->required || *(const char **)o->value;
	case BV_OPT_INT: {
		int v = *(const int *)o->value;
		return v >= 0 && in_range(o, (uint64_t)v);
	}
	case BV_OPT_UINT:
		return in_range(o, *(const unsigned *)o->value);
	case BV_OPT_U64:
		return in_range(o, *(const uint64_t *)o->value);
	}
	return false;
}

int bv_parse_args(const char *prog, const struct bv_opt *opts, size_t n, int argc, char **argv)
{
	struct option lo[BV_OPTS_MAX + 2] = {{0}};
	int opt;

	assert(n <= BV_OPTS_MAX);
	for (size_t i = 0; i < n; i++)
		lo[i] = (struct option){opts[i].name, required_argument, NULL, 256 + (int)i};
	lo[n] = (struct option){"help", no_argument, NULL, 'h'};
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) >= 0) {
		if (opt == 'h') {
			usage(stdout, prog, opts, n);
			exit(0);
		}
		if (opt < 256 || opt >= 256 + (int)n)
			return -EINVAL; /* getopt said why */
		const struct bv_opt *o = &opts[opt - 256];
		switch (o->type) {
		case BV_OPT_STR:
			*(const char **)o->value = optarg;
			break;
		case BV_OPT_INT:
			*(int *)o->value = atoi(optarg);
			break;
		case BV_OPT_UINT:
			*(unsigned *)o->value = (unsigned)atoi(optarg);
			break;
		case BV_OPT_U64:
			*(uint64_t *)o->value = strtoull(optarg, NULL, 10);
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!valid(&opts[i])) {
			usage(stderr, prog, opts, n);
			return -EINVAL;
		}
	}
	return 0;
}

static void on_event(const char *domain, const struct lv_event *ev, void *data)
{
	struct bv *b = data;
	if (ev->kind == LV_EV_STOPPED)
		b->stopped++;
}

int bv_init(struct bv *b, const char *image, const char *work, const char *accel,
	    uint64_t memory_mib, unsigned vcpus)
{
	struct orch_error err = {0};
	char cache[PATH_MAX + 32], baseline[PATH_MAX + 32], why[256];
	int r;

	memset(b, 0, sizeof(*b));
	snprintf(b->image, sizeof(b->image), "%s", image);
	snprintf(b->work, sizeof(b->work), "%s", work);
	snprintf(b->kernel, sizeof(b->kernel), "%s/vmlinuz", image);
	snprintf(b->initrd, sizeof(b->initrd), "%s/initrd.img", image);
	snprintf(b->rootfs, sizeof(b->rootfs), "%s/rootfs.erofs", image);
	snprintf(baseline, sizeof(baseline), "%s/baseline-initrd.img", image);
	snprintf(cache, sizeof(cache), "%s/accel-probe.json", work);
	b->memory_mib = memory_mib;
	b->vcpus = vcpus;
	if ((r = orch_loop_new(&b->loop)) < 0 || (r = orchd_event_libvirt_register(b->loop)) < 0)
		return r;
	if (lv_connect(NULL, &b->conn, &err) < 0 ||
	    lv_events_subscribe(b->conn, NULL, on_event, b, &b->ev_id, &err) < 0) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return -EIO;
	}
	int forced = !strcmp(accel, "kvm")   ? LV_ACCEL_KVM
		     : !strcmp(accel, "tcg") ? LV_ACCEL_TCG
					     : 0;
	struct lv_accel_probe probe = {
		.kernel = b->kernel, .initrd = baseline, .timeout_ms = 8000, .cache_path = cache};
	if (lv_accel_choose(forced, &probe, &b->accel, NULL, why, sizeof(why), &err) < 0) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return -EIO;
	}
	printf("accelerator: %s (%s)\n", lv_accel_name(b->accel), why);
	return 0;
}

void bv_done(struct bv *b)
{
	if (b->conn) {
		lv_events_unsubscribe(b->conn, b->ev_id);
		virConnectClose(b->conn);
	}
	b->conn = NULL;
}

static int prepare(struct bv *b, struct bv_vm *v, const char *name)
{
	struct passwd *pw = getpwnam("libvirt-qemu");

	memset(v, 0, sizeof(*v));
	if ((size_t)snprintf(v->name, sizeof(v->name), "%s", name) >= sizeof(v->name) ||
	    (size_t)snprintf(v->dir, sizeof(v->dir), "%s/%s", b->work, name) >= sizeof(v->dir) ||
	    (size_t)snprintf(v->ws, sizeof(v->ws), "%s/ws", v->dir) >= sizeof(v->ws) ||
	    (size_t)snprintf(v->chan, sizeof(v->chan), "%s/chan", v->dir) >= sizeof(v->chan) ||
	    (size_t)snprintf(v->sock, sizeof(v->sock), "%s/control.sock", v->chan) >=
		    sizeof(v->sock) ||
	    (size_t)snprintf(v->console, sizeof(v->console), "%s/console.log", v->dir) >=
		    sizeof(v->console))
		return -ENAMETOOLONG;
	if ((mkdir(v->dir, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(v->ws, 0711) < 0 && errno != EEXIST) ||
	    (mkdir(v->chan, 0750) < 0 && errno != EEXIST))
		return -errno;
	if (pw && chown(v->chan, pw->pw_uid, 0) < 0)
		return -errno;
	unlink(v->sock);
	unlink(v->console);
	return 0;
}

static void config(struct bv *b, struct bv_vm *v, struct lv_port *port, struct lv_domain_config *dc)
{
	*port = (struct lv_port){LV_PORT_CONTROL, v->sock};
	*dc = (struct lv_domain_config){
		.name = v->name,
		.accel = b->accel,
		.vcpus = b->vcpus,
		.memory_mib = b->memory_mib,
		.kernel = b->kernel,
		.initrd = b->initrd,
		.rootfs = b->rootfs,
		.workspace_dir = v->ws,
		.console_log = v->console,
		.transport = LV_TRANSPORT_VIRTIO_SERIAL,
		.ports = port,
		.n_ports = 1,
	};
}

static int connect_peer(struct bv *b, struct bv_vm *v, uint64_t deadline)
{
	struct orch_error err = {0};
	int fd = lv_dial_unix(v->sock, 30000, &err);
	if (fd < 0 || lv_peer_new(b->loop, fd, v->name, NULL, NULL, &v->peer, &err) < 0) {
		fprintf(stderr, "bench: %s: %s\n", v->name, err.msg);
		return -EIO;
	}
	const struct lv_peer_state *st = lv_peer_state(v->peer);
	uint64_t now = orch_now_ms();
	if (!lv_peer_wait(b->loop, &st->hello, deadline > now ? deadline - now : 0)) {
		lv_console_error(&err, -ETIMEDOUT, v->console, "no hello");
		fprintf(stderr, "bench: %s: %s\n", v->name, err.msg);
		return -ETIMEDOUT;
	}
	return 0;
}

static int start(struct bv *b, struct bv_vm *v, struct lv_domain_config *dc)
{
	struct orch_error err = {0};
	_cleanup_free_ char *cmdline = NULL, *base = NULL;
	if (asprintf(&base, "%s%s%s", BV_BASE_CMDLINE, b->append ? " " : "",
		     b->append ? b->append : "") < 0)
		return -ENOMEM;
	if (lv_kernel_cmdline(base, dc, 1, &cmdline, &err) < 0 ||
	    (dc->cmdline = cmdline, lv_domain_start(b->conn, dc, true, &v->dom, &err)) < 0) {
		fprintf(stderr, "bench: %s: %s\n", v->name, err.msg);
		return -EIO;
	}
	return 0;
}

int bv_boot_start(struct bv *b, struct bv_vm *v, const char *name, bool balloon)
{
	struct lv_domain_config dc;
	struct lv_port port;
	int r;

	if ((r = prepare(b, v, name)) < 0)
		return r;
	config(b, v, &port, &dc);
	dc.no_balloon = !balloon;
	dc.boot_memory_mib = balloon ? b->boot_memory_mib : 0;
	v->start_ms = orch_now_ms();
	return start(b, v, &dc);
}

int bv_boot_wait(struct bv *b, struct bv_vm *v, uint64_t *ret_ms)
{
	int r = connect_peer(b, v, v->start_ms + BV_BOOT_TIMEOUT_MS);
	if (r < 0)
		return r;
	if (ret_ms)
		*ret_ms = lv_peer_state(v->peer)->hello_ms - v->start_ms;
	return 0;
}

int bv_boot(struct bv *b, struct bv_vm *v, const char *name, bool balloon, uint64_t *ret_ms)
{
	int r = bv_boot_start(b, v, name, balloon);
	return r < 0 ? r : bv_boot_wait(b, v, ret_ms);
}

int bv_template_boot(struct bv *b, struct bv_vm *t, const char *name)
{
	struct lv_domain_config dc;
	struct lv_port port;
	int r;

	if ((r = prepare(b, t, name)) < 0)
		return r;
	config(b, t, &port, &dc);
	dc.workspace_dir = NULL;
	dc.snapshot = true;
	if ((r = start(b, t, &dc)) < 0)
		return r;
	return connect_peer(b, t, orch_now_ms() + BV_BOOT_TIMEOUT_MS);
}

int bv_template_save(struct bv *b, struct bv_vm *t, const char *save_path, bool paused_first,
		     char **ret_xml)
{
	struct orch_error err = {0};
	bool done = false, ok = false;

	if (lv_peer_freeze(t->peer, &done, &ok) < 0 || !lv_peer_wait(b->loop, &done, 30000) ||
	    !ok) {
		fprintf(stderr, "bench: %s: vm.freeze failed\n", t->name);
		return -EIO;
	}
	/* paused_first: the guest is paused before its host leaves, so the snapshot holds a
	 * supervisor that never saw its channel go (the worst case of the race between the
	 * host's close and the save). */
	if (paused_first && virDomainSuspend(t->dom) < 0) {
		fprintf(stderr, "bench: %s: cannot pause: %s\n", t->name, lv_last_error());
		return -EIO;
	}
	/* The host side closes first: the restored copies see their host come back. As orchd
	 * does (backend-snapshot.c), the save waits until the guest has seen it go (closed
	 * its end of the port), unless paused_first asks for the worst case. */
	lv_peer_free(t->peer);
	t->peer = NULL;
	for (int ms = 0; !paused_first && ms < LV_SNAPSHOT_HOST_GONE_MS;
	     ms += LV_SNAPSHOT_HOST_GONE_POLL_MS) {
		if (lv_domain_channel_state(t->dom, LV_PORT_CONTROL) != 1)
			break;
		usleep(LV_SNAPSHOT_HOST_GONE_POLL_MS * 1000);
	}
	uint64_t dropped = 0;
	if (lv_snapshot_save(t->dom, save_path, lv_kernel_is_bzimage(b->kernel), ret_xml, &dropped,
			     &err) < 0) {
		fprintf(stderr, "bench: %s\n", err.msg);
		return -EIO;
	}
	virDomainFree(t->dom);
	t->dom = NULL;
	printf("# template saved without %llu zero pages of its RAM\n",
	       (unsigned long long)dropped);
	return 0;
}

int bv_template(struct bv *b, struct bv_vm *t, const char *name, const char *save_path,
		char **ret_xml)
{
	int r = bv_template_boot(b, t, name);
	return r < 0 ? r : bv_template_save(b, t, save_path, false, ret_xml);
}

int bv_restore(struct bv *b, const char *save_path, const char *tmpl_xml, const char *tmpl_dir,
	       struct bv_vm *v, const char *name, uint64_t *ret_ms)
{
	struct orch_error err = {0};
	char uuid[LV_UUID_LEN + 1];
	_cleanup_free_ char *xml = NULL;
	bool done = false, ok = false;
	int r;

	if ((r = prepare(b, v, name)) < 0 || (r = lv_uuid_new(uuid)) < 0)
		return r;
	struct lv_clone c = {.name = v->name, .uuid = uuid, .from_dir = tmpl_dir, .to_dir = v->dir};
	struct lv_fs_config fs = {
		.dir = v->ws, .tag = LV_WORKSPACE_TAG_DEFAULT, .virtiofsd = LV_VIRTIOFSD_DEFAULT};
	uint64_t t0 = orch_now_ms(), t1, t2, t3, t4;
	if (lv_clone_xml(tmpl_xml, &c, &xml, &err) < 0 ||
	    lv_snapshot_restore(b->conn, save_path, xml, v->name, &v->dom, &err) < 0 ||
	    ((t1 = orch_now_ms()), lv_domain_attach_fs(v->dom, &fs, &err)) < 0) {
		fprintf(stderr, "bench: %s: %s\n", name, err.msg);
		return -EIO;
	}
	/* Resumed, then dialled, as orchd does (backend-snapshot.c, on_restored). */
	int fd = -1;
	if ((virDomainResume(v->dom) < 0 &&
	     orch_err(&err, -EIO, "resume: %s", lv_last_error()) < 0) ||
	    (fd = lv_dial_unix(v->sock, 10000, &err)) < 0 ||
	    lv_peer_new(b->loop, fd, v->name, NULL, NULL, &v->peer, &err) < 0) {
		fprintf(stderr, "bench: %s: %s\n", name, err.msg);
		return -EIO;
	}
	t2 = orch_now_ms();
	const struct lv_peer_state *st = lv_peer_state(v->peer);
	if (!lv_peer_wait(b->loop, &st->hello, 30000) || !st->frozen) {
		fprintf(stderr, "bench: %s: no hello from a frozen supervisor\n", name);
		return -EIO;
	}
	unsigned char seed[32];
	struct timespec now;
	if (getrandom(seed, sizeof(seed), 0) != sizeof(seed))
		return -EIO;
	clock_gettime(CLOCK_REALTIME, &now);
	t3 = orch_now_ms();
	struct orch_vm_thaw th = {
		.seed = seed,
		.seed_len = sizeof(seed),
		.time_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec,
		.name = v->name,
		.n_mounts = 1,
		.mounts = {{LV_WORKSPACE_TAG_DEFAULT, "/workspace", false}},
		.warm = b->thaw_warm,
	};
	if (lv_peer_thaw(v->peer, &th, &done, &ok) < 0 || !lv_peer_wait(b->loop, &done, 30000) ||
	    !ok) {
		lv_console_error(&err, -EIO, v->console, "vm.thaw failed");
		fprintf(stderr, "bench: %s: %s\n", name, err.msg);
		return -EIO;
	}
	t4 = orch_now_ms();
	if (getenv("BENCH_VERBOSE"))
		printf("  %s: restore %llu ms, attach and resume %llu ms, hello %llu ms, "
		       "thaw%s %llu ms\n",
		       name, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
		       (unsigned long long)(t3 - t2), b->thaw_warm ? " (warm)" : "",
		       (unsigned long long)(t4 - t3));
	if (ret_ms)
		*ret_ms = t4 - t0;
	return 0;
}

int bv_plug(struct bv *b, struct bv_vm *v, uint64_t mib, uint64_t timeout_ms, uint64_t *ret_ms)
{
	struct orch_error err = {0};
	uint64_t t0 = orch_now_ms(), cur = 0, req = 0;
	if (lv_domain_memory_request(v->dom, mib, &err) < 0) {
		fprintf(stderr, "bench: %s: %s\n", v->name, err.msg);
		return -EIO;
	}
	while (lv_domain_memory_state(v->dom, &cur, &req) == 0 && cur != mib * 1024) {
		if (orch_now_ms() - t0 > timeout_ms) {
			fprintf(stderr,
				"bench: %s: the guest holds %llu of the %llu MiB asked for after "
				"%llu ms\n",
				v->name, (unsigned long long)cur / 1024, (unsigned long long)mib,
				(unsigned long long)timeout_ms);
			return -ETIMEDOUT;
		}
		orch_loop_run_once(b->loop, 20);
	}
	*ret_ms = orch_now_ms() - t0;
	return 0;
}

uint64_t bv_ram_mib(const struct bv *b, const struct bv_vm *v)
{
	uint64_t cur = 0, req = 0;
	if (lv_domain_memory_state(v->dom, &cur, &req) < 0)
		return b->memory_mib;
	return b->boot_memory_mib + cur / 1024;
}

void bv_destroy(struct bv *b, struct bv_vm *v)
{
	struct orch_error err = {0};
	lv_peer_free(v->peer);
	v->peer = NULL;
	if (v->dom) {
		unsigned before = b->stopped;
		lv_domain_stop(v->dom, true, &err);
		uint64_t deadline = orch_now_ms() + 30000;
		while (b->stopped == before && orch_now_ms() < deadline)
			orch_loop_run_once(b->loop, 20);
		virDomainFree(v->dom);
		v->dom = NULL;
	}
}

struct lv_peer_task *bv_run(struct bv *b, struct bv_vm *v, const char *script, uint64_t timeout_ms)
{
	struct lv_peer_task *t = lv_peer_run(v->peer, 0, script, 0);
	lv_peer_wait(b->loop, &t->done, timeout_ms);
	return t;
}

/* Sums "Rss:"/"Pss:" of /proc/pid/smaps; ram: only the guest memory's mapping. */
static void smaps(pid_t pid, uint64_t *rss, uint64_t *pss, uint64_t *ram)
{
	char path[64], line[512];
	bool in_ram = false;
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;
		/* A mapping's first line starts with its address; its fields with a name. */
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
			in_ram = strstr(line, "/memfd:") != NULL;
			continue;
		}
		if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
			*rss += kb;
			if (in_ram && ram)
				*ram += kb;
		} else if (sscanf(line, "Pss: %llu kB", &kb) == 1) {
			*pss += kb;
		}
	}
	fclose(f);
}

/* The pages QEMU's memfds hold, KiB: what the host keeps for the guest's RAM whichever
 * process maps it (QEMU, virtiofsd) and whether mapped at all (st_blocks of a memfd counts
 * its allocated pages; a hole punched by free page reporting is not counted). */
static uint64_t memfd_held(pid_t pid)
{
	char dir[64], path[PATH_MAX], link[PATH_MAX];
	uint64_t kib = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	_cleanup_(closedirp) DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (!strncmp(link, "/memfd:", 7) && stat(path, &st) == 0)
			kib += (uint64_t)st.st_blocks / 2;
	}
	return kib;
}

int bv_mem(const struct bv_vm *v, struct bv_mem *ret)
{
	char path[PATH_MAX + 64], cmd[8192];
	int pid = 0;
	memset(ret, 0, sizeof(*ret));
	snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", v->name);
	FILE *f = fopen(path, "re");
	if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0) {
		if (f)
			fclose(f);
		return -ENOENT;
	}
	fclose(f);
	smaps(pid, &ret->qemu_rss, &ret->qemu_pss, &ret->guest_ram_rss);
	ret->guest_ram_held = memfd_held(pid);

	/* virtiofsd: the processes whose command line names a share of this VM. */
	char want[PATH_MAX + 32];
	snprintf(want, sizeof(want), "source=%s", v->dir);
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		int p = atoi(de->d_name);
		if (p <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", p);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, cmd, sizeof(cmd) - 1);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++)
			if (!cmd[i])
				cmd[i] = ' ';
		cmd[n] = 0;
		if (strstr(cmd, "virtiofsd") && strstr(cmd, want))
			smaps(p, &ret->virtiofsd_rss, &ret->virtiofsd_pss, NULL);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t bv_p50(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

void bv_report(const char *what, uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	printf("%-40s p50 %6llu ms   min %6llu   max %6llu   (n=%d)\n", what,
	       (unsigned long long)v[n / 2], (unsigned long long)v[0], (unsigned long long)v[n - 1],
	       n);
}
