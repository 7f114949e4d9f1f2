/* SPDX-License-Identifier: Apache-2.0 */
/* Jailed spawn overhead: time from task.run to task.exit for /bin/true through the real
 * orch-supervisor, next to baselines measured in the same run: bare fork+exec, bare bwrap
 * (as the agent uid), and bwrap + seccomp + orch-jail-exec (the supervisor's exact jail
 * without the daemon), and a supervisor RPC that does no work (the cost of the daemon
 * round trip alone). Also the supervisor's RSS: idle, and once an agent used its LLM
 * endpoint (which starts the slot's endpoint process; it loads libmicrohttpd and
 * GnuTLS, the supervisor does not), and that process's RSS.
 * Every run must succeed (exit status 0, and for the jails the helper's "exited 0"), or the
 * benchmark stops: a jail that fails early is faster than one that works. The baseline
 * jail has a workspace root of its own (the supervisor gives its agent-0 to its own uid).
 *   bench-guest-spawn [RUNS]        (root; default 200 runs each) */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "jail-seccomp.h"
#include "jail.h"
#include "netns.h"
#include "schema.h"
#include "spawn.h"
#include "strv.h"

#define UID 10190

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

static void report(const char *name, double *v, int n, double base)
{
	qsort(v, (size_t)n, sizeof(double), cmp);
	double p50 = v[n / 2], p99 = v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	printf("%-34s p50 %7.2f ms  p99 %7.2f ms", name, p50, p99);
	if (base > 0)
		printf("  (%.2fx of bwrap+seccomp p50)", p50 / base);
	printf("\n");
}

/* 0 when the child exited with status 0. */
static int wait_child(pid_t pid)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static double one_exec(void)
{
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	if (wait_child(pid) < 0)
		return fprintf(stderr, "fork+exec of /bin/true failed\n"), -1;
	return now_ms() - t0;
}

static double one_bwrap(void)
{
	{
		double t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			if (setgroups(0, NULL) < 0 || setresgid(UID, UID, UID) < 0 ||
			    setresuid(UID, UID, UID) < 0)
				_exit(127);
			/* --share-net: like the jails, which join a network namespace made once
			 * per slot (creating and destroying one per run costs far more, in a
			 * kernel worker, and would slow down whatever runs next). */
			execl("/usr/bin/bwrap", "bwrap", "--unshare-all", "--share-net",
			      "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
			      "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
			      "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev",
			      "/dev", "--tmpfs", "/tmp", "/bin/true", (char *)NULL);
			_exit(127);
		}
		if (wait_child(pid) < 0)
			return fprintf(stderr, "bare bwrap failed\n"), -1;
		return now_ms() - t0;
	}
}

struct jail {
	struct sv_seccomp sc;
	int ns;
	char **argv;
	struct sv_spawn_spec ss;
};

/* The environment the supervisor gives a task (task.c build_env), so that the program
 * does the same work (LANG makes libc load a locale). */
static char *jail_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
			   "HOME=/workspace",
			   "TMPDIR=/tmp",
			   "LANG=C.UTF-8",
			   "USER=agent",
			   "ORCH_TASK=b",
			   "ORCH_SLOT=0",
			   NULL};

static int jail_init(struct jail *j, const char *helper, const char *ws)
{
	struct orch_error err = {0};
	static char *ro[] = {"/usr", "/bin", "/lib", "/lib64", "/etc"};
	static const char *cmd[] = {"/bin/true", NULL};
	memset(j, 0, sizeof(*j));
	if (sv_seccomp_build(&j->sc, &err) < 0 || (j->ns = sv_netns_new(&err)) < 0)
		return fprintf(stderr, "%s\n", err.msg), -1;
	struct sv_jail_spec js = {.bwrap = "/usr/bin/bwrap",
				  .exec_helper = helper,
				  .slot = 0,
				  .workspace = ws,
				  .ro_paths = ro,
				  .n_ro_paths = 5,
				  .seccomp = true,
				  .env = (const char *const *)jail_env,
				  .argv = cmd};
	if (sv_jail_argv(&js, &j->argv, &err) < 0)
		return fprintf(stderr, "%s\n", err.msg), -1;
	j->ss = (struct sv_spawn_spec){.bwrap_argv = j->argv,
				       .envp = jail_env,
				       .seccomp = &j->sc,
				       .netns_fd = j->ns,
				       .uid = UID,
				       .gid = UID,
				       .limits = {.nofile = 1024}};
	return 0;
}

