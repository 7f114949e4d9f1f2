/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshots end to end, without orchd (docs/VM.md, "Snapshots"): a real guest booted as a
 * template (no shares, orch.snapshot=1) is frozen after hello and saved; two VMs
 * restored from it at once each get their workspace share
 * hot-plugged and are thawed; then, seen from tasks inside them: distinct kernel boot ids
 * (/proc/sys/kernel/random/boot_id), distinct getrandom() and /dev/urandom output, the
 * host's time (not the snapshot's), their own workspaces (a file written in one is on
 * the host in its directory only), distinct supervisor boot ids;
 * a second vm.thaw and a vm.freeze while a task runs are refused. Run by tests/vm/e2e.sh.
 *
 *   vm-snapshot --image DIR --work DIR
 */
#include <dirent.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench-vm.h"
#include "cleanup.h"

static int failures;

static void check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s - ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	failures += !ok;
}

struct seen {
	char boot_id[64], urandom[80], getrandom[80];
	long long date;
};

static const char probe[] =
	"cat /proc/sys/kernel/random/boot_id; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' "
	"\\n'; "
	"echo; python3 -c 'import os; print(os.getrandom(16).hex())'; date +%s; "
	"cat /proc/sys/kernel/random/boot_id > /workspace/mine.txt";

static bool read_probe(const struct lv_peer_task *t, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	return t->done && t->status == ORCH_EXIT_EXITED && t->exit_code == 0 &&
	       sscanf(t->out, "%63s %79s %79s %lld", s->boot_id, s->urandom, s->getrandom,
		      &s->date) == 4;
}

