/* SPDX-License-Identifier: Apache-2.0 */
/* orchd benchmarks, each next to a baseline measured in the same run:
 *   1. dispatch latency: `orch dispatch --wait -- /bin/true` end to end (CLI process,
 *      control socket, store, scheduler, supervisor, jail) vs bare `bwrap ... /bin/true`
 *      and bwrap + the jail's seccomp filter;
 *   2. queue throughput with 4 slots: submissions/s over one control connection, and
 *      completions/s vs the jail spawn bound (4 slots / bwrap+seccomp p50);
 *   3. orchd RSS with 1,000 finished tasks in the store (target <= 16 MiB).
 * Run as root: bench-host [RUNS] [TASKS]   (defaults 100 and 1000) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "jail-seccomp.h"

#define UID 100190

static char orchd[4096], orch[4096], sock[100], state[64];

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double report(const char *name, double *v, int n, double base)
{
	double p50, p99;

	qsort(v, (size_t)n, sizeof(double), cmp);
	p50 = v[n / 2];
	p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	printf("%-40s p50 %7.2f ms  p99 %7.2f ms", name, p50, p99);
	if (base > 0)
		printf("  (%.2fx of bwrap+seccomp p50)", p50 / base);
	printf("\n");
	return p50;
}

static int run_wait(char *const argv[], int seccomp_fd)
{
	int st = 0;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		if (seccomp_fd >= 0 && (setgroups(0, NULL) < 0 || setresgid(UID, UID, UID) < 0 ||
					setresuid(UID, UID, UID) < 0))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int failures; /* runs that did not succeed: a failing run is fast, not a figure */

static void bench_bwrap(double *v, int n, const struct sv_seccomp *sc)
{
	for (int i = 0; i < n; i++) {
		char fdbuf[16];
		int fd = sc ? sv_seccomp_memfd(sc) : -1;
		char *argv[] = {"/usr/bin/bwrap",
				"--unshare-all",
				"--die-with-parent",
				"--new-session",
				"--ro-bind",
				"/usr",
				"/usr",
				"--symlink",
				"usr/bin",
				"/bin",
				"--symlink",
				"usr/lib",
				"/lib",
				"--symlink",
				"usr/lib64",
				"/lib64",
				"--proc",
				"/proc",
				"--dev",
				"/dev",
				"--tmpfs",
				"/tmp",
				sc ? "--seccomp" : "/bin/true",
				sc ? fdbuf : NULL,
				"/bin/true",
				NULL};
		double t0;

		snprintf(fdbuf, sizeof(fdbuf), "%d", fd);
		t0 = now_ms();
		if (run_wait(argv, sc ? fd : 0) != 0) {
			fprintf(stderr, "bwrap%s /bin/true failed\n", sc ? "+seccomp" : "");
			failures++;
		}
		v[i] = now_ms() - t0;
		if (fd >= 0)
			close(fd);
	}
}

/* 4 workers spawning bwrap+seccomp /bin/true back to back: the jail-spawn bound of 4 slots
 * on this machine. Returns spawns per second. */