/* *ret_spawn: until bwrap is running (sv_spawn returns once bwrap was executed). */
static double one_jail(struct jail *j, double *ret_spawn)
{
	struct orch_error err = {0};
	double t0 = now_ms();
	struct sv_spawned sp;
	if (sv_spawn(&j->ss, &sp, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	*ret_spawn = now_ms() - t0;
	char status[64] = "";
	size_t len = 0;
	for (;;) {
		ssize_t r = read(sp.status_fd, status + len, sizeof(status) - 1 - len);
		if (r > 0 && (len += (size_t)r) < sizeof(status) - 1)
			continue;
		if (r == 0 || r > 0 || errno != EAGAIN)
			break;
		struct pollfd p = {sp.status_fd, POLLIN, 0};
		poll(&p, 1, 1000);
	}
	status[len] = 0;
	int ok = wait_child(sp.pid);
	double d = now_ms() - t0;
	if (ok < 0 || strcmp(status, "exited 0\n") != 0) {
		char msg[512];
		ssize_t r = read(sp.err_fd, msg, sizeof(msg) - 1);
		msg[r > 0 ? r : 0] = 0;
		fprintf(stderr, "baseline jail failed (status '%.*s'): %s\n",
			(int)strcspn(status, "\n"), status, msg);
		d = -1;
	}
	close(sp.out_fd);
	close(sp.err_fd);
	close(sp.status_fd);
	close(sp.pidfd);
	return d;
}

static void jail_done(struct jail *j)
{
	orch_strv_free(j->argv);
	sv_seccomp_done(&j->sc);
	close(j->ns);
}

/* ---- a minimal synchronous host ---- */

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len;
};

static json_t *conn_read(struct conn *c)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t l = (size_t)(nl - c->buf);
			json_t *j = json_loadb(c->buf, l, 0, NULL);
			memmove(c->buf, nl + 1, c->len - l - 1);
			c->len -= l + 1;
			return j;
		}
		if (c->len == sizeof(c->buf))
			return NULL;
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static void conn_send(struct conn *c, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	size_t len = strlen(s);
	s[len] = '\n';
	if (write(c->fd, s, len + 1) != (ssize_t)(len + 1))
		perror("write");
	free(s);
}

/* Resident memory in KiB: all of it, anonymous (heap, stacks, written data) and
 * file-backed (mapped code and read-only data, which the kernel can drop and reread). */
struct rss {
	long total, anon, file;
};

static struct rss rss_of(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	struct rss r = {-1, -1, -1};
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &r.total) != 1 &&
		    sscanf(line, "RssAnon: %ld", &r.anon) != 1)
			(void)sscanf(line, "RssFile: %ld", &r.file);
	if (f)
		fclose(f);
	return r;
}

static void print_rss(const char *what, struct rss r)
{
	printf("%s: %ld KiB (anonymous %ld KiB, file-backed %ld KiB)\n", what, r.total, r.anon,
	       r.file);
}

struct sup {
	pid_t pid;
	struct conn c;
	int n;
};

static int sup_start(struct sup *s, const char *exe, const char *root, struct rss *ret_rss)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	char uid[16];
	snprintf(uid, sizeof(uid), "%d", UID + 1); /* its own uid: no interference */
	s->pid = fork();
	if (s->pid == 0) {
		dup2(sp[1], 3);
		execl(exe, exe, "--connect", "fd:3", "--slots", "1", "--workspace-root", root,
		      "--uid-base", uid, "--cgroup-name", "orch-bench", "--heartbeat-ms", "600000",
		      /* the baseline's read-only paths */
		      "--ro-path", "/usr", "--ro-path", "/bin", "--ro-path", "/lib", "--ro-path",
		      "/lib64", "--ro-path", "/etc", (char *)NULL);
		_exit(127);
	}
	close(sp[1]);
	s->c.fd = sp[0];
	json_t *hello = conn_read(&s->c);
	if (!hello)
		return -1;
	conn_send(&s->c, json_pack("{s:s, s:O, s:{s:i, s:i, s:s}}", "jsonrpc", "2.0", "id",
				   json_object_get(hello, "id"), "result", "protocol", 1,
				   "heartbeat_ms", 600000, "name", "bench"));
	json_decref(hello);
	usleep(200000);
	*ret_rss = rss_of(s->pid);
	return 0;
}

