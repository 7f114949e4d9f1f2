/* SPDX-License-Identifier: Apache-2.0 */
/* The in-jail endpoint driven by real HTTP clients, with the host proxy behind it through
 * an in-process bridge over a socketpair (llm-test-stack.h), against the fake upstream.
 *   test-llm-endpoint <llm-fake-upstream> curl   the curl binary: both APIs, streamed and
 *                                                not, refusals, a stripped tool, a hang-up
 *                                                mid-stream that is still billed
 *   test-llm-endpoint <llm-fake-upstream> sdk    @anthropic-ai/sdk and openai under node
 *   test-llm-endpoint <llm-fake-upstream> unavailable
 *                                                libmicrohttpd cannot be loaded: each
 *                                                request gets a clear 503, nothing hangs
 * Each endpoint runs as its own unprivileged process (this program again, llm-helper.h),
 * started on the slot's first connection: not before, and only it maps libmicrohttpd
 * (checked in every mode).
 * The real key must never appear in anything a client receives. Exits 77 (skip) when the
 * clients are missing. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "llm-ledger.h"
#include "llm-price.h"
#include "llm-test-stack.h"
#include "llm-test-util.h"

static struct llm_stack st;
static int failures;
static const char *mode;
static int efd = -1;

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

static unsigned curl_port;

static char *run_curl(const char *path, const char *body, const char *extra)
{
	char url[128];
	const char *argv[24] = {"curl",	      "-sS",
				"-i",	      "-N",
				"--max-time", "20",
				"-H",	      "x-api-key: orch-placeholder-key",
				"-H",	      "anthropic-version: 2023-06-01",
				"-H",	      "content-type: application/json"};
	size_t n = 12;
	char *out = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", curl_port ? curl_port : st.port, path);
	if (extra) {
		argv[n++] = "-H";
		argv[n++] = extra;
	}
	if (body) {
		argv[n++] = "--data-binary";
		argv[n++] = body;
	}
	argv[n++] = url;
	argv[n] = NULL;
	llm_test_run(argv, NULL, &out);
	check(!strstr(out, LLM_TEST_KEY), "%s: the real key is not in the answer", path);
	return out;
}

#define MSG(extra)                                                                              \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":300,\"messages\":[{\"role\":\"user\"," \
	"\"content\":\"hi\"}]" extra "}"

/* Sends raw bytes to the endpoint and returns what came back before it closed. */
static char *raw(const void *req, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)st.port)};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char *out = calloc(1, 65536);
	size_t got = 0;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		for (size_t off = 0; off < len; off += (size_t)n) {
			n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
		}
		shutdown(fd, SHUT_WR);
		while (got < 65535 && (n = read(fd, out + got, 65535 - got)) > 0)
			got += (size_t)n;
	}
	close(fd);
	return out;
}