static double bench_parallel(const struct sv_seccomp *sc, int total)
{
	double t0 = now_ms();
	pid_t w[4];

	for (int k = 0; k < 4; k++) {
		w[k] = fork();
		if (w[k] == 0) {
			double *v = calloc((size_t)total / 4 + 1, sizeof(double));
			bench_bwrap(v, total / 4, sc);
			_exit(failures ? 1 : 0);
		}
	}
	for (int k = 0; k < 4; k++) {
		int st = 0;
		waitpid(w[k], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failures++;
	}
	return (total / 4 * 4) / ((now_ms() - t0) / 1e3);
}

/* utime + stime of pid in ms */
static double cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static FILE *rpc_in, *rpc_out;
static long rpc_id;

static int rpc_connect(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	rpc_in = fdopen(fd, "r");
	rpc_out = fdopen(dup(fd), "w");
	return 0;
}

/* Sends one request and reads lines until its reply (notifications are skipped). */
static json_t *rpc(const char *method, json_t *params)
{
	static char line[1 << 20];
	long id = ++rpc_id;
	json_t *msg = json_pack("{sssssIso}", "jsonrpc", "2.0", "method", method, "id",
				(json_int_t)id, "params", params);
	char *s = json_dumps(msg, JSON_COMPACT);

	fprintf(rpc_out, "%s\n", s);
	fflush(rpc_out);
	free(s);
	json_decref(msg);
	while (fgets(line, sizeof(line), rpc_in)) {
		json_t *r = json_loads(line, 0, NULL);
		if (r && json_integer_value(json_object_get(r, "id")) == id) {
			json_t *res = json_incref(json_object_get(r, "result"));
			json_decref(r);
			return res;
		}
		json_decref(r);
	}
	return NULL;
}

static long rss_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, strlen(key)) == 0) {
			kb = atol(line + strlen(key));
			break;
		}
	fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 100, tasks = argc > 2 ? atoi(argv[2]) : 1000;
	const char *bd = getenv("ORCH_BUILDDIR") ? getenv("ORCH_BUILDDIR") : ORCH_BUILDDIR_DEFAULT;
	struct orch_error err = {0};
	struct sv_seccomp sc = {0};
	double *v = calloc((size_t)runs, sizeof(double)), base, t0, t1, t2;
	json_t *res;
	pid_t pid;
	char cmd[600];

	if (geteuid() != 0 || runs < 1 || tasks < 1) {
		fprintf(stderr, "usage (as root): bench-host [RUNS] [TASKS]\n");
		return 2;
	}
	if (sv_seccomp_build(&sc, &err) < 0) {
		fprintf(stderr, "seccomp: %s\n", err.msg);
		return 1;
	}
	snprintf(orchd, sizeof(orchd), "%s/host/orchd", bd);
	snprintf(orch, sizeof(orch), "%s/host/orch", bd);
	snprintf(state, sizeof(state), "/tmp/orch-bench-host.XXXXXX");
	if (!mkdtemp(state))
		return 1;
	snprintf(sock, sizeof(sock), "%s/orch.sock", state);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execl(orchd, "orchd", "--state-dir", state, "--socket", sock, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && rpc_connect() < 0; i++)
		usleep(20000);
	for (int i = 0; i < 200; i++) { /* until the supervisor said hello */
		json_t *st = rpc("status", json_object());
		const char *s = json_string_value(
			json_object_get(json_array_get(json_object_get(st, "vms"), 0), "state"));
		int ready = s && strcmp(s, "ready") == 0;
		json_decref(st);
		if (ready)
			break;
		usleep(20000);
	}
	printf("orch host benchmarks: %d runs, %d tasks, 4 slots (local backend)\n\n", runs, tasks);

	/* 1. dispatch latency */
	bench_bwrap(v, runs, NULL);
	report("bare bwrap /bin/true", v, runs, 0);
	bench_bwrap(v, runs, &sc);
	base = report("bwrap+seccomp /bin/true (baseline)", v, runs, 0);
	for (int i = 0; i < runs; i++) {
		char *a[] = {orch, "--socket", sock, "dispatch", "--wait", "--", "/bin/true", NULL};
		t0 = now_ms();
		if (run_wait(a, -1) != 0) {
			fprintf(stderr, "orch dispatch --wait failed\n");
			failures++;
		}
		v[i] = now_ms() - t0;
	}
	report("orch dispatch --wait -- /bin/true", v, runs, base);
	printf("target: p50 within 2x of bwrap+seccomp\n\n");

	/* 2. throughput */
	double c0 = cpu_ms(pid);
	t0 = now_ms();
	long last = 0;
	for (int i = 0; i < tasks; i++) {
		res = rpc("task.submit", json_pack("{s[s]}", "argv", "/bin/true"));
		last = (long)json_integer_value(json_object_get(res, "id"));
		if (last <= 0) {
			fprintf(stderr, "task.submit failed\n");
			failures++;
		}
		json_decref(res);
	}
	t1 = now_ms();
	json_decref(rpc("task.wait", json_pack("{sI}", "id", (json_int_t)last)));
	for (;;) { /* the last submitted may finish before others still running */
		json_t *st = rpc("status", json_object());
		json_t *tk = json_object_get(st, "tasks");
		long active = (long)(json_integer_value(json_object_get(tk, "queued")) +
				     json_integer_value(json_object_get(tk, "leased")) +
				     json_integer_value(json_object_get(tk, "running")));
		json_decref(st);
		if (!active)
			break;
		usleep(5000);
	}
	t2 = now_ms();
	double c1 = cpu_ms(pid);
	{ /* every task of both parts succeeded */
		json_t *st = rpc("status", json_object());
		long ok = (long)json_integer_value(
			json_object_get(json_object_get(st, "tasks"), "succeeded"));
		if (ok != tasks + runs) {
			fprintf(stderr, "%ld of %d tasks succeeded\n", ok, tasks + runs);
			failures++;
		}
		json_decref(st);
	}
	printf("%-40s %9.0f /s\n", "submissions (one connection)", tasks / ((t1 - t0) / 1e3));
	printf("%-40s %9.0f /s\n", "completions (4 slots)", tasks / ((t2 - t0) / 1e3));
	printf("%-40s %9.0f ms  (%.0f%% of the wall time: the rest is jail spawning)\n",
	       "orchd CPU for submit+complete", c1 - c0, 100 * (c1 - c0) / (t2 - t0));
	printf("%-40s %9.0f /s\n", "baseline: 4 parallel bwrap+seccomp loops",
	       bench_parallel(&sc, tasks));
	printf("target: >= 2000 submissions/s; completions bound by jail spawn\n\n");

	/* 3. RSS */
	printf("%-40s %6ld KiB  (%d+%d finished tasks in the store; anonymous %ld KiB, the\n"
	       "%-40s rest is shared library pages: libvirt, libcurl, sqlite)\n",
	       "orchd RSS", rss_kb(pid, "status", "VmRSS:"), tasks, runs,
	       rss_kb(pid, "status", "RssAnon:"), "");
	printf("%-40s %6ld KiB  (proportional: shared pages divided among their users)\n",
	       "orchd PSS", rss_kb(pid, "smaps_rollup", "Pss:"));
	printf("target: <= 16384 KiB\n");

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", state);
	sv_seccomp_done(&sc);
	free(v);
	if (failures) {
		fprintf(stderr, "bench-host: %d failures: the figures above are not valid\n",
			failures);
		return 1;
	}
	return 0;
}
