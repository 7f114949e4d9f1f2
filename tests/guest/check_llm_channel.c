/* SPDX-License-Identifier: Apache-2.0 */
/* orch-supervisor with --llm-connect: llm.* travel on a channel of their own. A jailed
 * curl streams an LLM answer whose host side is held in the middle of a line (a long
 * llm.chunk in flight); meanwhile task.run, its output and exit, and heartbeats go through
 * the main channel, and an llm.chunk sent on the main channel is ignored. The stream then
 * completes in order. When the LLM channel drops, the supervisor dials it again. The
 * slot's endpoint process is unprivileged and, killed mid-answer, replaced. Ordering and
 * arrival are asserted, never timing. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>

#include "harness.h"
#include "transport.h"

#define CHUNK 16384
#define BATCH_A 24 /* chunks before the line held half-written */
#define TOTAL 40   /* chunks in all */

struct llm_host {
	int listen_fd;
	int fd; /* the supervisor's LLM connection, -1 when none */
	struct orch_io *io;
	char dir[64];
	char addr[128];
	char buf[1 << 16];
	size_t len;
	json_t *request; /* the last llm.request seen */
	int requests, accepted;
	int cancels;
	char cancelled[ORCH_MAX_ID_LEN + 1]; /* the req of the last llm.cancel seen */
	bool eof;
};

static void on_llm_read(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
			void *data)
{
	struct llm_host *l = data;
	for (;;) {
		ssize_t n = read(fd, l->buf + l->len, sizeof(l->buf) - 1 - l->len);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			l->eof = true;
			orch_io_free(io);
			l->io = NULL;
			return;
		}
		l->len += (size_t)n;
		char *nl;
		while ((nl = memchr(l->buf, '\n', l->len))) {
			json_t *m = json_loadb(l->buf, (size_t)(nl - l->buf), 0, NULL);
			ck_assert_msg(m, "the supervisor sent bad JSON on the LLM channel");
			const char *method = json_string_value(json_object_get(m, "method"));
			if (method && !strcmp(method, "llm.request")) {
				json_decref(l->request);
				l->request = json_incref(m);
				l->requests++;
			}
			if (method && !strcmp(method, "llm.cancel")) {
				const char *r = json_string_value(
					json_object_get(json_object_get(m, "params"), "req"));
				snprintf(l->cancelled, sizeof(l->cancelled), "%s", r ? r : "");
				l->cancels++;
			}
			json_decref(m);
			l->len -= (size_t)(nl + 1 - l->buf);
			memmove(l->buf, nl + 1, l->len);
		}
		ck_assert_uint_lt(l->len, sizeof(l->buf) - 1);
	}
}

static bool accepted(struct host *h, void *arg)
{
	struct llm_host *l = arg;
	if (l->fd >= 0)
		return true;
	int fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return false;
	l->fd = fd;
	l->eof = false;
	l->len = 0;
	l->accepted++;
	ck_assert_int_eq(orch_io_add(h->loop, fd, EPOLLIN, on_llm_read, l, &l->io), 0);
	return true;
}

static void llm_host_listen(struct llm_host *l)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	snprintf(l->dir, sizeof(l->dir), "/tmp/orch-llmch-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(l->dir));
	snprintf(l->addr, sizeof(l->addr), "unix:%s/llm.sock", l->dir);
	struct orch_addr a;
	struct orch_error err = {0};
	ck_assert_int_eq(orch_addr_parse(l->addr, &a, &err), 0);
	l->listen_fd = orch_transport_listen(&a, 0600, &err);
	ck_assert_msg(l->listen_fd >= 0, "listen: %s", err.msg);
}

static void llm_host_drop(struct llm_host *l)
{
	orch_io_free(l->io);
	l->io = NULL;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static void llm_host_done(struct llm_host *l)
{
	llm_host_drop(l);
	close(l->listen_fd);
	json_decref(l->request);
	char p[128];
	snprintf(p, sizeof(p), "%s/llm.sock", l->dir);
	unlink(p);
	rmdir(l->dir);
}

static void write_all(int fd, const char *s, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, s + off, len - off);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {fd, POLLOUT, 0};
			ck_assert_int_eq(poll(&p, 1, 10000), 1);
			continue;
		}
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
}

/* One JSON-RPC message as a line, returned (malloc'd) for the caller to write. */
static char *line_of(json_t *msg_new)
{
	char *s = json_dumps(msg_new, JSON_COMPACT);
	json_decref(msg_new);
	ck_assert_ptr_nonnull(s);
	size_t n = strlen(s);
	s = realloc(s, n + 2);
	s[n] = '\n';
	s[n + 1] = 0;
	return s;
}

