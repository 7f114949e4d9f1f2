/* SPDX-License-Identifier: Apache-2.0 */
/* The host's LLM channel: llm_serve + llm_proxy on an orch_rpc whose guest end is a raw
 * socket driven by the test, against the fake upstream.
 *   test-llm-serve <llm-fake-upstream> [case]
 * Cases (one tcase each; all when none is named):
 *   backpressure  the guest end does not read for a second while a long stream runs: the
 *                 upstream transfer pauses instead of losing bytes; every chunk arrives in
 *                 order, llm.done reports success, the ledger settles the real usage.
 *   guest_leaves  the guest closes its channel right after the reply head of a stream; the
 *                 stream ends upstream, then the guest reconnects (a new channel, the old
 *                 serve freed): the call was ended and billed, nothing points at the freed
 *                 exchange (ASan reports the use after free otherwise), the new channel
 *                 serves.
 *   idle_slot     an llm.request for a slot with no task running is refused in the
 *                 provider's shape; nothing is forwarded, reserved or billed.
 *   caps          per-agent and per-VM in-flight caps: stalled streams of one agent and one
 *                 VM up to their caps, the next is refused (429, retry-after), another
 *                 agent of the VM and another VM are still served. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sqlite3.h>

#include "check-run.h"
#include "cleanup.h"
#include "schema.h"
#include "llm-ledger.h"
#include "sqlite-util.h"
#include "llm-serve.h"
#include "llm-test-util.h"

static const char *fake_path;
static unsigned fake_port;
static char tmpdir[64], keypath[128], recpath[128];

static const struct orch_rpc_method methods[] = {
	{"llm.request", ORCH_RPC_M_REQUEST, 0, llm_serve_on_request},
	{"llm.cancel", ORCH_RPC_M_NOTIFY, 0, llm_serve_on_cancel},
};

#define MAX_REQS 16

/* What the guest end saw of one request (the rpc id is its index + 1). */
struct greq {
	int status;
	char retry_after[16];
	int64_t next_seq;
	bool seq_ok, done;
	int64_t done_code;
	char *body;
	size_t body_len;
};

struct guest {
	char *in;
	size_t in_len;
	struct greq r[MAX_REQS];
};

/* One LLM channel of VM vm: the host's rpc + serve on sv[0], the guest's raw end sv[1]. */
struct chan {
	char vm[16];
	int sv[2];
	struct orch_rpc *rpc;
	struct llm_serve *serve;
	struct orch_io *io;
	struct guest g;
};

static struct {
	struct orch_loop *loop;
	sqlite3 *db;
	struct llm_config cfg;
	struct llm_proxy *proxy;
} fx;

static int req_index(const char *req)
{
	/* request ids are "q<index>" */
	return req && req[0] == 'q' ? atoi(req + 1) : -1;
}

