/* SPDX-License-Identifier: Apache-2.0 */
/* The host's LLM channel under backpressure: llm_serve + llm_proxy on an orch_rpc with a
 * small outgoing queue, whose guest end (a raw socket here) does not read for a while. A
 * long stream must pause its upstream transfer instead of losing bytes: every chunk
 * arrives in order, llm.done reports success and the ledger settles the real usage.
 *   test-llm-serve <llm-fake-upstream> */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sqlite3.h>

#include "cleanup.h"
#include "schema.h"
#include "llm-ledger.h"
#include "llm-serve.h"
#include "llm-test-util.h"

static const char *fake_path;
static unsigned fake_port;
static char tmpdir[64], keypath[128];

static const struct orch_rpc_method methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, 0, llm_serve_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, 0, llm_serve_on_cancel},
};

struct guest {
	int fd;
	char *in;
	size_t in_len;
	int status;
	int64_t next_seq;
	bool seq_ok, done;
	int64_t done_code;
	char *body;
	size_t body_len;
};

static void handle_line(struct guest *g, const char *line, size_t len)
{
	_cleanup_json_ json_t *j = json_loadb(line, len, 0, NULL);
	json_t *params = json_object_get(j, "params");
	const char *method = json_string_value(json_object_get(j, "method"));

	ck_assert_ptr_nonnull(j);
	if (!method) {
		struct orch_llm_response r;
		ck_assert_int_eq(orch_llm_response_parse(json_object_get(j, "result"), &r, NULL),
				 0);
		g->status = (int)r.status;
	} else if (strcmp(method, "llm.chunk") == 0) {
		struct orch_llm_chunk c;
		ck_assert_int_eq(orch_llm_chunk_parse(params, &c, NULL), 0);
		if (c.seq != g->next_seq)
			g->seq_ok = false;
		g->next_seq++;
		g->body = realloc(g->body, g->body_len + c.len + 1);
		memcpy(g->body + g->body_len, c.data, c.len);
		g->body_len += c.len;
		g->body[g->body_len] = '\0';
		orch_llm_chunk_done(&c);
	} else if (strcmp(method, "llm.done") == 0) {
		struct orch_llm_done d;
		ck_assert_int_eq(orch_llm_done_parse(params, &d, NULL), 0);
		g->done = true;
		g->done_code = d.error_code;
	}
}

static void on_guest(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t ev, void *data)
{
	struct guest *g = data;
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		char *nl;
		g->in = realloc(g->in, g->in_len + (size_t)n);
		memcpy(g->in + g->in_len, buf, (size_t)n);
		g->in_len += (size_t)n;
		while ((nl = memchr(g->in, '\n', g->in_len))) {
			size_t l = (size_t)(nl - g->in);
			handle_line(g, g->in, l);
			memmove(g->in, nl + 1, g->in_len - l - 1);
			g->in_len -= l + 1;
		}
	}
	if (g->done)
		orch_loop_quit(loop);
}

static void on_start_reading(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	orch_loop_quit(loop);
}