static char *chunk_line(const char *req, int64_t seq, const void *data, size_t len)
{
	return line_of(json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", "llm.chunk",
				 "params", orch_llm_chunk_build(req, seq, data, len)));
}

static void send_chunk(struct llm_host *l, const char *req, int64_t seq, const void *data,
		       size_t len)
{
	char *s = chunk_line(req, seq, data, len);
	write_all(l->fd, s, strlen(s));
	free(s);
}

static bool have_request(struct host *h, void *arg)
{
	struct llm_host *l = arg;
	return l->requests > 0 || h->closed;
}

struct out_want {
	const char *task;
	size_t len;
};

static bool output_reached(struct host *h, void *arg)
{
	struct out_want *w = arg;
	struct h_task *t = h_task(h, w->task);
	return t->out_len >= w->len || t->exited || h->closed;
}

static bool heartbeats_reached(struct host *h, void *arg)
{
	return h->heartbeats >= *(int *)arg || h->closed;
}

static void chunk_data(char *buf, int64_t seq)
{
	memset(buf, 'A' + (int)(seq % 26), CHUNK);
	buf[CHUNK - 1] = '\n';
}

static void start_with_llm_channel(struct host *h, struct llm_host *l)
{
	llm_host_listen(l);
	const char *extra[] = {"--llm-connect", l->addr, NULL};
	h_start(h, extra);
	json_t *caps = json_object_get(h->hello, "capabilities");
	ck_assert_str_eq(json_string_value(json_object_get(caps, "llm_channel")), "separate");
	ck_assert_msg(h_wait(h, accepted, l, 10000), "the supervisor did not dial its LLM channel");
}

static const char *const curl_argv[] = {"curl",
					"-sS",
					"-N",
					"-X",
					"POST",
					"-H",
					"content-type: application/json",
					"-d",
					"{}",
					"http://127.0.0.1:4000/v1/messages",
					NULL};

/* The request's JSON-RPC id and req, after checking what the supervisor sent. */
static json_t *take_request(struct host *h, struct llm_host *l, int64_t slot, const char **req)
{
	ck_assert_msg(h_wait(h, have_request, l, 15000), "no llm.request on the LLM channel");
	json_t *m = l->request;
	json_t *p = json_object_get(m, "params");
	ck_assert_int_eq(json_integer_value(json_object_get(p, "slot")), slot);
	ck_assert_str_eq(json_string_value(json_object_get(p, "method")), "POST");
	ck_assert_str_eq(json_string_value(json_object_get(p, "path")), "/v1/messages");
	*req = json_string_value(json_object_get(p, "req"));
	ck_assert_ptr_nonnull(*req);
	return json_object_get(m, "id");
}

static void send_result(struct llm_host *l, json_t *id)
{
	char *s = line_of(json_pack("{s:s, s:O, s:{s:i, s:{s:s}}}", "jsonrpc", "2.0", "id", id,
				    "result", "status", 200, "headers", "content-type",
				    "text/event-stream"));
	write_all(l->fd, s, strlen(s));
	free(s);
}

static void send_done(struct llm_host *l, const char *req)
{
	char *s = line_of(json_pack("{s:s, s:s, s:{s:s}}", "jsonrpc", "2.0", "method", "llm.done",
				    "params", "req", req));
	write_all(l->fd, s, strlen(s));
	free(s);
}