static void handle_line(struct guest *g, const char *line, size_t len)
{
	_cleanup_json_ json_t *j = json_loadb(line, len, 0, NULL);
	json_t *params = json_object_get(j, "params");
	const char *method = json_string_value(json_object_get(j, "method"));
	struct greq *r;
	int i;

	ck_assert_ptr_nonnull(j);
	if (!method) {
		struct orch_llm_response resp;
		const char *ra;
		i = (int)json_integer_value(json_object_get(j, "id")) - 1;
		ck_assert(i >= 0 && i < MAX_REQS);
		ck_assert_msg(json_object_get(j, "result"), "error reply: %.*s", (int)len, line);
		ck_assert_int_eq(orch_llm_response_parse(json_object_get(j, "result"), &resp, NULL),
				 0);
		g->r[i].status = (int)resp.status;
		ra = json_string_value(json_object_get(resp.headers, "retry-after"));
		snprintf(g->r[i].retry_after, sizeof(g->r[i].retry_after), "%s", ra ? ra : "");
	} else if (strcmp(method, "llm.chunk") == 0) {
		struct orch_llm_chunk c;
		ck_assert_int_eq(orch_llm_chunk_parse(params, &c, NULL), 0);
		i = req_index(c.req);
		ck_assert(i >= 0 && i < MAX_REQS);
		r = &g->r[i];
		if (c.seq != r->next_seq)
			r->seq_ok = false;
		r->next_seq++;
		r->body = realloc(r->body, r->body_len + c.len + 1);
		memcpy(r->body + r->body_len, c.data, c.len);
		r->body_len += c.len;
		r->body[r->body_len] = '\0';
		orch_llm_chunk_done(&c);
	} else if (strcmp(method, "llm.done") == 0) {
		struct orch_llm_done d;
		ck_assert_int_eq(orch_llm_done_parse(params, &d, NULL), 0);
		i = req_index(d.req);
		ck_assert(i >= 0 && i < MAX_REQS);
		g->r[i].done = true;
		g->r[i].done_code = d.error_code;
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
}

/* Slot -> task: slots 0..3 run "t-<vm>-<slot>", slot 5 is idle, others do not exist. */
static int resolve(void *data, int64_t slot, const char **ret_task)
{
	struct chan *c = data;
	static char task[4][32];

	if (slot == 5) {
		*ret_task = NULL;
		return 0;
	}
	if (slot < 0 || slot > 3)
		return -ENOENT;
	snprintf(task[slot], sizeof(task[slot]), "t-%s-%lld", c->vm, (long long)slot);
	*ret_task = task[slot];
	return 0;
}

static void fixture_up(void)
{
	struct orch_error err = {0};
	char url[64];

	memset(&fx, 0, sizeof(fx));
	ck_assert_int_eq(orch_loop_new(&fx.loop), 0);
	ck_assert_int_eq(sqlite3_open(":memory:", &fx.db), SQLITE_OK);
	ck_assert_int_eq(store_migrate(fx.db, &err), 0);
	ck_assert_int_eq(llm_config_init(&fx.cfg), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", fake_port);
	ck_assert_int_eq(
		llm_config_add_upstream(&fx.cfg, "a", LLM_API_ANTHROPIC, url, keypath, &err), 0);
	ck_assert_int_eq(llm_config_add_model(&fx.cfg, "claude-sonnet-4-5", "a", 3, 15, &err), 0);
	ck_assert_int_eq(llm_config_load_keys(&fx.cfg, &err), 0);
}

static void proxy_up(void)
{
	struct orch_error err = {0};

	ck_assert_int_eq(llm_proxy_new(fx.loop, fx.db, &fx.cfg, &fx.proxy, &err), 0);
}

static void fixture_down(void)
{
	llm_proxy_free(fx.proxy);
	llm_config_done(&fx.cfg);
	sqlite3_close(fx.db);
	orch_loop_free(fx.loop);
}

static void chan_open(struct chan *c, const char *vm, size_t max_queued, int sock_buf)
{
	struct orch_rpc_opts opts = {.max_line = ORCH_PROTOCOL_MAX_LINE, .max_queued = max_queued};

	memset(c, 0, sizeof(*c));
	snprintf(c->vm, sizeof(c->vm), "%s", vm);
	for (int i = 0; i < MAX_REQS; i++)
		c->g.r[i].seq_ok = true;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, c->sv),
			 0);
	if (sock_buf) {
		setsockopt(c->sv[0], SOL_SOCKET, SO_SNDBUF, &sock_buf, sizeof(sock_buf));
		setsockopt(c->sv[1], SOL_SOCKET, SO_RCVBUF, &sock_buf, sizeof(sock_buf));
	}
	ck_assert_int_eq(
		orch_rpc_new(fx.loop, c->sv[0], methods, ELEMENTSOF(methods), &opts, NULL, &c->rpc),
		0);
	ck_assert_int_eq(llm_serve_new(fx.proxy, c->rpc, vm, resolve, c, &c->serve), 0);
	orch_rpc_set_data(c->rpc, c->serve);
}

static void chan_read(struct chan *c)
{
	ck_assert_int_eq(orch_io_add(fx.loop, c->sv[1], EPOLLIN, on_guest, &c->g, &c->io), 0);
}

static void chan_close(struct chan *c)
{
	orch_io_free(c->io);
	llm_serve_free(c->serve);
	if (c->rpc) {
		orch_rpc_close(c->rpc);
		orch_rpc_unref(c->rpc);
	}
	if (c->sv[1] >= 0)
		close(c->sv[1]);
	free(c->g.in);
	for (int i = 0; i < MAX_REQS; i++)
		free(c->g.r[i].body);
}

