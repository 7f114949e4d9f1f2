/* SPDX-License-Identifier: Apache-2.0 */
/* Host memory per idle VM, next to a baseline measured in the same run (docs/VM.md,
 * "Memory"): N guests of the real image with a workspace share each, booted at once,
 * first without a balloon device (what orch did before: memory the guest freed stays with
 * QEMU), then as orchd boots them (free page reporting). For each set, once idle and
 * again after a task that touched 200 MiB in every guest and exited, per VM: QEMU's RSS
 * and PSS, the part of it that is guest memory (QEMU's mapping of the guest's memfd), the
 * pages the memfd itself holds (mapped by any process or none: the honest figure of guest
 * RAM on the host), the virtiofsd processes of its share (RSS, PSS), and what the guest itself reports in
 * use (MemTotal - MemFree, read by a task), its kernel's own memory (RAM - MemTotal) and
 * its free memory in runs too small for free page reporting. The goal: idle guest memory resident on the
 * host <= 1.5x what the guest reports in use.
 *
 *   vm-density --image DIR --work DIR [--vms N] [--memory MiB] [--settle S]
 *              [--accel auto|kvm|tcg] [--append 'KERNEL PARAMETERS'] [--boot-memory MiB]
 *
 * --append adds kernel parameters to every set's command line (to measure one before
 * changing orchd's); BENCH_VERBOSE=1 prints each guest's /proc/meminfo and buddyinfo.
 * --boot-memory adds a third set, with memory hot-plug (docs/VM.md "Memory hot-plug"):
 * booted with that much, the rest plugged before the task (how long that takes) and
 * unplugged after it, measured once more then.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-vm.h"
#include "cleanup.h"

#define MAX_VMS 16
#define TOUCH_200M                                    \
	"python3 -c 'b = bytearray(200 << 20)\n"      \
	"for i in range(0, len(b), 4096): b[i] = 1\n" \
	"print(\"touched\", len(b) >> 20, \"MiB\")'"

struct figures {
	double qemu_rss, qemu_pss, ram, held, vfs_rss, vfs_pss, used, footprint,
		unreported; /* MiB, per VM */
};

struct set {
	const char *what;
	bool balloon;
	bool hotplug; /* --boot-memory: plugs the rest before the task, unplugs it after */
	struct figures idle, after, unplugged;
	uint64_t boot_ms[MAX_VMS], plug_ms[MAX_VMS], unplug_ms[MAX_VMS];
	uint64_t left_mib[MAX_VMS]; /* still plugged after the unplug's minute */
	int unplugged_all;
};

static void wait_s(struct bv *b, unsigned s)
{
	uint64_t end = orch_now_ms() + s * 1000ull;
	while (orch_now_ms() < end)
		orch_loop_run_once(b->loop, 50);
}

/* The order of free page reporting that vm-images/rootfs/rc.sysinit sets (2^5 pages,
 * 128 KiB) unless the command line (--append) names one; the agent's jail has no /sys to
 * read it from. */
#define REPORTING_ORDER 5
#define REPORTING_ORDER_PARAM "page_reporting.page_reporting_order="
static unsigned reporting_order = REPORTING_ORDER;

/* The free memory of /proc/buddyinfo in runs smaller than 2^order pages, KiB: what free
 * page reporting cannot give back. */
static double free_below(const char *buddy, unsigned order)
{
	double kib = 0;
	for (const char *l = buddy; l && (l = strstr(l, "Node ")); l++) {
		const char *z = strstr(l, "zone ");
		if (!z)
			break;
		z += 5;
		while (*z == ' ')
			z++;
		while (*z && *z != ' ')
			z++; /* the zone's name */
		for (unsigned o = 0; o < order; o++) {
			char *end;
			unsigned long long c = strtoull(z, &end, 10);
			if (end == z)
				break;
			kib += (double)c * (double)(4u << o);
			z = end;
		}
	}
	return kib;
}

/* MemTotal - MemFree, RAM - MemFree and the free memory in runs too small to be reported,
 * in the guest, MiB. */
static int guest_used(struct bv *b, struct bv_vm *v, double *used, double *footprint,
		      double *unreported)
{
	struct lv_peer_task *t = bv_run(b, v, "cat /proc/meminfo /proc/buddyinfo", 60000);
	const char *tot = strstr(t->out, "MemTotal:"), *fr = strstr(t->out, "MemFree:");
	unsigned long long mt, mf;
	if (!t->done || !tot || !fr || sscanf(tot, "MemTotal: %llu", &mt) != 1 ||
	    sscanf(fr, "MemFree: %llu", &mf) != 1) {
		fprintf(stderr, "vm-density: %s: cannot read /proc/meminfo: %s\n", v->name, t->out);
		return -1;
	}
	if (getenv("BENCH_VERBOSE"))
		printf("  %s: /proc/meminfo, /proc/buddyinfo\n%s", v->name, t->out);
	*used = (double)(mt - mf) / 1024.0;
	*footprint = (double)bv_ram_mib(b, v) - (double)mf / 1024.0;
	*unreported = free_below(strstr(t->out, "Node "), reporting_order) / 1024.0;
	return 0;
}