START_TEST(test_backpressure)
{
	struct orch_loop *loop;
	sqlite3 *db;
	struct llm_config cfg;
	struct llm_proxy *proxy;
	struct orch_rpc *rpc;
	struct llm_serve *serve;
	struct orch_io *io = NULL;
	struct orch_timer *t = NULL;
	struct orch_error err = {0};
	struct orch_rpc_opts opts = {.max_line = ORCH_PROTOCOL_MAX_LINE, .max_queued = 64 * 1024};
	struct guest g = {.seq_ok = true};
	int sv[2], small = 4096, deltas = 0;
	char url[64];
	const char *body = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":8000,\"stream\":true,"
			   "\"metadata\":{\"user_id\":\"fake:events=3000\"},\"messages\":[]}";
	_cleanup_json_ json_t *headers = json_pack("{s:s}", "anthropic-version", "2023-06-01");
	struct orch_llm_request req = {
		.req = "s2-1",
		.slot = 2,
		.method = "POST",
		.path = "/v1/messages",
		.headers = headers,
		.body_len = strlen(body),
		.body = (unsigned char *)body,
	};
	json_t *msg;
	char *line;
	sqlite3_stmt *q;

	ck_assert_int_eq(orch_loop_new(&loop), 0);
	ck_assert_int_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	ck_assert_int_eq(llm_ledger_migrate(db, &err), 0);
	ck_assert_int_eq(llm_config_init(&cfg), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", fake_port);
	ck_assert_int_eq(llm_config_add_upstream(&cfg, "a", LLM_API_ANTHROPIC, url, keypath, &err),
			 0);
	ck_assert_int_eq(llm_config_add_model(&cfg, "claude-sonnet-4-5", "a", 3, 15, &err), 0);
	ck_assert_int_eq(llm_config_load_keys(&cfg, &err), 0);
	ck_assert_int_eq(llm_proxy_new(loop, db, &cfg, &proxy, &err), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	ck_assert_int_eq(orch_rpc_new(loop, sv[0], methods, ELEMENTSOF(methods), &opts, NULL, &rpc),
			 0);
	ck_assert_int_eq(llm_serve_new(proxy, rpc, "vm", NULL, NULL, &serve), 0);
	orch_rpc_set_data(rpc, serve);

	msg = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", "llm.request",
			"params", orch_llm_request_build(&req));
	line = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	ck_assert_int_eq(write(sv[1], line, strlen(line)), (ssize_t)strlen(line));
	ck_assert_int_eq(write(sv[1], "\n", 1), 1);
	free(line);

	/* The guest does not read for a second: the host must hold, not drop. */
	ck_assert_int_eq(orch_timer_add(loop, 1000, 0, on_start_reading, NULL, &t), 0);
	ck_assert_int_eq(orch_loop_run(loop), 0);
	ck_assert_int_le(orch_rpc_queued(rpc), 64 * 1024);
	ck_assert_int_eq(llm_proxy_inflight(proxy), 1);
	ck_assert_int_eq(orch_io_add(loop, sv[1], EPOLLIN, on_guest, &g, &io), 0);
	orch_timer_rearm(t, 30000);
	ck_assert_int_eq(orch_loop_run(loop), 0);

	ck_assert(g.done);
	ck_assert_int_eq(g.done_code, 0);
	ck_assert_int_eq(g.status, 200);
	ck_assert(g.seq_ok);
	for (char *p = g.body; (p = strstr(p, "event: content_block_delta")); p++)
		deltas++;
	ck_assert_int_eq(deltas, 3000);
	ck_assert_ptr_nonnull(strstr(g.body, "event: message_stop"));
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT outcome, output_tokens FROM llm_spend WHERE "
					    "agent = 'vm/2'",
					    -1, &q, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok");
	ck_assert_int_eq(sqlite3_column_int(q, 1), 6000);
	sqlite3_finalize(q);

	orch_io_free(io);
	orch_timer_free(t);
	llm_serve_free(serve);
	orch_rpc_close(rpc);
	orch_rpc_unref(rpc);
	close(sv[1]);
	llm_proxy_free(proxy);
	llm_config_done(&cfg);
	sqlite3_close(db);
	orch_loop_free(loop);
	free(g.in);
	free(g.body);
}
END_TEST

int main(int argc, char **argv)
{
	const char *args[] = {"--key", LLM_TEST_KEY, NULL};
	Suite *s;
	TCase *tc;
	SRunner *sr;
	pid_t pid = 0;
	int failed;

	if (argc < 2) {
		fprintf(stderr, "usage: %s <llm-fake-upstream>\n", argv[0]);
		return 2;
	}
	fake_path = argv[1];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/orch-llm-serve-XXXXXX");
	if (!mkdtemp(tmpdir) || llm_test_write_key(tmpdir, keypath, sizeof(keypath)) < 0)
		return 1;
	if (llm_test_spawn_fake(fake_path, args, &pid, &fake_port) < 0)
		return 1;
	s = suite_create("llm_serve");
	tc = tcase_create("serve");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_backpressure);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	llm_test_stop(pid);
	llm_test_rmtree(tmpdir);
	return failed ? 1 : 0;
}