/* The guest sends llm.request "q<i>" (rpc id i + 1) for slot with an Anthropic body. */
static void send_request(struct chan *c, int i, int64_t slot, const char *body)
{
	_cleanup_json_ json_t *headers = json_pack("{s:s}", "anthropic-version", "2023-06-01");
	char req_id[16];
	struct orch_llm_request req = {
		.req = req_id,
		.slot = slot,
		.method = "POST",
		.path = "/v1/messages",
		.headers = headers,
		.body_len = strlen(body),
		.body = (unsigned char *)body,
	};
	json_t *msg;
	char *line;
	size_t len;

	snprintf(req_id, sizeof(req_id), "q%d", i);
	msg = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", i + 1, "method",
			"llm.request", "params", orch_llm_request_build(&req));
	line = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	len = strlen(line);
	line[len] = '\n'; /* the NUL becomes the line's end */
	ck_assert_int_eq(write(c->sv[1], line, len + 1), (ssize_t)(len + 1));
	free(line);
}

static void on_timeout(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	*(bool *)data = true;
}

/* Runs the loop until cond(arg) holds; fails after timeout_ms. */
static void run_until(bool (*cond)(void *), void *arg, uint64_t timeout_ms, const char *what)
{
	struct orch_timer *t = NULL;
	bool expired = false;

	ck_assert_int_eq(orch_timer_add(fx.loop, timeout_ms, 0, on_timeout, &expired, &t), 0);
	while (!cond(arg) && !expired)
		ck_assert_int_ge(orch_loop_run_once(fx.loop, 100), 0);
	orch_timer_free(t);
	ck_assert_msg(cond(arg), "timed out waiting for %s", what);
}

static bool got_head(void *arg)
{
	return ((struct greq *)arg)->status != 0;
}

static bool got_done(void *arg)
{
	return ((struct greq *)arg)->done;
}

static bool proxy_idle(void *arg)
{
	return llm_proxy_inflight(fx.proxy) == 0;
}

static bool proxy_inflight_is(void *arg)
{
	return llm_proxy_inflight(fx.proxy) == *(unsigned *)arg;
}