static void hostile_cases(void)
{
	static const char garbage[] = "\x16\x03\x01\x00\xff\xfe GARBAGE \r\n\x00\r\n\r\n";
	static const char smuggle[] =
		"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	static const char bad_len[] = "POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
				      "Content-Length: 99999999999999999999999\r\n\r\n{}";
	char *flood = malloc(300 * 1024), *o;
	size_t n = 0;

	o = raw(garbage, sizeof(garbage) - 1);
	check(!strstr(o, "200 OK"), "binary garbage is refused");
	free(o);
	o = raw(smuggle, sizeof(smuggle) - 1);
	check(!strstr(o, "HTTP/1.1 200"), "Content-Length with Transfer-Encoding is not served");
	free(o);
	o = raw(bad_len, sizeof(bad_len) - 1);
	check(!strstr(o, "HTTP/1.1 200"), "an absurd Content-Length is refused");
	free(o);
	n += (size_t)sprintf(flood, "GET /v1/models HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 250; i++)
		n += (size_t)sprintf(flood + n, "X-Flood-%d: %01000d\r\n", i, 0);
	n += (size_t)sprintf(flood + n, "\r\n");
	o = raw(flood, n);
	check(!strstr(o, "HTTP/1.1 200"), "250 KB of headers are refused");
	free(o);
	free(flood);
	o = run_curl("/v1/models", NULL, NULL);
	check(strstr(o, "HTTP/1.1 200") != NULL, "the endpoint still serves after hostile input");
	free(o);
}

#define RACE_BODY MSG(",\"stream\":true,\"metadata\":{\"user_id\":\"fake:latency=300\"}")

/* 20 requests at once on slot 4, whose budget covers 5.5 worst cases (set by main). */
static void budget_race(void)
{
	const char *argv[80] = {"curl",
				"-sS",
				"-Z",
				"--parallel-max",
				"20",
				"--parallel-immediate",
				"-w",
				"%{http_code}\n",
				"-H",
				"anthropic-version: 2023-06-01",
				"--data-binary",
				RACE_BODY};
	char url[96];
	size_t n = 12;
	int ok = 0, refused = 0;
	char *o, *p;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/messages", st.port2);
	for (int i = 0; i < 20; i++) {
		argv[n++] = "-o";
		argv[n++] = "/dev/null";
		argv[n++] = url;
	}
	argv[n] = NULL;
	llm_test_run(argv, NULL, &o);
	for (p = o; (p = strstr(p, "200\n")); p++)
		ok++;
	for (p = o; (p = strstr(p, "429\n")); p++)
		refused++;
	check(ok >= 1 && ok <= 5 && ok + refused == 20,
	      "20 concurrent requests, a budget for 5: %d answered, %d refused with 429", ok,
	      refused);
	free(o);
}

/* ---- an agent in its own network namespace ---- */

struct netns_agent {
	pid_t pid;
	int go_w;  /* parent writes: run curl now */
	int out_r; /* curl's output */
	struct llm_endpoint *ep;
	bool ok;
};
static struct netns_agent agent = {.pid = -1, .go_w = -1, .out_r = -1};

static int lo_up(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		r = -1;
	ifr.ifr_flags |= IFF_UP;
	if (r == 0 && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		r = -1;
	if (fd >= 0)
		close(fd);
	return r;
}

/* A child in a new network namespace (lo up) that runs curl against 127.0.0.1:4000 when
 * told to; the endpoint for slot 5 listens inside that namespace, created from here with
 * setns() the way the supervisor does it. */
static void netns_agent_start(void)
{
	int ready[2], go[2], out[2], self = -1, ns = -1, fd = -1;
	char c, path[64];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(4000)};
	struct orch_error err = {0};

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return;
	agent.pid = fork();
	if (agent.pid == 0) {
		const char *argv[] = {"curl",
				      "-sS",
				      "-i",
				      "--max-time",
				      "10",
				      "-H",
				      "anthropic-version: 2023-06-01",
				      "--data-binary",
				      MSG(""),
				      "http://127.0.0.1:4000/v1/messages",
				      NULL};
		c = (unshare(CLONE_NEWNET) == 0 && lo_up() == 0) ? 'y' : 'n';
		if (write(ready[1], &c, 1) != 1 || c != 'y' || read(go[0], &c, 1) != 1)
			_exit(1);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp("curl", (char *const *)argv);
		_exit(127);
	}
	close(ready[1]);
	close(go[0]);
	close(out[1]);
	agent.go_w = go[1];
	agent.out_r = out[0];
	if (read(ready[0], &c, 1) != 1 || c != 'y') {
		close(ready[0]);
		return;
	}
	close(ready[0]);
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)agent.pid);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (self >= 0 && ns >= 0 && setns(ns, CLONE_NEWNET) == 0) {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd >= 0 &&
		    (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)) {
			close(fd);
			fd = -1;
		}
		if (setns(self, CLONE_NEWNET) < 0)
			abort(); /* the test can not go on in the wrong namespace */
	}
	if (self >= 0)
		close(self);
	if (ns >= 0)
		close(ns);
	struct llm_endpoint_opts eo = llm_stack_opts(LLM_STACK_SLOT + 2);
	if (fd >= 0 && llm_endpoint_new(st.bridge, fd, &eo, &agent.ep, &err) == 0)
		agent.ok = true;
}

