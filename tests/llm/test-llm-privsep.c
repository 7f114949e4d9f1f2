/* SPDX-License-Identifier: Apache-2.0 */
/* The privilege separation of the in-jail LLM endpoints (guest/llm/llm-endpoint.h), with
 * the host proxy behind them (llm-test-stack.h) and the fake upstream:
 *   - slot 3's endpoint process runs as its own uid, without groups, capabilities or a
 *     way to gain any, under seccomp, in an empty removed root directory, not dumpable;
 *   - killing it mid-request ends that request with an error (the host call is
 *     cancelled) and the next request works, served by a new process;
 *   - slot 4's endpoint process is a hostile double (llm-endpoint-double.c): what it
 *     says about slot and task is overridden (its call is billed to slot 4, without a
 *     task), its llm.cancel of other slots' ids reaches nobody, and a malformed message,
 *     a flood of requests or an over-long line gets it killed and restarted on the next
 *     connection, while slot 3 keeps its process and serves on.
 *   test-llm-privsep <llm-fake-upstream> <llm-endpoint-double>
 * Exits 77 (skip) without curl. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "cleanup.h"
#include "llm-test-stack.h"
#include "llm-test-util.h"

#define MSG(extra)                                                                              \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":300,\"messages\":[{\"role\":\"user\"," \
	"\"content\":\"hi\"}]" extra "}"

static struct llm_stack st;
static int failures;
static int efd = -1;
static const char *double_path;

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, ok ? "ok   " : "FAIL ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	if (!ok)
		failures++;
}

static char *curl(unsigned port, const char *body)
{
	char url[96];
	const char *argv[] = {"curl",
			      "-sS",
			      "-i",
			      "--max-time",
			      "20",
			      "-H",
			      "anthropic-version: 2023-06-01",
			      "--data-binary",
			      body,
			      url,
			      NULL};
	char *out = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/messages", port);
	llm_test_run(argv, NULL, &out);
	return out;
}

/* A 5-second stream on slot 3, running in the background until stream_end(). */
static pid_t bg_pid = -1;
static int bg_out = -1;

static void stream_start(void)
{
	char url[96];
	int p[2];
	const char *argv[] = {"curl",
			      "-sS",
			      "-N",
			      "--max-time",
			      "30",
			      "-H",
			      "anthropic-version: 2023-06-01",
			      "--data-binary",
			      MSG(",\"stream\":true,\"metadata\":{\"user_id\":"
				  "\"fake:events=500;delay=10\"}"),
			      url,
			      NULL};
	char c;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/messages", st.port);
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	bg_pid = fork();
	if (bg_pid == 0) {
		dup2(p[1], 1);
		execvp("curl", (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	bg_out = p[0];
	if (read(bg_out, &c, 1) != 1) /* the stream is flowing */
		failures++;
}

/* The stream's exit status and whether it arrived complete. */
static int stream_end(bool *ret_complete)
{
	char buf[4096];
	ssize_t n;
	int status = 0;

	/* The last event is message_stop; a read never ends in the middle of it here (the
	 * fake upstream writes each event at once). */
	*ret_complete = false;
	while ((n = read(bg_out, buf, sizeof(buf))) > 0)
		if (memmem(buf, (size_t)n, "message_stop", 12))
			*ret_complete = true;
	close(bg_out);
	waitpid(bg_pid, &status, 0);
	bg_pid = -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* One command to the double on slot 4's port; its answer (or "" when cut). */
static char *tell_double(const char *cmd)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.port2)};
	struct timeval tv = {.tv_sec = 20};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char *out = calloc(1, 65536);
	size_t got = 0;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && dprintf(fd, "%s\n", cmd) > 0)
		while (got < 65535 && (n = read(fd, out + got, 65535 - got)) > 0)
			got += (size_t)n;
	close(fd);
	return out;
}

static bool wait_for(bool (*cond)(void), int seconds)
{
	for (int i = 0; i < seconds * 20; i++) {
		if (cond())
			return true;
		usleep(50000);
	}
	return cond();
}

static bool no_inflight(void)
{
	return llm_proxy_inflight(st.proxy) == 0;
}

static bool slot4_down(void)
{
	return llm_endpoint_pid(st.ep2) == 0;
}

