/* SPDX-License-Identifier: Apache-2.0 */
/* A hostile stand-in for an LLM endpoint process (guest/llm/llm-helper.c): what an agent
 * that took over its slot's endpoint process could send the supervisor. The supervisor
 * starts it as it starts the real one (fd 3: the slot's listening socket, fd 4: the
 * socketpair to the supervisor); the test drives it through the listening socket, one
 * command line per TCP connection, and reads one answer line:
 *   forge SLOT TASK REQ   llm.request claiming another slot and task, with a req shaped
 *                         like a host id; answers "status=N body=..." once it ended
 *   cancel PREFIX FROM TO llm.cancel for PREFIX<FROM> .. PREFIX<TO> (other slots' ids)
 *   flood N               N llm.request (GET /v1/models) at once, no waiting
 *   raw TEXT              TEXT as a line of its own (not JSON-RPC)
 *   long                  a line longer than the supervisor reads
 * Test code: blocking I/O, bounded buffers, exits on any error. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <jansson.h>

#include "cleanup.h"
#include "schema.h"

#define FD_LISTEN 3
#define FD_SUPERVISOR 4
#define BODY                                                                                    \
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":300,\"messages\":[{\"role\":\"user\"," \
	"\"content\":\"hi\"}]}"

static char inbuf[1 << 20];
static size_t inlen;
static long long next_id = 1;

/* Lines held back to go out in one write (flood), when set. */
static char *held;
static size_t held_len, held_cap;

static void send_line(const char *s, size_t len)
{
	if (held) {
		if (held_len + len + 1 > held_cap)
			_exit(3);
		memcpy(held + held_len, s, len);
		held[held_len + len] = '\n';
		held_len += len + 1;
		return;
	}
	while (len) {
		ssize_t n = write(FD_SUPERVISOR, s, len);
		if (n <= 0)
			_exit(3);
		s += n;
		len -= (size_t)n;
	}
	if (write(FD_SUPERVISOR, "\n", 1) != 1)
		_exit(3);
}

static void send_json(json_t *m_new)
{
	char *s = json_dumps(m_new, JSON_COMPACT);
	json_decref(m_new);
	if (!s)
		_exit(3);
	send_line(s, strlen(s));
	free(s);
}

/* The next message from the supervisor. */
static json_t *read_msg(void)
{
	for (;;) {
		char *nl = memchr(inbuf, '\n', inlen);
		if (nl) {
			json_t *m = json_loadb(inbuf, (size_t)(nl - inbuf), 0, NULL);
			inlen -= (size_t)(nl + 1 - inbuf);
			memmove(inbuf, nl + 1, inlen);
			if (!m)
				_exit(4);
			return m;
		}
		if (inlen == sizeof(inbuf))
			_exit(4);
		ssize_t n = read(FD_SUPERVISOR, inbuf + inlen, sizeof(inbuf) - inlen);
		if (n <= 0)
			_exit(0);
		inlen += (size_t)n;
	}
}

static long long request(const char *req, int64_t slot, const char *task, const char *method,
			 const char *path, const char *body)
{
	json_t *headers = json_pack("{s:s, s:s}", "content-type", "application/json",
				    "anthropic-version", "2023-06-01");
	struct orch_llm_request r = {.req = req,
				     .slot = slot,
				     .task = task,
				     .method = method,
				     .path = path,
				     .headers = headers,
				     .body = (unsigned char *)body,
				     .body_len = body ? strlen(body) : 0};
	long long id = next_id++;
	send_json(json_pack("{s:s, s:I, s:s, s:o}", "jsonrpc", "2.0", "id", (json_int_t)id,
			    "method", "llm.request", "params", orch_llm_request_build(&r)));
	json_decref(headers);
	return id;
}

/* forge: the answer's status and body, as the supervisor routed them back. */
static void forge(int c, int64_t slot, const char *task, const char *req)
{
	long long id = request(req, slot, task, "POST", "/v1/messages", BODY);
	long long status = -1;
	_cleanup_free_ char *body = calloc(1, 65536);
	size_t blen = 0;

	for (;;) {
		json_t *m = read_msg();
		const char *method = json_string_value(json_object_get(m, "method"));
		json_t *p = json_object_get(m, "params");
		if (!method && json_integer_value(json_object_get(m, "id")) == id) {
			json_t *res = json_object_get(m, "result");
			status = res ? json_integer_value(json_object_get(res, "status")) : 0;
			if (!res) {
				json_decref(m);
				break;
			}
		} else if (method && !strcmp(method, "llm.chunk") &&
			   !strcmp(json_string_value(json_object_get(p, "req")), req)) {
			const char *d = json_string_value(json_object_get(p, "data"));
			unsigned char *raw = NULL;
			size_t len = 0;
			if (d && orch_b64_decode(d, strlen(d), &raw, &len) == 0 &&
			    blen + len < 65535) {
				memcpy(body + blen, raw, len);
				blen += len;
			}
			free(raw);
		} else if (method && !strcmp(method, "llm.done")) {
			json_decref(m);
			break;
		}
		json_decref(m);
	}
	dprintf(c, "status=%lld body=%.*s\n", status, (int)blen, body);
}

static void command(int c, char *line)
{
	char a[128], b[128], d[160];
	long long x, y;

	if (sscanf(line, "forge %lld %127s %127s", &x, a, b) == 3) {
		forge(c, x, a, b);
	} else if (sscanf(line, "cancel %127s %lld %lld", a, &x, &y) == 3) {
		for (long long i = x; i <= y; i++) {
			snprintf(d, sizeof(d), "%s%lld", a, i);
			struct orch_llm_cancel cn = {.req = d};
			send_json(json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method",
					    "llm.cancel", "params", orch_llm_cancel_build(&cn)));
		}
		dprintf(c, "sent\n");
	} else if (sscanf(line, "flood %lld", &x) == 1) {
		/* In one write, so that the supervisor reads them all before any answer. */
		held_cap = 1 << 20;
		if (!(held = malloc(held_cap)))
			_exit(5);
		for (long long i = 0; i < x && i < 1000; i++) {
			snprintf(d, sizeof(d), "flood-%lld", i);
			request(d, 0, NULL, "GET", "/v1/models", NULL);
		}
		char *h = held;
		held = NULL;
		send_line(h, held_len - 1); /* its last newline comes from send_line */
		free(h);
		held_len = 0;
		dprintf(c, "sent\n");
	} else if (!strncmp(line, "raw ", 4)) {
		send_line(line + 4, strlen(line + 4));
		dprintf(c, "sent\n");
	} else if (!strcmp(line, "long")) {
		size_t n = ORCH_PROTOCOL_MAX_LINE + 4096;
		char *s = malloc(n);
		if (!s)
			_exit(5);
		memset(s, 'x', n);
		send_line(s, n);
		free(s);
		dprintf(c, "sent\n");
	} else {
		dprintf(c, "unknown command\n");
	}
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(FD_LISTEN, F_SETFL, 0) < 0 || fcntl(FD_SUPERVISOR, F_SETFL, 0) < 0)
		return 2;
	for (;;) {
		char line[512];
		size_t len = 0;
		int c = accept4(FD_LISTEN, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return 2;
		while (len < sizeof(line) - 1) {
			ssize_t n = read(c, line + len, 1);
			if (n <= 0 || line[len] == '\n')
				break;
			len++;
		}
		line[len] = 0;
		command(c, line);
		close(c);
	}
}
