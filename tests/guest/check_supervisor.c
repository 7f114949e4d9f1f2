/* SPDX-License-Identifier: Apache-2.0 */
/* Integration tests: the real orch-supervisor over a socketpair, real bwrap jails. */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static struct host H;

static void setup(void)
{
	h_start(&H, NULL);
}

static void teardown(void)
{
	h_stop(&H);
}

#define RUN(id, slot, timeout, ...) \
	h_run(&H, id, slot, (const char *const[]){__VA_ARGS__, NULL}, timeout, NULL)

START_TEST(test_hello)
{
	json_t *caps = json_object_get(H.hello, "capabilities");
	ck_assert_ptr_nonnull(caps);
	ck_assert(json_is_true(json_object_get(caps, "seccomp")));
	ck_assert_int_eq(json_integer_value(json_object_get(H.hello, "slots")), H_SLOTS);
	ck_assert_ptr_nonnull(json_object_get(caps, "limits"));
	/* Every limit announced is backed by a mechanism; pids always (cgroup or rlimit). */
	ck_assert_ptr_nonnull(h_limit_mode(&H, "pids"));
}
END_TEST

START_TEST(test_limits_reported)
{
	/* A limit is either enforced (announced in hello) or listed as unenforced in the
	 * task.run reply: never silently claimed. */
	json_t *limits = json_pack("{s:I, s:i, s:i}", "memory_bytes", (json_int_t)256 << 20, "pids",
				   200, "cpu_percent", 50);
	struct h_task *t = h_run(&H, "lim-1", 0, (const char *const[]){"true", NULL}, 0, limits);
	ck_assert_ptr_nonnull(t->result);
	json_t *un = json_object_get(t->result, "unenforced");
	ck_assert(json_is_array(un));
	const char *names[] = {"memory", "cpu"};
	for (int i = 0; i < 2; i++) {
		bool listed = false;
		size_t k;
		json_t *v;
		json_array_foreach(un, k, v) listed |= strcmp(json_string_value(v), names[i]) == 0;
		ck_assert_msg(listed == (h_limit_mode(&H, names[i]) == NULL),
			      "%s: announced %s, listed as unenforced %d", names[i],
			      h_limit_mode(&H, names[i]) ? h_limit_mode(&H, names[i]) : "null",
			      listed);
	}
	t = h_wait_exit(&H, "lim-1", 20000);
	ck_assert_int_eq(t->exit_code, 0);
}
END_TEST

START_TEST(test_rlimits)
{
	json_t *limits = json_pack("{s:i, s:I}", "nofile", 77, "fsize_bytes", (json_int_t)1 << 20);
	h_run(&H, "rl-1", 1,
	      (const char *const[]){"sh", "-c",
				    "ulimit -n; ulimit -c; head -c 2097152 /dev/zero > /tmp/big; "
				    "echo rc=$?; wc -c < /tmp/big",
				    NULL},
	      0, limits);
	struct h_task *t = h_wait_exit(&H, "rl-1", 20000);
	/* Writing past RLIMIT_FSIZE fails; the file stops at the limit. */
	ck_assert_msg(t->out && strncmp(t->out, "77\n0\n", 5) == 0, "out: %s", t->out);
	ck_assert_msg(strstr(t->out, "rc=0") == NULL, "write past RLIMIT_FSIZE succeeded: %s",
		      t->out);
	ck_assert_msg(strstr(t->out, "1048576"), "out: %s", t->out);
}
END_TEST