/* A long stream left running when the test ends: main frees the endpoint under it. */
static pid_t bg_curl = -1;
static int bg_out = -1;

static void start_background_stream(void)
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

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/messages", st.port);
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	bg_curl = fork();
	if (bg_curl == 0) {
		dup2(p[1], 1);
		execvp("curl", (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	bg_out = p[0];
	/* Wait for the first bytes: the stream is flowing. */
	char c;
	if (read(bg_out, &c, 1) != 1)
		failures++;
}

static void netns_case(void)
{
	char *o = calloc(1, 65536);
	size_t got = 0;
	ssize_t n;
	int status = 0;

	/* main() skips the whole program when not root: as root a namespace must work */
	check(agent.ok, "an agent in a network namespace of its own (unshare, lo up)");
	if (!agent.ok) {
		free(o);
		return;
	}
	if (write(agent.go_w, "g", 1) != 1)
		failures++;
	while (got < 65535 && (n = read(agent.out_r, o + got, 65535 - got)) > 0)
		got += (size_t)n;
	waitpid(agent.pid, &status, 0);
	agent.pid = -1;
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(o, "HTTP/1.1 200") &&
		      strstr(o, "Hello from the fake upstream.") && !strstr(o, LLM_TEST_KEY),
	      "an agent in its own network namespace reaches 127.0.0.1:4000 there");
	free(o);
}

static void curl_cases(void)
{
	char *o, big[200];
	const char *argv[16];
	int rc;

	o = run_curl("/v1/messages", MSG(""), NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "\"type\":\"message\"") &&
		      strstr(o, "Hello from the fake upstream."),
	      "anthropic non-streaming");
	free(o);
	o = run_curl("/v1/messages?beta=true", MSG(",\"stream\":true"), NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "text/event-stream") &&
		      strstr(o, "event: message_start") && strstr(o, "event: message_stop"),
	      "anthropic streaming");
	free(o);
	o = run_curl("/v1/chat/completions",
		     "{\"model\":\"gpt-4.1\",\"stream\":true,\"messages\":[{\"role\":\"user\","
		     "\"content\":\"hi\"}]}",
		     NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "data: [DONE]") &&
		      strstr(o, "\"completion_tokens\":12"),
	      "openai streaming with the usage chunk");
	free(o);
	o = run_curl("/v1/chat/completions", "{\"model\":\"gpt-4.1\",\"messages\":[]}", NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "\"chat.completion\""),
	      "openai non-streaming");
	free(o);
	/* The Responses API (Codex): answered and streamed; hosted tools never reach the
	 * upstream, the function tool does; background runs are refused. */
	o = run_curl("/v1/responses",
		     "{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"tools\":[{\"type\":"
		     "\"web_search_preview\"},{\"type\":\"mcp\",\"server_label\":\"x\","
		     "\"server_url\":\"https://mcp.example\"},{\"type\":\"function\",\"name\":"
		     "\"resp_fn_tool\",\"parameters\":{}}]}",
		     NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "\"object\":\"response\"") &&
		      strstr(o, "Hello from the fake upstream."),
	      "responses non-streaming");
	free(o);
	{
		_cleanup_free_ char *rec = llm_test_read_file(st.recpath, NULL);
		check(rec && strstr(rec, "resp_fn_tool") && !strstr(rec, "web_search_preview") &&
			      !strstr(rec, "mcp.example"),
		      "responses: hosted tools never reach the upstream, the function tool does");
	}
	o = run_curl("/v1/responses", "{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"stream\":true}",
		     NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "text/event-stream") &&
		      strstr(o, "event: response.output_text.delta") &&
		      strstr(o, "event: response.completed") && strstr(o, "\"output_tokens\":12"),
	      "responses streaming");
	free(o);
	o = run_curl("/v1/responses",
		     "{\"model\":\"gpt-4.1\",\"input\":\"hi\",\"background\":true}", NULL);
	check(strstr(o, "HTTP/1.1 400") && strstr(o, "background") &&
		      strstr(o, "\"invalid_request_error\""),
	      "responses: a background run is refused in the OpenAI error shape");
	free(o);
	o = run_curl("/v1/models", NULL, NULL);
	check(strstr(o, "HTTP/1.1 200") && strstr(o, "\"gpt-4.1\""), "models from the allowlist");
	free(o);
	{
		/* The endpoint's own answers come in the dialect of the path: Gemini here. */
		char url[160];
		snprintf(url, sizeof(url),
			 "http://127.0.0.1:%u/v1beta/models/gemini-2.5-pro:generateContent",
			 st.port);
		const char *put[] = {"curl", "-sS", "-i", "-X", "PUT", url, NULL};
		llm_test_run(put, NULL, &o);
		check(strstr(o, "HTTP/1.1 405") && strstr(o, "\"code\":405") &&
			      strstr(o, "\"status\":\"INVALID_ARGUMENT\""),
		      "a refused method on a Gemini path: the error in Gemini's shape\n%s", o);
		free(o);
	}
	o = run_curl("/v1/messages",
		     "{\"model\":\"claude-opus-4-1\",\"max_tokens\":10,\"messages\":[]}", NULL);
	check(strstr(o, "HTTP/1.1 403") && strstr(o, "permission_error") &&
		      strstr(o, "model 'claude-opus-4-1' is not allowed") &&
		      strstr(o, "to llm.models in orchd's config"),
	      "a denied model: 403 permission_error naming the model and the config key");
	free(o);
	o = run_curl("/v1/messages",
		     MSG(",\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"},"
			 "{\"type\":\"code_execution_20250825\",\"name\":\"code_execution\"},"
			 "{\"name\":\"local_tool\",\"input_schema\":{\"type\":\"object\"}}]"),
		     NULL);
	check(strstr(o, "HTTP/1.1 200"), "a request with server tools is answered");
	free(o);
	{
		_cleanup_free_ char *rec = llm_test_read_file(st.recpath, NULL);
		char *last = rec ? strstr(rec, "local_tool") : NULL;
		check(last && !strstr(rec, "web_search_2025") &&
			      !strstr(rec, "code_execution_2025"),
		      "server tools never reach the upstream, the local one does");
		check(rec && strstr(rec, "\"x-api-key\":\"" LLM_TEST_KEY "\"") &&
			      !strstr(rec, "orch-placeholder-key"),
		      "the upstream got the real key and never the placeholder");
	}
	o = run_curl("/v1/secrets", "{}", NULL);
	check(strstr(o, "HTTP/1.1 404") != NULL, "an unknown path: 404");
	free(o);
	argv[0] = "curl";
	argv[1] = "-sS";
	argv[2] = "-i";
	argv[3] = "-X";
	argv[4] = "DELETE";
	snprintf(big, sizeof(big), "http://127.0.0.1:%u/v1/messages", st.port);
	argv[5] = big;
	argv[6] = NULL;
	llm_test_run(argv, NULL, &o);
	check(strstr(o, "HTTP/1.1 405") != NULL, "DELETE: 405");
	free(o);

	/* 5 MiB body: refused by the endpoint itself (413) before anything is forwarded. */
	{
		char path[160], at[170];
		FILE *f;
		snprintf(path, sizeof(path), "%s/big.json", st.tmpdir);
		f = fopen(path, "we");
		fputs("{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1,\"messages\":[],\"x\":\"",
		      f);
		char chunk[1024];
		memset(chunk, 'x', sizeof(chunk));
		for (int i = 0; i < 5 * 1024; i++)
			fwrite(chunk, 1, sizeof(chunk), f);
		fputs("\"}", f);
		fclose(f);
		snprintf(at, sizeof(at), "@%s", path);
		o = run_curl("/v1/messages", at, NULL);
		check(strstr(o, "HTTP/1.1 413") && strstr(o, "request_too_large"),
		      "a 5 MiB request: 413 request_too_large");
		free(o);
	}

	/* The agent hangs up after a second of a 3-second stream: still billed. */
	argv[0] = "curl";
	argv[1] = "-sS";
	argv[2] = "-N";
	argv[3] = "--max-time";
	argv[4] = "1";
	argv[5] = "-H";
	argv[6] = "anthropic-version: 2023-06-01";
	argv[7] = "--data-binary";
	argv[8] = MSG(",\"stream\":true,\"metadata\":{\"user_id\":\"fake:events=150;delay=20\"}");
	argv[9] = big;
	argv[10] = NULL;
	rc = llm_test_run(argv, NULL, &o);
	check(rc == 28 && strstr(o, "message_start") && !strstr(o, "message_stop"),
	      "hang-up mid-stream (curl exit %d)", rc);
	free(o);

	/* Identity is the listener: the same request on slot 4's endpoint bills slot 4. */
	curl_port = st.port2;
	o = run_curl("/v1/messages", MSG(""), NULL);
	check(strstr(o, "HTTP/1.1 200") != NULL, "slot 4's endpoint answers");
	free(o);
	curl_port = 0;
	budget_race();
	hostile_cases();
	netns_case();
	start_background_stream();
}