static int count_rows(const char *sql)
{
	sqlite3_stmt *q;
	int n;

	ck_assert_int_eq(sqlite3_prepare_v2(fx.db, sql, -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	n = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return n;
}

static size_t record_count(void)
{
	_cleanup_free_ char *s = llm_test_read_file(recpath, NULL);
	size_t n = 0;

	for (char *p = s; p && (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

#define SMALL_BODY                                                                              \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":100,\"messages\":[{\"role\":\"user\"," \
	"\"content\":\"hi\"}]}"
#define STREAM_BODY(directive)                                                  \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":8000,\"stream\":true," \
	"\"metadata\":{\"user_id\":\"fake:" directive "\"},\"messages\":[]}"

START_TEST(test_backpressure)
{
	struct chan c;
	struct greq *r = &c.g.r[0];
	int deltas = 0;
	sqlite3_stmt *q;

	fixture_up();
	proxy_up();
	chan_open(&c, "vm", 64 * 1024, 4096);
	send_request(&c, 0, 2, STREAM_BODY("events=3000"));

	/* The guest does not read for a second: the host must hold, not drop. */
	{
		struct orch_timer *t = NULL;
		bool expired = false;
		ck_assert_int_eq(orch_timer_add(fx.loop, 1000, 0, on_timeout, &expired, &t), 0);
		while (!expired)
			ck_assert_int_ge(orch_loop_run_once(fx.loop, 100), 0);
		orch_timer_free(t);
	}
	ck_assert_int_le(orch_rpc_queued(c.rpc), 64 * 1024);
	ck_assert_int_eq(llm_proxy_inflight(fx.proxy), 1);
	chan_read(&c);
	run_until(got_done, r, 30000, "llm.done");

	ck_assert_int_eq(r->done_code, 0);
	ck_assert_int_eq(r->status, 200);
	ck_assert(r->seq_ok);
	for (char *p = r->body; (p = strstr(p, "event: content_block_delta")); p++)
		deltas++;
	ck_assert_int_eq(deltas, 3000);
	ck_assert_ptr_nonnull(strstr(r->body, "event: message_stop"));
	ck_assert_int_eq(sqlite3_prepare_v2(fx.db,
					    "SELECT outcome, output_tokens, task FROM llm_spend "
					    "WHERE agent = 'vm/2'",
					    -1, &q, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok");
	ck_assert_int_eq(sqlite3_column_int(q, 1), 6000);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 2), "t-vm-2");
	sqlite3_finalize(q);
	ck_assert_int_eq(llm_serve_inflight(c.serve), 0);

	chan_close(&c);
	fixture_down();
}
END_TEST

/* The exact way a guest (or a VM rebooting mid-stream) used to make orchd write into freed
 * memory: a streamed answer, the guest's channel closed after the reply head, the stream
 * ending upstream, then the guest reconnecting (orchd frees the old serve). */
START_TEST(test_guest_leaves)
{
	struct chan c, c2;
	unsigned left;

	fixture_up();
	proxy_up();
	chan_open(&c, "vm", 0, 0);
	chan_read(&c);
	/* ~1 s of events after the head */
	send_request(&c, 0, 1, STREAM_BODY("events=20;delay=50"));
	run_until(got_head, &c.g.r[0], 10000, "the reply head");
	ck_assert_int_eq(c.g.r[0].status, 200);

	/* The guest goes away; the host's end sees EOF (nobody frees its serve here: this is
	 * the serve's own handling of a channel that is gone). */
	orch_io_free(c.io);
	c.io = NULL;
	close(c.sv[1]);
	c.sv[1] = -1;
	run_until(proxy_idle, NULL, 20000, "the stream to end upstream");
	left = llm_serve_inflight(c.serve);

	/* The guest reconnects: orchd frees the old serve and serves the new channel. */
	llm_serve_free(c.serve);
	c.serve = NULL;
	chan_open(&c2, "vm", 0, 0);
	chan_read(&c2);
	send_request(&c2, 0, 1, SMALL_BODY);
	run_until(got_done, &c2.g.r[0], 10000, "the answer on the new channel");
	ck_assert_int_eq(c2.g.r[0].status, 200);
	ck_assert_int_eq(c2.g.r[0].done_code, 0);
	ck_assert_ptr_nonnull(strstr(c2.g.r[0].body, "Hello from the fake upstream"));

	/* The cut call was ended with its channel, not kept; and it was billed. */
	ck_assert_int_eq(left, 0);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_spend WHERE agent = 'vm/1' AND "
				    "outcome IN ('disconnected', 'incomplete')"),
			 1);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_reservation"), 0);

	chan_close(&c);
	chan_close(&c2);
	fixture_down();
}
END_TEST

START_TEST(test_idle_slot)
{
	struct chan c;
	struct greq *r = &c.g.r[0];
	size_t n;

	fixture_up();
	proxy_up();
	chan_open(&c, "vm", 0, 0);
	chan_read(&c);
	n = record_count();
	send_request(&c, 0, 5, SMALL_BODY);
	run_until(got_done, r, 10000, "the refusal");
	ck_assert_int_eq(r->status, 403);
	ck_assert_ptr_nonnull(r->body);
	ck_assert_ptr_nonnull(strstr(r->body, "\"type\":\"error\""));
	ck_assert_ptr_nonnull(strstr(r->body, "permission_error"));
	ck_assert_msg(strstr(r->body, "no task is running in agent slot 5"), "body: %s", r->body);
	/* nothing forwarded, reserved or billed, for the slot or anyone */
	ck_assert_int_eq(record_count(), n);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_reservation"), 0);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_spend"), 0);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_budget WHERE reserved_micro != 0 OR "
				    "spent_micro != 0"),
			 0);
	/* a slot that runs a task is served on the same channel */
	send_request(&c, 1, 0, SMALL_BODY);
	run_until(got_done, &c.g.r[1], 10000, "the answer");
	ck_assert_int_eq(c.g.r[1].status, 200);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_spend WHERE task = 't-vm-0'"), 1);

	chan_close(&c);
	fixture_down();
}
END_TEST

/* Requests of VM "a" that stall after their head hold its caps; refusals are 429 in
 * Anthropic's shape with retry-after, and nothing of them is forwarded or reserved. */
