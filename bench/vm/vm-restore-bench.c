/* SPDX-License-Identifier: Apache-2.0 */
/* Ready from a snapshot next to a cold boot to hello, in the same run (docs/VM.md,
 * "Snapshots"): the same guest, memory and workspace share either booted (create to the
 * supervisor's hello) or restored from a template taken right after hello (restore call
 * to the answer of vm.thaw: restore paused, the share hot-plugged, resume, the frozen
 * supervisor's hello, fresh entropy, clock, name, the share mounted). Each restored VM
 * runs `echo` twice before it is destroyed: the first task in a fresh VM next to the
 * second. Each run also restores a VM whose vm.thaw asks for the warm-up jail, as orchd's
 * does (guest/warm.h): its restore to ready (the warm-up included) and its tasks.
 *
 *   vm-restore-bench --image DIR --work DIR [--runs N] [--accel auto|kvm|tcg]
 *                    [--memory MiB] [--append 'KERNEL PARAMETERS']
 *
 * --append adds kernel parameters (e.g. orch.loglevel=debug, for the guest's own times in
 * the console logs below --work) to every guest's command line.
 *
 * Prints p50/min/max in ms and the ratio of the p50s (target here, under TCG: <= 0.25x;
 * on a KVM host: ready within 150 ms). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-vm.h"
#include "cleanup.h"

#define MAX_RUNS 50

int main(int argc, char **argv)
{
	struct bv_args a = BV_ARGS_DEFAULTS;
	const struct bv_opt opts[] = {BV_OPT_IMAGE(&a),
				      BV_OPT_WORK(&a),
				      BV_OPT_RUNS(&a, MAX_RUNS),
				      BV_OPT_ACCEL(&a),
				      BV_OPT_MEMORY(&a, "MiB", 128),
				      BV_OPT_APPEND(&a)};
	if (bv_parse_args("vm-restore-bench", opts, ELEMENTSOF(opts), argc, argv) < 0)
		return 2;
	const char *work = a.work;
	int runs = a.runs;

	struct bv b;
	if (bv_init(&b, a.image, work, a.accel, a.memory_mib, 2) < 0)
		return 1;
	b.append = a.append;
	char name[64], save[4096];
	int pid = (int)getpid();
	snprintf(save, sizeof(save), "%s/template.save", work);

	struct bv_vm tmpl, v;
	_cleanup_free_ char *txml = NULL;
	snprintf(name, sizeof(name), "orch-rb-%d-tmpl", pid);
	uint64_t t0 = orch_now_ms();
	if (bv_template(&b, &tmpl, name, save, &txml) < 0)
		return 1;
	printf("template: booted, frozen and saved in %llu ms\n",
	       (unsigned long long)(orch_now_ms() - t0));
	fflush(stdout);

	uint64_t t_cold[MAX_RUNS], t_restore[MAX_RUNS], t_first[MAX_RUNS], t_second[MAX_RUNS];
	uint64_t w_restore[MAX_RUNS], w_first[MAX_RUNS], w_second[MAX_RUNS];
	int failures = 0;
	for (int i = 0; i < runs; i++) {
		snprintf(name, sizeof(name), "orch-rb-%d-cold", pid);
		if (bv_boot(&b, &v, name, true, &t_cold[i]) < 0)
			return 1;
		bv_destroy(&b, &v);

		for (int w = 0; w < 2; w++) {
			uint64_t *ready = w ? w_restore : t_restore, *first = w ? w_first : t_first,
				 *second = w ? w_second : t_second;
			snprintf(name, sizeof(name), "orch-rb-%d-%s%d", pid, w ? "w" : "r", i);
			b.thaw_warm = w;
			if (bv_restore(&b, save, txml, tmpl.dir, &v, name, &ready[i]) < 0) {
				bv_destroy(&b, &v);
				return 1;
			}
			/* The first task in a fresh VM next to the second one in the same VM:
			 * what a vm-per-task dispatch pays on top of a shared VM's. */
			for (int k = 0; k < 2; k++) {
				struct lv_peer_task *t = bv_run(&b, &v, "echo restored-ok", 60000);
				if (!t->done || !strstr(t->out, "restored-ok")) {
					fprintf(stderr, "restored VM %s: echo failed: %s\n", name,
						t->out);
					failures++;
				}
				(k ? second : first)[i] = t->first_output_ms > t->sent_ms
								  ? t->first_output_ms - t->sent_ms
								  : 0;
			}
			bv_destroy(&b, &v);
		}
		printf("run %d: cold boot to hello %llu ms, restore to ready %llu ms; "
		       "echo to its output: first task %llu ms, second %llu ms; warmed: ready "
		       "%llu ms, first task %llu ms, second %llu ms\n",
		       i + 1, (unsigned long long)t_cold[i], (unsigned long long)t_restore[i],
		       (unsigned long long)t_first[i], (unsigned long long)t_second[i],
		       (unsigned long long)w_restore[i], (unsigned long long)w_first[i],
		       (unsigned long long)w_second[i]);
		fflush(stdout);
	}
	bv_report("cold boot (create to hello)", t_cold, runs);
	bv_report("snapshot (restore to thawed)", t_restore, runs);
	bv_report("restored VM: first task's echo", t_first, runs);
	bv_report("restored VM: second task's echo", t_second, runs);
	bv_report("warmed (restore to thawed + warm-up)", w_restore, runs);
	bv_report("warmed VM: first task's echo", w_first, runs);
	bv_report("warmed VM: second task's echo", w_second, runs);
	uint64_t pc = bv_p50(t_cold, runs), pr = bv_p50(t_restore, runs);
	printf("ratio snapshot/cold p50: %.2fx (target here <= 0.25x; on KVM ready <= 150 ms)\n",
	       pc ? (double)pr / (double)pc : 0.0);
	bv_done(&b);
	unlink(save);
	return failures ? 1 : 0;
}