static int measure(struct bv *b, struct bv_vm *vms, int n, unsigned settle, struct figures *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < n; i++) {
		double u, fp, un;
		if (guest_used(b, &vms[i], &u, &fp, &un) < 0)
			return -1;
		f->used += u / n;
		f->footprint += fp / n;
		f->unreported += un / n;
	}
	/* What the guests freed (the task above too) is reported back within seconds. */
	wait_s(b, settle);
	for (int i = 0; i < n; i++) {
		struct bv_mem m;
		if (bv_mem(&vms[i], &m) < 0) {
			fprintf(stderr, "vm-density: %s: no QEMU process\n", vms[i].name);
			return -1;
		}
		f->qemu_rss += m.qemu_rss / 1024.0 / n;
		f->qemu_pss += m.qemu_pss / 1024.0 / n;
		f->ram += m.guest_ram_rss / 1024.0 / n;
		f->held += m.guest_ram_held / 1024.0 / n;
		f->vfs_rss += m.virtiofsd_rss / 1024.0 / n;
		f->vfs_pss += m.virtiofsd_pss / 1024.0 / n;
	}
	return 0;
}

static int run_set(struct bv *b, struct set *s, int n, unsigned settle)
{
	struct bv_vm vms[MAX_VMS];
	char name[64];
	int r = 0;

	printf("# %s: booting %d VMs\n", s->what, n);
	fflush(stdout);
	for (int i = 0; i < n && r == 0; i++) {
		snprintf(name, sizeof(name), "orch-density-%d-%s%d", (int)getpid(),
			 s->hotplug   ? "hot"
			 : s->balloon ? "fpr"
				      : "base",
			 i);
		r = bv_boot_start(b, &vms[i], name, s->balloon);
	}
	for (int i = 0; i < n && r == 0; i++)
		r = bv_boot_wait(b, &vms[i], &s->boot_ms[i]);
	if (r == 0) {
		wait_s(b, settle);
		r = measure(b, vms, n, settle, &s->idle);
	}
	uint64_t rest = b->memory_mib - b->boot_memory_mib;
	for (int i = 0; i < n && r == 0 && s->hotplug; i++)
		r = bv_plug(b, &vms[i], rest, 120000, &s->plug_ms[i]);
	for (int i = 0; i < n && r == 0; i++) {
		struct lv_peer_task *t = bv_run(b, &vms[i], TOUCH_200M, 300000);
		if (!t->done || !strstr(t->out, "touched 200 MiB")) {
			fprintf(stderr, "vm-density: %s: the 200 MiB task failed: %s\n",
				vms[i].name, t->out);
			r = -1;
		}
	}
	if (r == 0)
		r = measure(b, vms, n, settle, &s->after);
	/* Unplugging is the guest's to do as far as it can (what it still uses stays): the
	 * figures are what it gave back within a minute. */
	for (int i = 0; i < n && r == 0 && s->hotplug; i++) {
		if (bv_plug(b, &vms[i], 0, 60000, &s->unplug_ms[i]) == 0)
			s->unplug_ms[s->unplugged_all++] = s->unplug_ms[i];
		s->left_mib[i] = bv_ram_mib(b, &vms[i]) - b->boot_memory_mib;
	}
	if (r == 0 && s->hotplug)
		r = measure(b, vms, n, settle, &s->unplugged);
	for (int i = 0; i < n; i++)
		bv_destroy(b, &vms[i]);
	return r;
}

#define MAX_SETS 3

/* One row: the figure of each set's column. */
static void row(const char *what, const double *v, int n, bool ratio)
{
	printf("  %-52s", what);
	for (int i = 0; i < n; i++)
		printf(ratio ? " %9.2fx" : " %10.1f", v[i]);
	printf("\n");
}

#define ROW(what, expr)                                 \
	do {                                            \
		double v_[MAX_SETS];                    \
		for (int i = 0; i < n; i++) {           \
			const struct figures *a = f[i]; \
			v_[i] = (expr);                 \
		}                                       \
		row((what), v_, n, false);              \
	} while (0)
#define RATIO(what, num, den)                                 \
	do {                                                  \
		double v_[MAX_SETS];                          \
		for (int i = 0; i < n; i++) {                 \
			const struct figures *a = f[i];       \
			v_[i] = a->den ? a->num / a->den : 0; \
		}                                             \
		row((what), v_, n, true);                     \
	} while (0)