START_TEST(test_stream_does_not_delay_main)
{
	struct host H;
	struct llm_host L;
	static char data[CHUNK];
	start_with_llm_channel(&H, &L);

	struct h_task *t0 = h_run(&H, "stream", 0, curl_argv, 60000, NULL);
	ck_assert_msg(t0->result, "task.run: %s", t0->run_err.msg);
	const char *req;
	json_t *id = take_request(&H, &L, 0, &req);
	char req_copy[ORCH_MAX_ID_LEN + 1];
	snprintf(req_copy, sizeof(req_copy), "%s", req);

	/* The answer's head and a first batch of chunks, then one chunk's line cut in the
	 * middle: the LLM channel has a long message in flight. */
	send_result(&L, id);
	for (int64_t seq = 0; seq < BATCH_A; seq++) {
		chunk_data(data, seq);
		send_chunk(&L, req_copy, seq, data, CHUNK);
	}
	chunk_data(data, BATCH_A);
	char *held = chunk_line(req_copy, BATCH_A, data, CHUNK);
	size_t held_len = strlen(held), half = held_len / 2;
	write_all(L.fd, held, half);

	/* The first batch reaches the agent... */
	struct out_want w = {"stream", (size_t)BATCH_A * CHUNK};
	ck_assert_msg(h_wait(&H, output_reached, &w, 30000), "the first chunks did not arrive");
	ck_assert_uint_eq(t0->out_len, (size_t)BATCH_A * CHUNK);
	ck_assert(!t0->exited);

	/* ... and while the rest is held, the main channel works: an llm.chunk sent there is
	 * not for it (ignored: were it taken, the real chunk of that seq would be a duplicate
	 * and cut the stream), a task runs to its end, heartbeats keep coming. */
	const char bogus[] = "BOGUS-ON-THE-MAIN-CHANNEL";
	ck_assert_int_eq(
		orch_rpc_notify(H.rpc, "llm.chunk",
				orch_llm_chunk_build(req_copy, BATCH_A, bogus, sizeof(bogus) - 1)),
		0);
	const char *const echo_argv[] = {"echo", "main channel", NULL};
	struct h_task *t1 = h_run(&H, "control", 1, echo_argv, 0, NULL);
	ck_assert_msg(t1->result, "task.run during the stream: %s", t1->run_err.msg);
	t1 = h_wait_exit(&H, "control", 15000);
	ck_assert_int_eq(t1->status, ORCH_EXIT_EXITED);
	ck_assert_int_eq(t1->exit_code, 0);
	ck_assert_str_eq(t1->out, "main channel\n");
	int hb = H.heartbeats + 2;
	ck_assert_msg(h_wait(&H, heartbeats_reached, &hb, 10000),
		      "no heartbeats during the stream");
	t0 = h_task(&H, "stream");
	ck_assert_msg(!t0->exited, "the stream ended while its chunk was held");
	ck_assert_uint_eq(t0->out_len, (size_t)BATCH_A * CHUNK);

	/* The rest of the held line, the remaining chunks and llm.done. */
	write_all(L.fd, held + half, held_len - half);
	free(held);
	for (int64_t seq = BATCH_A + 1; seq < TOTAL; seq++) {
		chunk_data(data, seq);
		send_chunk(&L, req_copy, seq, data, CHUNK);
	}
	send_done(&L, req_copy);
	t0 = h_wait_exit(&H, "stream", 30000);
	ck_assert_int_eq(t0->status, ORCH_EXIT_EXITED);
	ck_assert_msg(t0->exit_code == 0, "curl exited %lld: %s", (long long)t0->exit_code,
		      t0->err ? t0->err : "");
	ck_assert_uint_eq(t0->out_len, (size_t)TOTAL * CHUNK);
	for (int64_t seq = 0; seq < TOTAL; seq++) {
		chunk_data(data, seq);
		ck_assert_msg(!memcmp(t0->out + seq * CHUNK, data, CHUNK),
			      "chunk %lld out of order", (long long)seq);
	}
	ck_assert_ptr_null(strstr(t0->out, "BOGUS"));
	ck_assert_int_eq(L.requests, 1);

	llm_host_done(&L); /* first: its io belongs to H's loop, which h_stop frees */
	h_stop(&H);
}
END_TEST

static bool llm_eof(struct host *h, void *arg)
{
	return ((struct llm_host *)arg)->eof;
}

START_TEST(test_llm_channel_redialled)
{
	struct host H;
	struct llm_host L;
	static const char answer[] = "{\"answer\":\"after the redial\"}";
	start_with_llm_channel(&H, &L);

	/* The host drops the LLM channel: the supervisor dials it again (backoff), the main
	 * channel is untouched. */
	llm_host_drop(&L);
	ck_assert_msg(h_wait(&H, accepted, &L, 15000), "the LLM channel was not dialled again");
	ck_assert_int_eq(L.accepted, 2);
	ck_assert(!H.closed);

	struct h_task *t = h_run(&H, "after", 2, curl_argv, 60000, NULL);
	ck_assert_msg(t->result, "task.run: %s", t->run_err.msg);
	const char *req;
	json_t *id = take_request(&H, &L, 2, &req);
	send_result(&L, id);
	send_chunk(&L, req, 0, answer, sizeof(answer) - 1);
	send_done(&L, req);
	t = h_wait_exit(&H, "after", 30000);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_str_eq(t->out, answer);

	/* On the supervisor's exit the LLM channel closes too. */
	kill(H.pid, SIGTERM);
	ck_assert_msg(h_wait(&H, llm_eof, &L, 15000), "the LLM channel outlived the supervisor");
	llm_host_done(&L); /* first: its io belongs to H's loop, which h_stop frees */
	h_stop(&H);
}
END_TEST

/* The endpoint process of slot, a child of the supervisor named orch-llm-<slot>. */
static pid_t endpoint_pid(struct host *h, int slot)
{
	char want[32], path[64], buf[512];
	snprintf(want, sizeof(want), "(orch-llm-%d)", slot);
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	while (d && !found && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		char *close_paren = strrchr(buf, ')');
		int ppid = 0;
		if (strstr(buf, want) && close_paren &&
		    sscanf(close_paren + 2, "%*c %d", &ppid) == 1 && ppid == h->pid)
			found = pid;
	}
	if (d)
		closedir(d);
	return found;
}

