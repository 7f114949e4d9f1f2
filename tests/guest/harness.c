/* SPDX-License-Identifier: Apache-2.0 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "harness.h"

const char *h_builddir(void)
{
	const char *b = getenv("ORCH_BUILDDIR");
	return b ? b : ".";
}

#if defined(__SANITIZE_ADDRESS__)
#define H_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_ASAN 1
#endif
#endif

/* In an ASan build the supervisor runs with a small quarantine: ASan otherwise keeps up
 * to 256 MiB of freed memory resident, and its RSS would follow the bytes that passed
 * through rather than the memory it holds, which test_backpressure measures. */
static void h_sanitizer_env(void)
{
#ifdef H_ASAN
	const char *o = getenv("ASAN_OPTIONS");
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s%squarantine_size_mb=4", o ? o : "", o && *o ? ":" : "");
	setenv("ASAN_OPTIONS", buf, 1);
#endif
}

int h_uid_base(void)
{
	static int base; /* inherited by check's forked test processes */
	if (!base)
		base = 10100 + 16 * (int)(getpid() % 40);
	return base;
}

const char *h_cgroup_name(const char *suffix)
{
	static char name[2][64];
	char *n = name[suffix != NULL];
	snprintf(n, sizeof(name[0]), "orch-test-%s%s%d", suffix ? suffix : "", suffix ? "-" : "",
		 h_uid_base());
	return n;
}

struct h_task *h_task(struct host *h, const char *id)
{
	for (size_t i = 0; i < h->n_tasks; i++)
		if (strcmp(h->tasks[i].id, id) == 0)
			return &h->tasks[i];
	if (h->n_tasks >= H_MAX_TASKS)
		return NULL;
	struct h_task *t = &h->tasks[h->n_tasks++];
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	return t;
}

static int on_hello(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct host *h = data;
	struct orch_hello hh;
	int r = orch_hello_parse(params, &hh, err);
	if (r < 0)
		return r;
	orch_hello_done(&hh);
	json_decref(h->hello);
	h->hello = json_deep_copy(params);
	struct orch_hello_reply rep = {
		.protocol = ORCH_PROTOCOL_VERSION, .heartbeat_ms = 200, .name = "test"};
	orch_rpc_set_state(rpc, ORCH_STATE_READY);
	return orch_rpc_reply(req, orch_hello_reply_build(&rep));
}

static int on_heartbeat(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	struct host *h = data;
	struct orch_heartbeat hb;
	int r = orch_heartbeat_parse(params, &hb, err);
	if (r >= 0)
		h->heartbeats++;
	return r;
}

static void append(char **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < *len + n + 1)
			c *= 2;
		char *b = realloc(*buf, c);
		ck_assert_ptr_nonnull(b);
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = 0;
}

static int on_output(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		     struct orch_error *err)
{
	struct host *h = data;
	struct orch_task_output o;
	int r = orch_task_output_parse(params, &o, err);
	if (r < 0)
		return r;
	struct h_task *t = h_task(h, o.task);
	if (t) {
		if (o.seq != t->next_seq)
			t->bad_seq = true;
		t->next_seq = o.seq + 1;
		if (o.stream == ORCH_STREAM_STDOUT)
			append(&t->out, &t->out_len, &t->out_cap, o.data, o.len);
		else
			append(&t->err, &t->err_len, &t->err_cap, o.data, o.len);
	}
	orch_task_output_done(&o);
	return 0;
}

static int on_exit_req(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		       struct orch_error *err)
{
	struct host *h = data;
	struct orch_task_exit e;
	int r = orch_task_exit_parse(params, &e, err);
	if (r < 0)
		return r;
	struct h_task *t = h_task(h, e.task);
	if (t) {
		t->exits++;
		t->exited = true;
		t->status = e.status;
		t->exit_code = e.exit_code;
		t->signal = e.signal;
		t->output_seq = e.output_seq;
		t->duration_ms = e.duration_ms;
		snprintf(t->reason, sizeof(t->reason), "%s", e.reason ? e.reason : "");
	}
	if (!h->ack_exits)
		return 0; /* deferred forever: the supervisor must keep it */
	return orch_rpc_reply(req, json_object());
}