/* *ret_spawn: until task.run's response, sent once bwrap was executed. */
static double sup_run(struct sup *s, json_t *argv_new, double *ret_spawn)
{
	char id[32];
	int i = s->n++;
	snprintf(id, sizeof(id), "b-%d", i);
	double t0 = now_ms();
	conn_send(&s->c, json_pack("{s:s, s:i, s:s, s:{s:s, s:i, s:o}}", "jsonrpc", "2.0", "id",
				   i + 1, "method", "task.run", "params", "task", id, "slot", 0,
				   "argv", argv_new));
	for (;;) {
		json_t *m = conn_read(&s->c);
		if (!m)
			return -1;
		const char *method = json_string_value(json_object_get(m, "method"));
		if (!method)
			*ret_spawn = now_ms() - t0;
		if (method && !strcmp(method, "task.output")) {
			/* Kept for the report of a failed run (the tasks here print nothing). */
			const char *d = json_string_value(
				json_object_get(json_object_get(m, "params"), "data"));
			size_t dl = 0;
			unsigned char *raw = NULL;
			if (d && orch_b64_decode(d, strlen(d), &raw, &dl) == 0 && dl)
				fprintf(stderr, "task output: %.*s\n", (int)dl, (const char *)raw);
			free(raw);
		}
		if (method && !strcmp(method, "task.exit")) {
			double d = now_ms() - t0;
			json_t *p = json_object_get(m, "params");
			const char *st = json_string_value(json_object_get(p, "status"));
			if (!st || strcmp(st, "exited") != 0 ||
			    json_integer_value(json_object_get(p, "exit_code")) != 0) {
				fprintf(stderr, "supervisor task failed: %s %lld (%s)\n",
					st ? st : "?",
					(long long)json_integer_value(
						json_object_get(p, "exit_code")),
					json_string_value(json_object_get(p, "reason")));
				d = -1;
			}
			conn_send(&s->c, json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id",
						   json_object_get(m, "id"), "result"));
			json_decref(m);
			return d;
		}
		json_decref(m);
	}
}

static double one_sup(struct sup *s, double *ret_spawn)
{
	return sup_run(s, json_pack("[s]", "/bin/true"), ret_spawn);
}

/* The endpoint process of slot 0: the supervisor's child named orch-llm-0. */
static pid_t endpoint_pid(pid_t sup)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)sup, (int)sup);
	FILE *f = fopen(path, "re");
	int pid;
	pid_t found = 0;
	while (f && !found && fscanf(f, "%d", &pid) == 1) {
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		FILE *c = fopen(path, "re");
		if (c && fgets(line, sizeof(line), c) && !strcmp(line, "orch-llm-0\n"))
			found = pid;
		if (c)
			fclose(c);
	}
	if (f)
		fclose(f);
	return found;
}

/* The supervisor's RSS once an agent used its LLM endpoint (which starts the slot's
 * endpoint process, which loads libmicrohttpd): a request answered by the endpoint
 * itself (405), from curl in the jail. *ret_ep: the endpoint process's RSS. */
static struct rss rss_after_llm(struct sup *s, struct rss *ret_ep)
{
	double spawn;
	struct rss none = {-1, -1, -1};
	*ret_ep = none;
	if (access("/usr/bin/curl", X_OK) < 0)
		return none;
	if (sup_run(s,
		    json_pack("[s, s, s, s, s, s, s]", "/usr/bin/curl", "-sS", "-o", "/dev/null",
			      "-X", "DELETE", "http://127.0.0.1:4000/"),
		    &spawn) < 0)
		return none;
	usleep(100000);
	pid_t ep = endpoint_pid(s->pid);
	if (ep > 0)
		*ret_ep = rss_of(ep);
	return rss_of(s->pid);
}

/* A request that does no work (task.cancel of an unknown task, answered with an error):
 * the cost of the daemon round trip itself, host -> supervisor -> host. */
static double one_rpc(struct sup *s)
{
	int i = s->n++;
	double t0 = now_ms();
	conn_send(&s->c, json_pack("{s:s, s:i, s:s, s:{s:s}}", "jsonrpc", "2.0", "id", i + 1,
				   "method", "task.cancel", "params", "task", "no-such-task"));
	for (;;) {
		json_t *m = conn_read(&s->c);
		if (!m)
			return -1;
		bool mine = json_integer_value(json_object_get(m, "id")) == i + 1 &&
			    !json_object_get(m, "method");
		json_decref(m);
		if (mine)
			return now_ms() - t0;
	}
}