static char *read_text(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	return buf;
}

static bool cancelled(struct host *h, void *arg)
{
	return ((struct llm_host *)arg)->cancels > 0 || h->closed;
}

/* The real supervisor's endpoint process: its uid (uid_base + 64 + slot), no privileges,
 * the slot's network namespace; killed in the middle of an answer, that request ends with
 * an error and is cancelled on the host, and the next one is served by a new process. */
START_TEST(test_endpoint_process)
{
	struct host H;
	struct llm_host L;
	static const char part[] = "{\"partial\":";
	static const char answer[] = "{\"answer\":\"from a new endpoint process\"}";
	start_with_llm_channel(&H, &L);

	struct h_task *t = h_run(&H, "cut", 1, curl_argv, 60000, NULL);
	ck_assert_msg(t->result, "task.run: %s", t->run_err.msg);
	const char *req;
	json_t *id = take_request(&H, &L, 1, &req);
	char req_copy[ORCH_MAX_ID_LEN + 1];
	snprintf(req_copy, sizeof(req_copy), "%s", req);
	send_result(&L, id);
	send_chunk(&L, req_copy, 0, part, sizeof(part) - 1);
	struct out_want w = {"cut", sizeof(part) - 1};
	ck_assert_msg(h_wait(&H, output_reached, &w, 30000), "the first chunk did not arrive");

	pid_t pid = endpoint_pid(&H, 1);
	ck_assert_msg(pid > 0, "no endpoint process for slot 1");
	char path[64], want[96];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	const char *st = read_text(path);
	unsigned uid = (unsigned)H_UID_BASE + 64 + 1;
	snprintf(want, sizeof(want), "Uid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
	ck_assert_msg(strstr(st, want), "endpoint process: want uid %u in\n%s", uid, st);
	snprintf(want, sizeof(want), "Gid:\t%u\t%u\t%u\t%u\n", uid, uid, uid, uid);
	ck_assert_msg(strstr(st, want), "endpoint process: want gid %u", uid);
	ck_assert(strstr(st, "CapEff:\t0000000000000000") &&
		  strstr(st, "CapPrm:\t0000000000000000") &&
		  strstr(st, "CapBnd:\t0000000000000000"));
	ck_assert(strstr(st, "NoNewPrivs:\t1") && strstr(st, "Seccomp:\t2"));
	char own[64], its[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)H.pid);
	ssize_t a = readlink(path, own, sizeof(own) - 1);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	ssize_t b = readlink(path, its, sizeof(its) - 1);
	ck_assert(a > 0 && b > 0);
	own[a] = its[b] = 0;
	ck_assert_msg(strcmp(own, its) != 0, "the endpoint process is in the supervisor's netns");

	/* Killed mid-answer: curl fails, the host is told, the supervisor lives on. */
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	t = h_wait_exit(&H, "cut", 30000);
	ck_assert_int_eq(t->status, ORCH_EXIT_EXITED);
	ck_assert_msg(t->exit_code != 0, "curl did not notice the cut answer");
	ck_assert_msg(h_wait(&H, cancelled, &L, 15000), "no llm.cancel for the cut request");
	ck_assert_str_eq(L.cancelled, req_copy);
	ck_assert(!H.closed);

	/* The next request: a new endpoint process. */
	L.requests = 0;
	t = h_run(&H, "next", 1, curl_argv, 60000, NULL);
	ck_assert_msg(t->result, "task.run: %s", t->run_err.msg);
	id = take_request(&H, &L, 1, &req);
	snprintf(req_copy, sizeof(req_copy), "%s", req);
	send_result(&L, id);
	send_chunk(&L, req_copy, 0, answer, sizeof(answer) - 1);
	send_done(&L, req_copy);
	t = h_wait_exit(&H, "next", 30000);
	ck_assert_int_eq(t->exit_code, 0);
	ck_assert_str_eq(t->out, answer);
	pid_t pid2 = endpoint_pid(&H, 1);
	ck_assert_msg(pid2 > 0 && pid2 != pid, "not a new endpoint process (%d, was %d)", pid2,
		      pid);

	llm_host_done(&L);
	h_stop(&H);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("guest-llm-channel");
	TCase *tc = tcase_create("llm-channel");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_stream_does_not_delay_main);
	tcase_add_test(tc, test_llm_channel_redialled);
	tcase_add_test(tc, test_endpoint_process);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (access("/usr/bin/curl", X_OK) != 0) {
		fprintf(stderr, "SKIP: /usr/bin/curl is not installed (the jailed LLM client)\n");
		return 77;
	}
	return h_run_suite(suite(), false);
}