static void sdk_cases(void)
{
	char env_a[128], env_o[128], env_g[128], script[512];
	const char *env[] = {env_a, env_o, env_g, NULL};
	const char *src = getenv("ORCH_SOURCEDIR");
	const char *argv[] = {"node", script, NULL};
	char *o;
	int rc;

	snprintf(env_a, sizeof(env_a), "ANTHROPIC_BASE_URL=http://127.0.0.1:%u", st.port);
	snprintf(env_o, sizeof(env_o), "OPENAI_BASE_URL=http://127.0.0.1:%u/v1", st.port);
	snprintf(env_g, sizeof(env_g), "GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:%u", st.port);
	snprintf(script, sizeof(script), "%s/tests/llm/sdk-anthropic.mjs", src);
	rc = llm_test_run(argv, env, &o);
	check(rc == 0 && strstr(o, "\"ok\":true") && !strstr(o, LLM_TEST_KEY),
	      "@anthropic-ai/sdk: create, stream, countTokens, models, denied model\n%s", o);
	free(o);
	snprintf(script, sizeof(script), "%s/tests/llm/sdk-openai.mjs", src);
	rc = llm_test_run(argv, env, &o);
	check(rc == 0 && strstr(o, "\"ok\":true") && !strstr(o, LLM_TEST_KEY),
	      "openai: chat create and stream with usage, responses create and stream, models, "
	      "denied model\n%s",
	      o);
	free(o);
	snprintf(script, sizeof(script), "%s/tests/llm/sdk-gemini.mjs", src);
	rc = llm_test_run(argv, env, &o);
	check(rc == 0 && strstr(o, "\"ok\":true") && !strstr(o, LLM_TEST_KEY),
	      "@google/genai: generateContent, stream, models.list, countTokens, denied model\n%s",
	      o);
	free(o);
}