static bool has_line(const char *s, const char *line)
{
	return s && strstr(s, line) != NULL;
}

/* /proc/PID/status and friends of slot 3's endpoint process. */
static void check_process(pid_t pid, uid_t uid)
{
	char path[64], want[96], root[256] = "";
	bool su = geteuid() == 0;
	struct stat sb;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	_cleanup_free_ char *s = llm_test_read_file(path, NULL);
	check(s != NULL, "the endpoint process %d exists", (int)pid);
	snprintf(want, sizeof(want), "Uid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
	check(has_line(s, want), "it runs as uid %u (real, effective, saved, filesystem)", uid);
	snprintf(want, sizeof(want), "Gid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
	check(has_line(s, want), "and gid %u", uid);
	check(uid != 0 && uid != 10000 + LLM_STACK_SLOT, "that uid is neither root nor an agent's");
	check(has_line(s, "CapInh:\t0000000000000000") &&
		      has_line(s, "CapPrm:\t0000000000000000") &&
		      has_line(s, "CapEff:\t0000000000000000") &&
		      has_line(s, "CapAmb:\t0000000000000000"),
	      "no capabilities");
	check(has_line(s, "NoNewPrivs:\t1"), "no_new_privs is set");
	check(has_line(s, "Seccomp:\t2"), "a seccomp filter is installed");
	if (!su) {
		fprintf(stderr,
			"SKIP uid switch, groups, bounding set, root directory: not root\n");
		return;
	}
	check(has_line(s, "Groups:\t \n") || has_line(s, "Groups:\t\n"), "no supplementary groups");
	check(has_line(s, "CapBnd:\t0000000000000000"), "an empty capability bounding set");
	snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
	ssize_t n = readlink(path, root, sizeof(root) - 1);
	root[n > 0 ? n : 0] = 0;
	check(n > 0 && strcmp(root, "/") != 0 && strstr(root, "orch-privsep.") &&
		      strstr(root, "(deleted)"),
	      "its root is an empty directory that no longer exists (%s)", root);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	check(stat(path, &sb) == 0 && sb.st_uid == 0,
	      "it is not dumpable (its /proc files are root's)");
}

static void cases(void)
{
	char *o;
	bool complete;
	int rc;

	/* The first connection starts slot 3's endpoint process. */
	check(llm_endpoint_pid(st.ep) == 0, "no endpoint process before the first connection");
	o = curl(st.port, MSG(""));
	check(has_line(o, "HTTP/1.1 200") && has_line(o, "Hello from the fake upstream."),
	      "slot 3 answers");
	free(o);
	pid_t pid = llm_endpoint_pid(st.ep);
	check(pid > 0, "slot 3's endpoint process runs");
	check_process(pid, geteuid() == 0 ? llm_stack_opts(LLM_STACK_SLOT).uid : getuid());

	/* Killed in the middle of a streamed answer: that request ends with an error, the
	 * host call is cancelled, the next request gets a new process. */
	stream_start();
	kill(pid, SIGKILL);
	rc = stream_end(&complete);
	check(rc != 0 && !complete, "killing the endpoint process cuts its stream (curl exit %d)",
	      rc);
	check(wait_for(no_inflight, 30), "the host call of the cut stream is cancelled");
	o = curl(st.port, MSG(""));
	check(has_line(o, "HTTP/1.1 200"), "the next request is answered");
	free(o);
	pid_t pid2 = llm_endpoint_pid(st.ep);
	check(pid2 > 0 && pid2 != pid, "by a new endpoint process (%d, was %d)", (int)pid2,
	      (int)pid);

	/* Slot 4's endpoint process is the double from here on. */
	llm_bridge_set_helper(st.bridge, double_path);
	o = tell_double("forge 3 t-e2e s3-1");
	check(has_line(o, "status=200") && has_line(o, "Hello from the fake upstream."),
	      "a request claiming slot 3 and its task is answered to the one who sent it\n%s", o);
	free(o);

	/* Its llm.cancel of the ids other slots use reaches nobody. */
	stream_start();
	free(tell_double("cancel s3- 1 200"));
	free(tell_double("cancel r- 1 200"));
	rc = stream_end(&complete);
	check(rc == 0 && complete, "slot 3's stream is untouched by slot 4's cancels (curl %d)",
	      rc);

	/* Misbehaving: killed (and logged), restarted by the next connection. */
	pid_t d = llm_endpoint_pid(st.ep2);
	free(tell_double("raw this is not JSON-RPC"));
	check(d > 0 && wait_for(slot4_down, 10), "a malformed message gets it killed");
	free(tell_double("flood 40"));
	pid_t d2 = llm_endpoint_pid(st.ep2);
	check(wait_for(slot4_down, 10), "more than 32 requests in flight get it killed");
	check(d2 == 0 || d2 != d, "it was a new process");
	free(tell_double("long"));
	check(wait_for(slot4_down, 20), "an over-long line gets it killed");
	check(wait_for(no_inflight, 30), "the requests of the killed processes end on the host");
	llm_bridge_set_helper(st.bridge, NULL);

	check(llm_endpoint_pid(st.ep) == pid2, "slot 3 kept its endpoint process meanwhile");
	o = curl(st.port, MSG(""));
	check(has_line(o, "HTTP/1.1 200"), "and still answers");
	free(o);
}

static void *client_thread(void *arg)
{
	uint64_t one = 1;

	cases();
	if (write(efd, &one, sizeof(one)) < 0)
		failures++;
	return NULL;
}

static void on_clients_done(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t ev,
			    void *data)
{
	orch_loop_quit(loop);
}

static void on_guard(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	check(false, "the test did not finish within its time limit");
	orch_loop_quit(loop);
}

static int count(const char *sql)
{
	sqlite3_stmt *q = NULL;
	int n = -1;

	if (sqlite3_prepare_v2(st.db, sql, -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return n;
}

int main(int argc, char **argv)
{
	struct orch_io *io = NULL;
	struct orch_timer *guard = NULL;
	pthread_t th;
	char *o = NULL;
	const char *curl_v[] = {"curl", "--version", NULL};

	if (argc > 1 && strcmp(argv[1], LLM_HELPER_ARG) == 0)
		llm_helper_main(argc, argv); /* an endpoint process of the stack */
	if (argc < 3) {
		fprintf(stderr, "usage: %s <llm-fake-upstream> <llm-endpoint-double>\n", argv[0]);
		return 2;
	}
	double_path = argv[2];
	if (llm_test_run(curl_v, NULL, &o) != 0) {
		free(o);
		printf("SKIP: no curl binary\n");
		return 77;
	}
	free(o);
	signal(SIGPIPE, SIG_IGN);
	if (llm_stack_start(&st, argv[1], NULL) < 0) {
		fprintf(stderr, "cannot start the LLM stack\n");
		return 1;
	}
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	orch_io_add(st.loop, efd, EPOLLIN, on_clients_done, NULL, &io);
	orch_timer_add(st.loop, 150000, 0, on_guard, NULL, &guard);
	pthread_create(&th, NULL, client_thread, NULL);
	orch_loop_run(st.loop);
	pthread_join(th, NULL);
	while (llm_proxy_inflight(st.proxy) > 0 && failures == 0)
		if (orch_loop_run_once(st.loop, 5000) < 0)
			break;

	/* Who paid: the forged call is slot 4's and its task's, never slot 3's or t-e2e's. */
	check(count("SELECT count(*) FROM llm_spend WHERE agent = 'vm/4' AND model = "
		    "'claude-sonnet-4-5'") == 1,
	      "the double's forged call was billed to the slot of its socketpair (vm/4)");
	check(count("SELECT count(*) FROM llm_spend WHERE agent = 'vm/4' AND task = "
		    "'" LLM_STACK_TASK "-4'") == 1 &&
		      count("SELECT count(*) FROM llm_spend WHERE agent = 'vm/4' AND task = "
			    "'" LLM_STACK_TASK "'") == 0,
	      "to slot 4's task, whatever task it claimed");
	check(count("SELECT count(*) FROM llm_spend WHERE task = '" LLM_STACK_TASK
		    "' AND agent <> 'vm/3'") == 0,
	      "slot 3's task was billed for slot 3's calls only");

	orch_io_free(io);
	orch_timer_free(guard);
	close(efd);
	llm_stack_stop(&st);
	fprintf(stderr, "%s\n", failures ? "FAILED" : "PASSED");
	return failures ? 1 : 0;
}