static const struct orch_rpc_method host_methods[] = {
	{"hello", ORCH_RPC_M_REQUEST, ORCH_STATE_NEW, on_hello},
	{"heartbeat", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, on_heartbeat},
	{"task.output", ORCH_RPC_M_NOTIFY, ORCH_STATE_READY, on_output},
	{"task.exit", ORCH_RPC_M_REQUEST, ORCH_STATE_READY, on_exit_req},
};

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	struct host *h = data;
	h->closed = true;
}

bool h_wait(struct host *h, bool (*cond)(struct host *h, void *arg), void *arg, uint64_t timeout_ms)
{
	uint64_t end = orch_now_ms() + timeout_ms;
	while (!cond(h, arg)) {
		uint64_t now = orch_now_ms();
		if (now >= end)
			return false;
		orch_loop_run_once(h->loop, (int)(end - now < 100 ? end - now : 100));
	}
	return true;
}

static bool have_hello(struct host *h, void *arg)
{
	return h->hello != NULL || h->closed;
}

void h_start(struct host *h, const char *const *extra)
{
	memset(h, 0, sizeof(*h));
	h->ack_exits = true;
	snprintf(h->root, sizeof(h->root), "/tmp/orch-svtest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(h->root));
	ck_assert_int_eq(chmod(h->root, 0711), 0);

	int sp[2];
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	char exe[PATH_MAX], probe_dir[PATH_MAX], uid[16], slots[8];
	snprintf(exe, sizeof(exe), "%s/guest/orch-supervisor", h_builddir());
	snprintf(probe_dir, sizeof(probe_dir), "%s/tests/guest", h_builddir());
	snprintf(uid, sizeof(uid), "%d", H_UID_BASE);
	snprintf(slots, sizeof(slots), "%d", H_SLOTS);
	const char *argv[64] = {exe,
				"--connect",
				"fd:3",
				"--slots",
				slots,
				"--workspace-root",
				h->root,
				"--uid-base",
				uid,
				"--cgroup-name",
				h_cgroup_name(NULL),
				"--ro-path",
				"/usr",
				"--ro-path",
				"/bin",
				"--ro-path",
				"/sbin",
				"--ro-path",
				"/lib",
				"--ro-path",
				"/lib64",
				"--ro-path",
				"/etc",
				"--ro-path",
				probe_dir};
	size_t n = 0;
	while (argv[n])
		n++;
	for (size_t i = 0; extra && extra[i] && n < 62; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	snprintf(h->log, sizeof(h->log), "/tmp/orch-sv-log.XXXXXX");
	int log_fd = mkstemp(h->log);
	ck_assert_int_ge(log_fd, 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (dup2(sp[1], 3) < 0 || dup2(log_fd, 2) < 0)
			_exit(127);
		h_sanitizer_env();
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(sp[1]);
	close(log_fd);
	h->pid = pid;
	ck_assert_int_eq(fcntl(sp[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(orch_loop_new(&h->loop), 0);
	struct orch_rpc_opts opts = {.name = "test-host"};
	ck_assert_int_eq(orch_rpc_new(h->loop, sp[0], host_methods, 4, &opts, h, &h->rpc), 0);
	orch_rpc_set_close_cb(h->rpc, on_close);
	orch_rpc_set_state(h->rpc, ORCH_STATE_NEW);
	ck_assert_msg(h_wait(h, have_hello, NULL, 15000) && h->hello,
		      "no hello from the supervisor");
}

static void rm_rf(const char *path)
{
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", "--one-file-system", path, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

/* Copies the supervisor's log to stderr; true when it holds a sanitizer report. */
static bool log_has_report(const char *path)
{
	static const char *const marks[] = {"ERROR: AddressSanitizer", "runtime error:",
					    "LeakSanitizer: detected memory leaks"};
	char line[4096];
	bool found = false;
	FILE *f = path[0] ? fopen(path, "re") : NULL;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		fputs(line, stderr);
		for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
			found = found || strstr(line, marks[i]);
	}
	fclose(f);
	return found;
}

void h_stop(struct host *h)
{
	int status = 0;
	bool aborted = false;

	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		if (waitpid(h->pid, &status, 0) == h->pid)
			aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
		h->pid = 0;
	}
	bool report = log_has_report(h->log);
	if (h->log[0])
		unlink(h->log);
	h->log[0] = '\0';
	ck_assert_msg(!report, "a sanitizer report from the supervisor (its log is above)");
	ck_assert_msg(!aborted, "the supervisor aborted (its log is above)");
	if (h->rpc)
		orch_rpc_unref(h->rpc);
	h->rpc = NULL;
	if (h->loop)
		orch_loop_free(h->loop);
	h->loop = NULL;
	json_decref(h->hello);
	for (size_t i = 0; i < h->n_tasks; i++) {
		free(h->tasks[i].out);
		free(h->tasks[i].err);
		json_decref(h->tasks[i].result);
	}
	rm_rf(h->root);
}

static void run_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
		      json_t *err_data, void *data)
{
	struct h_task *t = data;
	t->replied = true;
	if (err)
		t->run_err = *err;
	else
		t->result = json_incref(result);
}

static bool replied(struct host *h, void *arg)
{
	return ((struct h_task *)arg)->replied || h->closed;
}

struct h_task *h_run(struct host *h, const char *id, int slot, const char *const *argv,
		     int64_t timeout_ms, json_t *limits_new)
{
	json_t *a = json_array();
	for (size_t i = 0; argv[i]; i++)
		json_array_append_new(a, json_string(argv[i]));
	json_t *p = json_pack("{s:s, s:i, s:o}", "task", id, "slot", slot, "argv", a);
	if (timeout_ms)
		json_object_set_new(p, "timeout_ms", json_integer(timeout_ms));
	if (limits_new)
		json_object_set_new(p, "limits", limits_new);
	struct h_task *t = h_task(h, id);
	ck_assert_ptr_nonnull(t);
	t->replied = false;
	ck_assert_int_eq(orch_rpc_call(h->rpc, "task.run", p, 10000, run_reply, t), 0);
	ck_assert_msg(h_wait(h, replied, t, 15000), "no reply to task.run %s", id);
	return t;
}

static bool exited(struct host *h, void *arg)
{
	return ((struct h_task *)arg)->exited || h->closed;
}

struct h_task *h_wait_exit(struct host *h, const char *id, uint64_t timeout_ms)
{
	struct h_task *t = h_task(h, id);
	ck_assert_ptr_nonnull(t);
	ck_assert_msg(h_wait(h, exited, t, timeout_ms), "no task.exit for %s", id);
	ck_assert_msg(t->exited, "channel closed before task.exit for %s", id);
	return t;
}

static void cancel_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
			 json_t *err_data, void *data)
{
	int *code = data;
	*code = err ? err->code : 1;
}

static bool code_set(struct host *h, void *arg)
{
	return *(int *)arg != 0 || h->closed;
}

int h_cancel(struct host *h, const char *id, int64_t grace_ms)
{
	int code = 0;
	json_t *p = json_pack("{s:s, s:I}", "task", id, "grace_ms", (json_int_t)grace_ms);
	ck_assert_int_eq(orch_rpc_call(h->rpc, "task.cancel", p, 10000, cancel_reply, &code), 0);
	ck_assert(h_wait(h, code_set, &code, 15000));
	return code == 1 ? 0 : code;
}

int h_count_uid(uid_t uid)
{
	DIR *d = opendir("/proc");
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char path[300], line[256];
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned u;
			char st;
			if (sscanf(line, "State: %c", &st) == 1 && (st == 'Z' || st == 'X'))
				break; /* exited, waiting to be reaped */
			if (sscanf(line, "Uid: %u", &u) == 1) {
				n += u == uid;
				break;
			}
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

const char *h_limit_mode(struct host *h, const char *name)
{
	json_t *v = json_object_get(
		json_object_get(json_object_get(h->hello, "capabilities"), "limits"), name);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool h_uid_gone(uid_t uid, uint64_t timeout_ms)
{
	/* Killed processes may take a moment to exit; none may stay. */
	uint64_t end = orch_now_ms() + timeout_ms;
	while (h_count_uid(uid) > 0) {
		if (orch_now_ms() >= end)
			return false;
		usleep(20000);
	}
	return true;
}

int h_run_suite(Suite *s, bool need_bwrap)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: orch-supervisor needs root (uid switch, namespaces)\n");
		return 77;
	}
	if (need_bwrap && access("/usr/bin/bwrap", X_OK) != 0) {
		fprintf(stderr, "SKIP: bubblewrap (/usr/bin/bwrap) is not installed\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	return orch_check_run(s);
}