static void sup_stop(struct sup *s)
{
	kill(s->pid, SIGTERM);
	wait_child(s->pid);
	close(s->c.fd);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	if (n < 10 || n > 100000)
		n = 200;
	if (geteuid() != 0) {
		fprintf(stderr, "bench-guest-spawn needs root\n");
		return 77;
	}
	const char *bd = getenv("ORCH_BUILDDIR");
	char exe[PATH_MAX], helper[PATH_MAX];
	snprintf(exe, sizeof(exe), "%s/guest/orch-supervisor", bd ? bd : ".");
	snprintf(helper, sizeof(helper), "%s/guest/orch-jail-exec", bd ? bd : ".");
	char root[] = "/tmp/orch-bench-XXXXXX";
	if (!mkdtemp(root))
		return 1;
	chmod(root, 0711);
	/* One workspace root each: the supervisor gives its agent-0 to its own uid. */
	char base_root[PATH_MAX], sup_root[PATH_MAX];
	snprintf(base_root, sizeof(base_root), "%s/base", root);
	snprintf(sup_root, sizeof(sup_root), "%s/sup", root);
	if (mkdir(base_root, 0711) < 0 || mkdir(sup_root, 0711) < 0)
		return perror("mkdir"), 1;
	char *ws = NULL;
	struct orch_error err = {0};
	if (sv_workspace_prepare(base_root, 0, UID, UID, &ws, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}

	enum { NV = 5, NA = 7 }; /* 5 variants; 2 more arrays: the spawn part of 2 and 3 */
	double *v[NA];
	for (int k = 0; k < NA; k++)
		v[k] = calloc((size_t)n, sizeof(double));
	struct rss rss = {-1, -1, -1};
	struct jail j;
	struct sup sup = {0};
	if (jail_init(&j, helper, ws) < 0 || sup_start(&sup, exe, sup_root, &rss) < 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	/* Interleaved, and in a rotating order: load from elsewhere, and the kernel's
	 * deferred teardown of the namespaces of the run before, hit every variant alike. */
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < NV; k++) {
			int which = (i + k) % NV;
			double d = which == 0	? one_exec()
				   : which == 1 ? one_bwrap()
				   : which == 2 ? one_jail(&j, &v[5][i])
				   : which == 3 ? one_sup(&sup, &v[6][i])
						: one_rpc(&sup);
			if (d < 0) {
				fprintf(stderr, "run %d failed\n", i);
				return 1;
			}
			v[which][i] = d;
		}
	}
	struct rss rss_ep;
	struct rss rss_llm = rss_after_llm(&sup, &rss_ep);
	sup_stop(&sup);
	jail_done(&j);
	printf("orch-supervisor spawn overhead, /bin/true, %d interleaved runs each\n", n);
	report("fork+exec (baseline)", v[0], n, 0);
	report("bwrap as agent uid (baseline)", v[1], n, 0);
	report("bwrap+seccomp+helper (baseline)", v[2], n, 0);
	double base = v[2][n / 2];
	report("supervisor task.run -> task.exit", v[3], n, base);
	report("supervisor RPC round trip, no task", v[4], n, 0);
	report("  until bwrap runs: baseline jail", v[5], n, 0);
	report("  until bwrap runs: supervisor", v[6], n, 0);
	printf("supervisor round trip minus RPC round trip: p50 %.2f ms (%.2fx of bwrap+seccomp "
	       "p50)\n",
	       v[3][n / 2] - v[4][n / 2], (v[3][n / 2] - v[4][n / 2]) / base);
	print_rss("supervisor idle RSS (target <= 4096 KiB)", rss);
	if (rss_llm.total > 0) {
		print_rss("supervisor RSS once an agent used the LLM endpoint", rss_llm);
		print_rss("  its endpoint process (libmicrohttpd loaded)", rss_ep);
	} else
		printf("supervisor RSS after LLM use: not measured (no /usr/bin/curl, or the "
		       "request failed)\n");
	printf("target: supervisor p50 within 1.3x of bwrap+seccomp+helper p50\n");
	for (int k = 0; k < NA; k++)
		free(v[k]);

	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
	free(ws);
	return 0;
}