START_TEST(test_success)
{
	struct h_task *t = RUN("ok-1", 0, 0, "sh", "-c", "echo hello; echo warn >&2");
	ck_assert_msg(t->result, "task.run failed: %s", t->run_err.msg);
	ck_assert(json_is_true(json_object_get(t->result, "started")));
	t = h_wait_exit(&H, "ok-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_EXITED);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_str_eq(t->out, "hello\n");
	ck_assert_str_eq(t->err, "warn\n");
	ck_assert(!t->bad_seq);
	ck_assert_int_eq(t->output_seq, t->next_seq);
}
END_TEST

START_TEST(test_failure)
{
	RUN("fail-1", 1, 0, "sh", "-c", "exit 3");
	struct h_task *t = h_wait_exit(&H, "fail-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_EXITED);
	ck_assert_int_eq(t->exit_code, 3);
}
END_TEST

START_TEST(test_order)
{
	RUN("order-1", 0, 0, "sh", "-c",
	    "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done");
	struct h_task *t = h_wait_exit(&H, "order-1", 60000);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert(!t->bad_seq);
	ck_assert_int_eq(t->output_seq, t->next_seq);
	/* Every line, in order. */
	char *p = t->out;
	for (int i = 0; i < 3000; i++) {
		char want[32];
		int n = snprintf(want, sizeof(want), "line %d\n", i);
		ck_assert_msg(p && strncmp(p, want, (size_t)n) == 0,
			      "line %d missing or out of order", i);
		p += n;
	}
	ck_assert_int_eq(*p, 0);
}
END_TEST

START_TEST(test_large_output)
{
	/* 8 MiB through a 1 MiB buffer: throttled, complete, in order. */
	RUN("big-1", 2, 0, "sh", "-c", "head -c 8388608 /dev/zero | tr '\\0' x");
	struct h_task *t = h_wait_exit(&H, "big-1", 60000);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_msg(t->out_len == 8388608, "got %zu bytes, seq %lld/%lld, bad_seq %d, err %s",
		      t->out_len, (long long)t->next_seq, (long long)t->output_seq, t->bad_seq,
		      t->err);
	ck_assert(!t->bad_seq);
}
END_TEST

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

START_TEST(test_backpressure)
{
	/* The host stops reading while the agent floods: the supervisor's memory stays
	 * bounded (1 MiB per task + a 4 MiB channel queue), the agent is throttled, and
	 * nothing is lost once the host reads again. */
	RUN("flood-1", 1, 0, "sh", "-c", "head -c 33554432 /dev/zero");
	long before = rss_kb(H.pid);
	for (int i = 0; i < 30; i++)
		usleep(50000); /* not reading: the flood meets a full channel */
	long during = rss_kb(H.pid);
	ck_assert_msg(during - before < 16 * 1024, "supervisor grew from %ld to %ld KiB", before,
		      during);
	struct h_task *t = h_wait_exit(&H, "flood-1", 120000);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_uint_eq(t->out_len, 33554432);
	ck_assert(!t->bad_seq);
}
END_TEST

START_TEST(test_signal)
{
	RUN("sig-1", 0, 0, "sh", "-c", "kill -SEGV $$");
	struct h_task *t = h_wait_exit(&H, "sig-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_SIGNALED);
	ck_assert_int_eq(t->signal, SIGSEGV);
}
END_TEST

START_TEST(test_missing_program)
{
	RUN("missing-1", 0, 0, "/no/such/program", "arg");
	struct h_task *t = h_wait_exit(&H, "missing-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_FAILED);
	ck_assert_msg(strstr(t->reason, "/no/such/program") && strstr(t->reason, "No such file"),
		      "reason: %s", t->reason);
	/* Exactly one exit, also a while later. */
	for (int i = 0; i < 5; i++)
		orch_loop_run_once(H.loop, 100);
	ck_assert_int_eq(t->exits, 1);
}
END_TEST

START_TEST(test_jail_fails)
{
	/* A working directory that does not exist in the jail: bwrap cannot build it. */
	json_t *p = json_pack("{s:s, s:i, s:[s], s:s}", "task", "nojail-1", "slot", 2, "argv",
			      "true", "cwd", "/no/such/dir");
	ck_assert_int_eq(orch_rpc_call(H.rpc, "task.run", p, 10000, NULL, NULL), 0);
	struct h_task *t = h_wait_exit(&H, "nojail-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_FAILED);
	ck_assert_msg(strstr(t->reason, "jail could not be built"), "reason: %s", t->reason);
	ck_assert_int_eq(t->exits, 1);
	/* The slot is free again. */
	RUN("nojail-2", 2, 0, "true");
	t = h_wait_exit(&H, "nojail-2", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_EXITED);
}
END_TEST

START_TEST(test_busy_and_duplicate)
{
	RUN("busy-1", 0, 0, "sleep", "5");
	struct h_task *t = RUN("busy-2", 0, 0, "true");
	ck_assert_ptr_null(t->result);
	ck_assert_int_eq(t->run_err.code, ORCH_RPC_BUSY);
	t = RUN("busy-1", 1, 0, "true");
	ck_assert_int_eq(t->run_err.code, ORCH_RPC_CONFLICT);
	t = RUN("busy-3", 7, 0, "true");
	ck_assert_int_eq(t->run_err.code, ORCH_RPC_INVALID_PARAMS);
	ck_assert_int_eq(h_cancel(&H, "busy-1", 0), 0);
	t = h_wait_exit(&H, "busy-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_CANCELLED);
	ck_assert_int_eq(h_cancel(&H, "nope", 0), ORCH_RPC_NOT_FOUND);
}
END_TEST

START_TEST(test_timeout_kills_grandchildren)
{
	RUN("to-1", 1, 700, "sh", "-c",
	    "sleep 1000 & (sleep 1000 &) ; setsid sleep 1000 & echo started; wait");
	struct h_task *t = h_wait_exit(&H, "to-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_TIMED_OUT);
	ck_assert_str_eq(t->out, "started\n");
	ck_assert(h_uid_gone(H_UID_BASE + 1, 5000));
}
END_TEST

START_TEST(test_slot_reuse_after_kill)
{
	/* The next task of a slot whose task was just killed runs normally. */
	RUN("reuse-1", 0, 300, "sleep", "100");
	struct h_task *t = h_wait_exit(&H, "reuse-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_TIMED_OUT);
	RUN("reuse-2", 0, 0, "sh", "-c", "sleep 0.3; echo ok");
	t = h_wait_exit(&H, "reuse-2", 20000);
	ck_assert_msg(t->status == ORCH_EXIT_EXITED, "status %d reason %s", t->status, t->reason);
	ck_assert_str_eq(t->out, "ok\n");
}
END_TEST

START_TEST(test_cancel_kills_grandchildren)
{
	/* The shell ignores SIGTERM: the grace period ends with a kill of the tree. */
	RUN("cancel-1", 2, 0, "sh", "-c",
	    "trap '' TERM; sleep 1000 & (trap '' TERM; sleep 1000) & echo started; wait; wait");
	struct h_task *t = h_task(&H, "cancel-1");
	for (int i = 0; i < 100 && !t->out; i++)
		orch_loop_run_once(H.loop, 100);
	ck_assert_int_eq(h_cancel(&H, "cancel-1", 300), 0);
	t = h_wait_exit(&H, "cancel-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_CANCELLED);
	ck_assert(h_uid_gone(H_UID_BASE + 2, 5000));
}
END_TEST

START_TEST(test_file_ownership)
{
	RUN("own-1", 1, 0, "sh", "-c", "echo x > /workspace/f && mkdir /workspace/d && id -u");
	struct h_task *t = h_wait_exit(&H, "own-1", 20000);
	ck_assert_int_eq(t->exit_code, 0);
	char want[16];
	snprintf(want, sizeof(want), "%d\n", H_UID_BASE + 1);
	ck_assert_str_eq(t->out, want);
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof(path), "%s/agent-1/f", H.root);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, H_UID_BASE + 1);
	ck_assert_uint_eq(st.st_gid, H_UID_BASE + 1);
	snprintf(path, sizeof(path), "%s/agent-1/d", H.root);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, H_UID_BASE + 1);
	snprintf(path, sizeof(path), "%s/agent-1", H.root);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_uid, H_UID_BASE + 1);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
}
END_TEST

START_TEST(test_transcript)
{
	RUN("tr-1", 0, 0, "sh", "-c", "echo one; echo two >&2");
	h_wait_exit(&H, "tr-1", 20000);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/agent-0/transcript.jsonl", H.root);
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	char line[4096];
	int n = 0, start = 0, exit_ = 0;
	while (fgets(line, sizeof(line), f)) {
		json_error_t jerr;
		json_t *o = json_loads(line, 0, &jerr);
		ck_assert_msg(o, "bad transcript line: %s", line);
		const char *ev = json_string_value(json_object_get(o, "event"));
		ck_assert_ptr_nonnull(ev);
		start += !strcmp(ev, "start");
		exit_ += !strcmp(ev, "exit");
		json_decref(o);
		n++;
	}
	fclose(f);
	ck_assert_int_eq(start, 1);
	ck_assert_int_eq(exit_, 1);
	ck_assert_int_ge(n, 3);
}
END_TEST

START_TEST(test_env_and_cwd)
{
	json_t *p = json_pack("{s:s, s:i, s:[s,s,s], s:{s:s}, s:s}", "task", "env-1", "slot", 0,
			      "argv", "sh", "-c", "echo $FOO $ORCH_TASK $HOME; pwd", "env", "FOO",
			      "bar", "cwd", "/tmp");
	struct h_task *t = h_task(&H, "env-1");
	ck_assert_int_eq(orch_rpc_call(H.rpc, "task.run", p, 10000, NULL, NULL), 0);
	t = h_wait_exit(&H, "env-1", 20000);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_str_eq(t->out, "bar env-1 /workspace\n/tmp\n");
}
END_TEST

/* task.run ro_paths: a host directory appears read-only at its own path in the jail; one
 * that would expose the workspace root fails the task with the reason, and the slot
 * serves the next task. */
START_TEST(test_ro_paths)
{
	char dir[] = "/tmp/orch-ro-XXXXXX", file[64], script[256];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(file, sizeof(file), "%s/f", dir);
	FILE *f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fputs("hello-ro\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(file, 0644), 0);
	snprintf(script, sizeof(script),
		 "cat %s; touch %s/new 2>/dev/null && echo WROTE || echo READ-ONLY", file, dir);
	json_t *p = json_pack("{s:s, s:i, s:[s,s,s], s:[s,s]}", "task", "ro-1", "slot", 1, "argv",
			      "sh", "-c", script, "ro_paths", dir, "/nonexistent-orch-ro");
	ck_assert_int_eq(orch_rpc_call(H.rpc, "task.run", p, 10000, NULL, NULL), 0);
	struct h_task *t = h_wait_exit(&H, "ro-1", 20000);
	ck_assert_msg(t->status == ORCH_EXIT_EXITED && t->exit_code == 0, "%s / %s", t->reason,
		      t->err ? t->err : "");
	ck_assert_str_eq(t->out, "hello-ro\nREAD-ONLY\n");

	p = json_pack("{s:s, s:i, s:[s], s:[s]}", "task", "ro-2", "slot", 1, "argv", "true",
		      "ro_paths", H.root);
	ck_assert_int_eq(orch_rpc_call(H.rpc, "task.run", p, 10000, NULL, NULL), 0);
	t = h_wait_exit(&H, "ro-2", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_FAILED);
	ck_assert_msg(strstr(t->reason, "must not see"), "%s", t->reason);
	t = h_run(&H, "ro-3", 1, (const char *[]){"true", NULL}, 0, NULL);
	t = h_wait_exit(&H, "ro-3", 20000);
	ck_assert_int_eq(t->exit_code, 0);
	unlink(file);
	rmdir(dir);
}
END_TEST

/* line ends with dir + ["." digits] + leaf */
static bool in_cgroup(const char *line, const char *dir, const char *leaf)
{
	const char *p = strstr(line, dir);
	if (!p)
		return false;
	p += strlen(dir);
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return strcmp(p, leaf) == 0;
}

START_TEST(test_cgroup_membership)
{
	/* The jail is in the slot's own cgroup (v2 when there is a v2 tree). */
	json_t *v2 = json_object_get(
		json_object_get(json_object_get(H.hello, "capabilities"), "cgroup_detail"), "v2");
	struct h_task *t = RUN("cg-1", 2, 0, "sleep", "30");
	ck_assert_ptr_nonnull(t->result);
	int pid = (int)json_integer_value(json_object_get(t->result, "pid"));
	ck_assert_int_gt(pid, 0);
	char path[64], line[512], want[96];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	/* <name>, or <name>.N when <name> existed (cgroup.c never adopts a directory) */
	snprintf(want, sizeof(want), "/%s", h_cgroup_name(NULL));
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0)
			found = in_cgroup(line, want, "/agent-2\n");
	fclose(f);
	if (json_is_true(v2))
		ck_assert_msg(found, "bwrap is not in the slot's v2 cgroup");
	ck_assert_int_eq(h_cancel(&H, "cg-1", 0), 0);
	t = h_wait_exit(&H, "cg-1", 20000);
	ck_assert_int_eq(t->status, ORCH_EXIT_CANCELLED);
}
END_TEST

START_TEST(test_llm_endpoint)
{
	/* The in-jail LLM endpoint listens on the agent's own loopback. */
	json_t *llm = json_object_get(json_object_get(H.hello, "capabilities"), "llm");
	ck_assert_msg(json_is_string(llm), "hello offers no LLM endpoint: %s",
		      json_dumps(json_object_get(H.hello, "capabilities"), 0));
	char probe[PATH_MAX];
	snprintf(probe, sizeof(probe), "%s/tests/guest/orch-escape-probe", h_builddir());
	RUN("llm-1", 1, 0, probe, "connect", "127.0.0.1", "4000");
	struct h_task *t = h_wait_exit(&H, "llm-1", 20000);
	ck_assert_msg(t->out && strstr(t->out, "ESCAPED connect"), "cannot reach :4000: %s",
		      t->out ? t->out : "");
	RUN("llm-2", 1, 0, "sh", "-c", "echo $ANTHROPIC_BASE_URL");
	t = h_wait_exit(&H, "llm-2", 20000);
	ck_assert_str_eq(t->out, "http://127.0.0.1:4000\n");
}
END_TEST

static bool heartbeats(struct host *h, void *arg)
{
	return h->heartbeats >= 2;
}

START_TEST(test_heartbeat)
{
	ck_assert(h_wait(&H, heartbeats, NULL, 5000));
}
END_TEST

/* A snapshot template's supervisor runs no task: whatever it did would be in every VM
 * restored from the snapshot. */
START_TEST(test_template_runs_no_task)
{
	h_stop(&H);
	h_start(&H, (const char *const[]){"--template", NULL});
	struct h_task *t = RUN("tmpl-1", 0, 0, "true");
	ck_assert_ptr_null(t->result);
	ck_assert_int_eq(t->run_err.code, ORCH_RPC_CONFLICT);
	ck_assert_msg(strstr(t->run_err.msg, "snapshot template"), "%s", t->run_err.msg);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("guest-supervisor");
	TCase *tc = tcase_create("tasks");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_hello);
	tcase_add_test(tc, test_success);
	tcase_add_test(tc, test_limits_reported);
	tcase_add_test(tc, test_rlimits);
	tcase_add_test(tc, test_failure);
	tcase_add_test(tc, test_order);
	tcase_add_test(tc, test_large_output);
	tcase_add_test(tc, test_backpressure);
	tcase_add_test(tc, test_signal);
	tcase_add_test(tc, test_missing_program);
	tcase_add_test(tc, test_jail_fails);
	tcase_add_test(tc, test_busy_and_duplicate);
	tcase_add_test(tc, test_timeout_kills_grandchildren);
	tcase_add_test(tc, test_cancel_kills_grandchildren);
	tcase_add_test(tc, test_slot_reuse_after_kill);
	tcase_add_test(tc, test_file_ownership);
	tcase_add_test(tc, test_transcript);
	tcase_add_test(tc, test_env_and_cwd);
	tcase_add_test(tc, test_ro_paths);
	tcase_add_test(tc, test_heartbeat);
	tcase_add_test(tc, test_cgroup_membership);
	tcase_add_test(tc, test_llm_endpoint);
	tcase_add_test(tc, test_template_runs_no_task);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return h_run_suite(suite(), true);
}