int main(int argc, char **argv)
{
	const char *image = NULL, *work = NULL;
	static const struct option opts[] = {{"image", required_argument, NULL, 'i'},
					     {"work", required_argument, NULL, 'w'},
					     {0}};
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (opt == 'i')
			image = optarg;
		else if (opt == 'w')
			work = optarg;
		else
			return 2;
	}
	if (!image || !work) {
		fprintf(stderr, "usage: vm-snapshot --image DIR --work DIR\n");
		return 2;
	}
	struct bv b;
	if (bv_init(&b, image, work, "auto", 512, 2) < 0)
		return 1;

	/* The template. */
	struct bv_vm t, v[2];
	char name[64], save[4096];
	int pid = (int)getpid();
	bool done = false, ok = true;
	snprintf(save, sizeof(save), "%s/template.save", work);
	snprintf(name, sizeof(name), "orch-snap-%d-tmpl", pid);
	if (bv_template_boot(&b, &t, name) < 0)
		return 1;
	/* ORCH_SNAPSHOT_TEMPLATE_AGE=S: freeze S seconds after boot. Past 120 s the guest's
	 * kernel reseeds its generator only every 60 s, so restored copies would share
	 * their random state for that long without the reseeds of vm.freeze and vm.thaw. */
	const char *age = getenv("ORCH_SNAPSHOT_TEMPLATE_AGE");
	if (age && atoi(age) > 0) {
		printf("# template: waiting %d s before the freeze\n", atoi(age));
		fflush(stdout);
		lv_peer_wait(b.loop, &(bool){false}, (uint64_t)atoi(age) * 1000);
	}
	struct lv_peer_task *task = bv_run(&b, &t, "echo hi", 60000);
	check(task->done && task->status == ORCH_EXIT_FAILED && strstr(task->out, "template"),
	      "a template runs no task (%s)", task->out);
	_cleanup_free_ char *txml = NULL;
	/* Paused before its host leaves: every copy holds a supervisor that believes its
	 * channel is up, and must still find its new host (it drops a channel on which no
	 * vm.thaw comes). */
	if (bv_template_save(&b, &t, save, true, &txml) < 0)
		return 1;
	check(true, "template frozen and saved (paused before its host left)");

	/* Two VMs from it at once; the second's vm.thaw asks for the warm-up jail, as orchd's
	 * does (guest/warm.h). */
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "orch-snap-%d-r%d", pid, i);
		b.thaw_warm = i == 1;
		if (bv_restore(&b, save, txml, t.dir, &v[i], name, NULL) < 0) {
			check(false, "restore %s", name);
			for (int j = 0; j <= i; j++)
				bv_destroy(&b, &v[j]);
			return 1;
		}
	}
	check(true, "two VMs restored from one snapshot, both thawed");
	/* The template was saved without its RAM's zero pages: a restore reads in only what
	 * the guest had written, not the whole memfd (save-stream.h). */
	for (int i = 0; i < 2; i++) {
		char p[sizeof(v[i].name) + 64], line[256];
		long long qpid = 0, shmem_kb = -1;
		snprintf(p, sizeof(p), "/run/libvirt/qemu/%.63s.pid", v[i].name);
		FILE *f = fopen(p, "re");
		if (f) {
			if (fscanf(f, "%lld", &qpid) != 1)
				qpid = 0;
			fclose(f);
		}
		snprintf(p, sizeof(p), "/proc/%lld/status", qpid);
		if (qpid > 0 && (f = fopen(p, "re"))) {
			while (fgets(line, sizeof(line), f))
				if (sscanf(line, "RssShmem: %lld", &shmem_kb) == 1)
					break;
			fclose(f);
		}
		check(shmem_kb >= 0 && shmem_kb < (long long)b.memory_mib * 1024 / 2,
		      "%s holds %lld KiB of its %llu MiB of guest memory after the restore",
		      v[i].name, shmem_kb, (unsigned long long)b.memory_mib);
	}
	check(lv_peer_state(v[0].peer)->warm_ms == -1 && lv_peer_state(v[1].peer)->warm_ms >= 0,
	      "the warm-up jail ran where vm.thaw asked for it (%lld ms) and nowhere else",
	      (long long)lv_peer_state(v[1].peer)->warm_ms);
	/* It leaves nothing a task could see: the workspaces are as the thaw made them. */
	for (int i = 0; i < 2; i++) {
		char p[PATH_MAX + 32];
		int n = -1;
		snprintf(p, sizeof(p), "%s/agent-0", v[i].ws);
		DIR *dir = opendir(p);
		if (dir) {
			n = 0;
			for (struct dirent *e; (e = readdir(dir));)
				n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
			closedir(dir);
		}
		check(n == 0, "%s's agent-0 is empty before its first task (%d entries)", v[i].name,
		      n);
	}
	/* The first randomness after the restore: the boot id of the frozen supervisor's
	 * hello, drawn right after its redial. */
	check(strcmp(lv_peer_state(v[0].peer)->hello_boot_id,
		     lv_peer_state(v[1].peer)->hello_boot_id) != 0,
	      "distinct boot ids in the hellos right after the restore (%s, %s)",
	      lv_peer_state(v[0].peer)->hello_boot_id, lv_peer_state(v[1].peer)->hello_boot_id);
	struct seen s[2];
	char sup_id[2][ORCH_MAX_ID_LEN + 1];
	for (int i = 0; i < 2; i++) {
		snprintf(sup_id[i], sizeof(sup_id[i]), "%s", lv_peer_state(v[i].peer)->boot_id);
		struct lv_peer_task *pt = bv_run(&b, &v[i], probe, 60000);
		printf("# %s: %s", v[i].name, pt->out);
		check(read_probe(pt, &s[i]), "%s runs a task end to end", v[i].name);
	}
	check(strcmp(s[0].boot_id, s[1].boot_id) != 0 && strlen(s[0].boot_id) == 36,
	      "distinct kernel boot ids (%s, %s)", s[0].boot_id, s[1].boot_id);
	check(strcmp(s[0].urandom, s[1].urandom) != 0, "distinct /dev/urandom output");
	check(strcmp(s[0].getrandom, s[1].getrandom) != 0, "distinct getrandom() output");
	check(strcmp(sup_id[0], sup_id[1]) != 0, "distinct supervisor boot ids after vm.thaw");
	long long now = (long long)time(NULL);
	check(llabs(s[0].date - now) < 30 && llabs(s[1].date - now) < 30,
	      "the guests' clocks are the host's (%lld, %lld, host %lld)", s[0].date, s[1].date,
	      now);
	for (int i = 0; i < 2; i++) {
		char p[PATH_MAX + 64], want[80], got[128] = "";
		snprintf(p, sizeof(p), "%s/agent-0/mine.txt", v[i].ws);
		snprintf(want, sizeof(want), "%.63s\n", s[i].boot_id);
		FILE *f = fopen(p, "re");
		if (f) {
			if (!fgets(got, sizeof(got), f))
				got[0] = 0;
			fclose(f);
		}
		check(!strcmp(got, want), "%s wrote its own hot-plugged workspace (%s)", v[i].name,
		      p);
	}

	/* A task holds vm.freeze off. */
	struct lv_peer_task *task2 = lv_peer_run(v[1].peer, 0, "sleep 2; echo slept", 0);
	done = false;
	ok = true;
	check(lv_peer_freeze(v[1].peer, &done, &ok) == 0 && lv_peer_wait(b.loop, &done, 30000) &&
		      !ok,
	      "vm.freeze is refused while a task runs");
	check(lv_peer_wait(b.loop, &task2->done, 30000) && strstr(task2->out, "slept"),
	      "the task runs to its end");

	/* A second vm.thaw is refused: the VM is not frozen any more. */
	unsigned char seed[32] = {1};
	struct orch_vm_thaw th = {.seed = seed, .seed_len = 32, .time_ns = 0, .name = "again"};
	done = false;
	ok = true;
	check(lv_peer_thaw(v[0].peer, &th, &done, &ok) == 0 && lv_peer_wait(b.loop, &done, 30000) &&
		      !ok,
	      "a second vm.thaw is refused");
	for (int i = 0; i < 2; i++)
		bv_destroy(&b, &v[i]);
	bv_done(&b);
	unlink(save);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