static void table(const char *when, const struct figures *const *f, const char *const *names, int n)
{
	printf("%-54s", when);
	for (int i = 0; i < n; i++)
		printf(" %10s", names[i]);
	printf("\n");
	ROW("QEMU RSS", a->qemu_rss);
	ROW("QEMU PSS", a->qemu_pss);
	ROW("  of which guest memory resident (memfd mapping)", a->ram);
	ROW("  QEMU's own (RSS - guest memory)", a->qemu_rss - a->ram);
	ROW("guest memory held by host (memfd pages, any mapper)", a->held);
	ROW("virtiofsd RSS (the workspace share)", a->vfs_rss);
	ROW("virtiofsd PSS", a->vfs_pss);
	ROW("QEMU + virtiofsd PSS", a->qemu_pss + a->vfs_pss);
	ROW("guest in use (MemTotal - MemFree)", a->used);
	ROW("guest footprint (RAM - MemFree: + its kernel's own)", a->footprint);
	ROW("  of which its kernel's own (RAM - MemTotal)", a->footprint - a->used);
	char what[64];
	snprintf(what, sizeof(what), "guest free in runs < %u KiB (not reported)",
		 4u << reporting_order);
	ROW(what, a->unreported);
	RATIO("guest memory resident / guest in use", ram, used);
	RATIO("guest memory resident / guest footprint", ram, footprint);
}

int main(int argc, char **argv)
{
	struct bv_args a = BV_ARGS_DEFAULTS;
	int n = 4;
	unsigned settle = 8;
	uint64_t boot_memory = 0;
	const struct bv_opt opts[] = {
		BV_OPT_IMAGE(&a),
		BV_OPT_WORK(&a),
		{.name = "vms", .type = BV_OPT_INT, .value = &n, .min = 1, .max = MAX_VMS},
		BV_OPT_MEMORY(&a, "MiB >= 384", 384),
		{.name = "settle", .arg = "S", .type = BV_OPT_UINT, .value = &settle, .max = 600},
		BV_OPT_ACCEL(&a),
		BV_OPT_APPEND(&a),
		{.name = "boot-memory", .arg = "MiB", .type = BV_OPT_U64, .value = &boot_memory},
	};
	if (bv_parse_args("vm-density", opts, ELEMENTSOF(opts), argc, argv) < 0)
		return 2;
	const char *append = a.append;
	uint64_t memory = a.memory_mib;
	struct bv b;
	if (bv_init(&b, a.image, a.work, a.accel, memory, 2) < 0)
		return 1;
	b.append = append;
	const char *ro = append ? strstr(append, REPORTING_ORDER_PARAM) : NULL;
	if (ro)
		reporting_order = (unsigned)atoi(ro + strlen(REPORTING_ORDER_PARAM));
	if (reporting_order > 10)
		reporting_order = REPORTING_ORDER;
	struct set base = {.what = "baseline: no balloon device", .balloon = false};
	struct set fpr = {.what = "orch: free page reporting", .balloon = true};
	struct set hot = {.what = "orch: free page reporting, memory hot-plug",
			  .balloon = true,
			  .hotplug = true};
	if (run_set(&b, &base, n, settle) < 0 || run_set(&b, &fpr, n, settle) < 0)
		return 1;
	b.boot_memory_mib = boot_memory;
	if (boot_memory && run_set(&b, &hot, n, settle) < 0)
		return 1;
	int sets = boot_memory ? 3 : 2;
	const char *const names[] = {"baseline", "orch", "hot-plug"};
	printf("%d VMs of %llu MiB, 2 vCPUs, settled %u s before each measurement\n", n,
	       (unsigned long long)memory, settle);
	if (boot_memory)
		printf("hot-plug: booted with %llu MiB, the other %llu MiB plugged before the task "
		       "and unplugged after it\n",
		       (unsigned long long)boot_memory, (unsigned long long)(memory - boot_memory));
	table("idle (MiB per VM)", (const struct figures *[]){&base.idle, &fpr.idle, &hot.idle},
	      names, sets);
	table("after a task touched 200 MiB and exited (MiB per VM)",
	      (const struct figures *[]){&base.after, &fpr.after, &hot.after}, names, sets);
	printf("guest memory resident after the task - idle: baseline %+.1f MiB, orch %+.1f "
	       "MiB\n",
	       base.after.ram - base.idle.ram, fpr.after.ram - fpr.idle.ram);
	if (boot_memory) {
		table("after the hot-plugged memory was unplugged (MiB per VM)",
		      (const struct figures *[]){&hot.unplugged}, names + 2, 1);
		bv_report("plug (request to the guest holding it), ms", hot.plug_ms, n);
		if (hot.unplugged_all)
			bv_report("unplug of all of it, ms", hot.unplug_ms, hot.unplugged_all);
		for (int i = 0; i < n; i++)
			if (hot.left_mib[i])
				printf("unplug: VM %d keeps %llu MiB plugged after 60 s (memory "
				       "its "
				       "guest cannot move out)\n",
				       i, (unsigned long long)hot.left_mib[i]);
	}
	const struct set *best = boot_memory ? &hot : &fpr;
	printf("goal: idle guest memory resident <= 1.5x guest in use: %s (%.2fx%s)\n",
	       best->idle.ram <= 1.5 * best->idle.used ? "met" : "not met",
	       best->idle.used ? best->idle.ram / best->idle.used : 0,
	       boot_memory ? ", with memory hot-plug" : "");
	bv_done(&b);
	return 0;
}