/* The endpoints without their HTTP library: a fixed 503 per connection, on both slots,
 * as often as asked. */
static void unavailable_cases(void)
{
	for (int i = 0; i < 3; i++) {
		curl_port = i == 2 ? st.port2 : 0;
		char *o = run_curl("/v1/messages", MSG(""), NULL);
		check(strstr(o, "HTTP/1.1 503") && strstr(o, "the LLM endpoint is unavailable") &&
			      strstr(o, "\"type\":\"error\""),
		      "without libmicrohttpd: request %d gets a clear 503\n%s", i, o);
		free(o);
	}
	curl_port = 0;
}

static void *client_thread(void *arg)
{
	uint64_t one = 1;

	if (strcmp(mode, "sdk") == 0)
		sdk_cases();
	else if (strcmp(mode, "unavailable") == 0)
		unavailable_cases();
	else
		curl_cases();
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

/* Whether pid maps libmicrohttpd. */
static bool maps_mhd(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	_cleanup_free_ char *maps = llm_test_read_file(path, NULL);
	return maps && strstr(maps, "libmicrohttpd") != NULL;
}

static bool have_sdk(void)
{
	const char *src = getenv("ORCH_SOURCEDIR");
	char p[512];
	struct stat s;
	char *o = NULL;
	const char *argv[] = {"node", "--version", NULL};
	int rc;

	if (!src)
		return false;
	snprintf(p, sizeof(p), "%s/tests/llm/node_modules/@anthropic-ai/sdk/package.json", src);
	if (stat(p, &s) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/tests/llm/node_modules/openai/package.json", src);
	if (stat(p, &s) < 0)
		return false;
	snprintf(p, sizeof(p), "%s/tests/llm/node_modules/@google/genai/package.json", src);
	if (stat(p, &s) < 0)
		return false;
	rc = llm_test_run(argv, NULL, &o);
	free(o);
	return rc == 0;
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
		fprintf(stderr, "usage: %s <llm-fake-upstream> curl|sdk|unavailable\n", argv[0]);
		return 2;
	}
	mode = argv[2];
	if (geteuid() != 0) {
		printf("SKIP: needs root (an agent in a network namespace of its own)\n");
		return 77;
	}
	if (strcmp(mode, "sdk") == 0 && !have_sdk()) {
		printf("SKIP: node or the SDKs are missing; run: npm ci --prefix tests/llm\n");
		return 77;
	}
	if (strcmp(mode, "sdk") != 0 && llm_test_run(curl_v, NULL, &o) != 0) {
		free(o);
		printf("SKIP: no curl binary\n");
		return 77;
	}
	free(o);
	if (strcmp(mode, "unavailable") == 0 &&
	    llm_endpoint_set_library("/nonexistent/libmicrohttpd.so.12") < 0) {
		fprintf(stderr, "cannot choose the library\n");
		return 1;
	}
	if (llm_stack_start(&st, argv[1], NULL) < 0) {
		fprintf(stderr, "cannot start the LLM stack\n");
		return 1;
	}
	check(!llm_endpoint_pid(st.ep) && !llm_endpoint_pid(st.ep2),
	      "no endpoint process runs while no agent has connected");
	{
		const struct llm_model *m = llm_config_model(&st.cfg, "claude-sonnet-4-5");
		int64_t worst = llm_cost_worst_micro(&m->price, (int64_t)strlen(RACE_BODY), 300);
		/* slot 4 spends one small request first (identity check), then the race */
		llm_ledger_set_limit(st.db, "agent", "vm/4", worst * 11 / 2, 0, NULL);
	}
	if (strcmp(mode, "curl") == 0)
		netns_agent_start();
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	orch_io_add(st.loop, efd, EPOLLIN, on_clients_done, NULL, &io);
	orch_timer_add(st.loop, 120000, 0, on_guard, NULL, &guard);
	pthread_create(&th, NULL, client_thread, NULL);
	orch_loop_run(st.loop);
	pthread_join(th, NULL);
	{
		/* libmicrohttpd lives in the endpoint process only (when it can be loaded). */
		pid_t pid = llm_endpoint_pid(st.ep);
		bool unavailable = strcmp(mode, "unavailable") == 0;
		check(pid > 0, "slot 3's endpoint process runs once agents connected");
		check(pid > 0 && maps_mhd(pid) == !unavailable,
		      "the endpoint process %s libmicrohttpd", unavailable ? "lacks" : "maps");
		check(!maps_mhd(getpid()), "the supervisor's side never maps libmicrohttpd");
	}
	if (bg_curl > 0) {
		/* The slot goes away mid-stream: the agent's response is cut, the host call is
		 * cancelled, drained and billed. */
		int status = 0;
		llm_endpoint_free(st.ep);
		st.ep = NULL;
		while (llm_proxy_inflight(st.proxy) > 0)
			if (orch_loop_run_once(st.loop, 5000) < 0)
				break;
		waitpid(bg_curl, &status, 0);
		check(WIFEXITED(status) && WEXITSTATUS(status) != 0,
		      "freeing an endpoint cuts its running stream (curl exit %d)",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		close(bg_out);
	}
	/* Let hung-up calls drain and settle. */
	while (llm_proxy_inflight(st.proxy) > 0 && failures == 0)
		if (orch_loop_run_once(st.loop, 5000) < 0)
			break;
	if (strcmp(mode, "curl") == 0) {
		struct llm_budget b = {0};
		sqlite3_stmt *q = NULL;
		llm_ledger_get(st.db, "agent", "vm/3", &b, NULL);
		check(b.spent_micro > 0 && b.reserved_micro == 0,
		      "the slot's spend is recorded ($%.6f) and nothing stays reserved",
		      (double)b.spent_micro / 1e6);
		llm_ledger_get(st.db, "task", LLM_STACK_TASK, &b, NULL);
		check(b.spent_micro > 0, "the task's spend is recorded");
		sqlite3_prepare_v2(st.db,
				   "SELECT count(*) FROM llm_spend WHERE outcome = 'disconnected' "
				   "AND output_tokens = 300",
				   -1, &q, NULL);
		/* the curl that hung up and the stream cut by freeing its endpoint */
		check(q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 2,
		      "both cut streams were read to their end and billed in full");
		sqlite3_finalize(q);
		q = NULL;
		sqlite3_prepare_v2(st.db,
				   "SELECT count(*), count(task = '" LLM_STACK_TASK
				   "-4' OR NULL) FROM llm_spend WHERE agent = 'vm/4'",
				   -1, &q, NULL);
		check(q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) >= 2 &&
			      sqlite3_column_int(q, 1) == sqlite3_column_int(q, 0),
		      "slot 4's requests were billed to vm/4 and its task, not to slot 3");
		sqlite3_finalize(q);
		llm_ledger_get(st.db, "agent", "vm/4", &b, NULL);
		check(b.spent_micro <= b.limit_micro && b.reserved_micro == 0,
		      "slot 4 spent $%.6f of its $%.6f budget", (double)b.spent_micro / 1e6,
		      (double)b.limit_micro / 1e6);
	}
	if (strcmp(mode, "curl") == 0) {
		sqlite3_stmt *q = NULL;
		sqlite3_prepare_v2(st.db, "SELECT count(*) FROM llm_spend WHERE agent = 'vm/5'", -1,
				   &q, NULL);
		check(!agent.ok ||
			      (q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 1),
		      "the namespaced agent's call was billed to its slot (vm/5)");
		sqlite3_finalize(q);
	}
	if (agent.pid > 0) {
		kill(agent.pid, SIGKILL);
		waitpid(agent.pid, NULL, 0);
	}
	if (agent.go_w >= 0)
		close(agent.go_w);
	if (agent.out_r >= 0)
		close(agent.out_r);
	llm_endpoint_free(agent.ep);
	orch_io_free(io);
	orch_timer_free(guard);
	close(efd);
	llm_stack_stop(&st);
	fprintf(stderr, "%s\n", failures ? "FAILED" : "PASSED");
	return failures ? 1 : 0;
}