START_TEST(test_caps)
{
	struct chan a, b;
	unsigned n = 3;
	size_t rec;

	fixture_up();
	fx.cfg.agent_inflight = 2;
	fx.cfg.vm_inflight = 3;
	proxy_up();
	chan_open(&a, "a", 0, 0);
	chan_open(&b, "b", 0, 0);
	chan_read(&a);
	chan_read(&b);

	/* agent a/0: two stalled streams, the third is refused */
	send_request(&a, 0, 0, STREAM_BODY("stall=1"));
	send_request(&a, 1, 0, STREAM_BODY("stall=1"));
	run_until(got_head, &a.g.r[0], 10000, "the head of a/0's first stream");
	run_until(got_head, &a.g.r[1], 10000, "the head of a/0's second stream");
	rec = record_count();
	send_request(&a, 2, 0, SMALL_BODY);
	run_until(got_done, &a.g.r[2], 10000, "a/0's third request");
	ck_assert_int_eq(a.g.r[2].status, 429);
	ck_assert_str_eq(a.g.r[2].retry_after, "1");
	ck_assert_ptr_nonnull(strstr(a.g.r[2].body, "rate_limit_error"));
	ck_assert_msg(strstr(a.g.r[2].body, "agent slot"), "body: %s", a.g.r[2].body);

	/* agent a/1 of the same VM is still served: its stream takes the VM's last place */
	send_request(&a, 3, 1, STREAM_BODY("stall=1"));
	run_until(got_head, &a.g.r[3], 10000, "the head of a/1's stream");
	ck_assert_int_eq(a.g.r[3].status, 200);
	run_until(proxy_inflight_is, &n, 10000, "three exchanges in flight");

	/* the VM is at its cap: a/2 is refused */
	send_request(&a, 4, 2, SMALL_BODY);
	run_until(got_done, &a.g.r[4], 10000, "a/2's request");
	ck_assert_int_eq(a.g.r[4].status, 429);
	ck_assert_str_eq(a.g.r[4].retry_after, "1");
	ck_assert_msg(strstr(a.g.r[4].body, "this VM"), "body: %s", a.g.r[4].body);
	ck_assert_int_eq(record_count(), rec + 1); /* only a/1's stream went out */
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_reservation"), 3);

	/* another VM is not starved */
	send_request(&b, 0, 0, SMALL_BODY);
	run_until(got_done, &b.g.r[0], 10000, "b/0's answer");
	ck_assert_int_eq(b.g.r[0].status, 200);
	ck_assert_int_eq(b.g.r[0].done_code, 0);
	ck_assert_int_eq(count_rows("SELECT count(*) FROM llm_spend WHERE agent = 'b/0'"), 1);

	chan_close(&a);
	chan_close(&b);
	fixture_down();
}
END_TEST

int main(int argc, char **argv)
{
	const char *args[] = {"--key", LLM_TEST_KEY, "--record", recpath, NULL};
	Suite *s;
	TCase *tc;
	pid_t pid = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s <llm-fake-upstream> [case]\n", argv[0]);
		return 2;
	}
	fake_path = argv[1];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/orch-llm-serve-XXXXXX");
	if (!mkdtemp(tmpdir) || llm_test_write_key(tmpdir, keypath, sizeof(keypath)) < 0)
		return 1;
	snprintf(recpath, sizeof(recpath), "%s/requests.jsonl", tmpdir);
	if (llm_test_spawn_fake(fake_path, args, &pid, &fake_port) < 0)
		return 1;
	s = suite_create("llm_serve");
#define ADD(name)                                \
	do {                                     \
		tc = tcase_create(#name);        \
		tcase_set_timeout(tc, 60);       \
		tcase_add_test(tc, test_##name); \
		suite_add_tcase(s, tc);          \
	} while (0)
	ADD(backpressure);
	ADD(guest_leaves);
	ADD(idle_slot);
	ADD(caps);
	int r = orch_check_run_opts(s,
				    &(struct orch_check_opts){.tcase = argc > 2 ? argv[2] : NULL});
	llm_test_stop(pid);
	llm_test_rmtree(tmpdir);
	return r;
}
