/* SPDX-License-Identifier: Apache-2.0 */
/* The CLI's connection to orchd: an orch_rpc peer on a private loop, driven until the
 * awaited reply arrives; and the argument parsing and output the verbs share. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "render.h"
#include "visible.h"
#include "schema.h"

static int m_output(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
		    struct orch_error *err)
{
	struct cli *c = data;

	if (c->on_output && params)
		c->on_output(c, params);
	return 0;
}

static const struct orch_rpc_method cli_methods[] = {
	{"task.output", ORCH_RPC_M_NOTIFY, 0, m_output},
};

static void on_close(struct orch_rpc *rpc, int code, void *data)
{
	struct cli *c = data;

	c->closed = true;
}

int cli_connect(struct cli *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct orch_rpc_opts opts = {.max_line = 4 * 1024 * 1024, .name = "orchd"};
	int fd, r;

	if (c->rpc)
		return 0;
	if (strlen(c->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "orch: socket path %s is too long\n", c->socket);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, c->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		fprintf(stderr, "orch: socket: %s\n", strerror(-r));
		return r;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		if (r == -EACCES || r == -EPERM)
			fprintf(stderr,
				"orch: permission denied on %s: using orch needs root or "
				"membership "
				"in orchd's configured group\n",
				c->socket);
		else
			fprintf(stderr,
				"orch: orchd is not running at %s; start it with `orchd "
				"--foreground` (or see README)\n",
				c->socket);
		return r;
	}
	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	r = orch_loop_new(&c->loop);
	if (r < 0) {
		close(fd);
		return r;
	}
	r = orch_rpc_new(c->loop, fd, cli_methods, ELEMENTSOF(cli_methods), &opts, c, &c->rpc);
	if (r < 0) {
		close(fd);
		return r;
	}
	orch_rpc_set_state(c->rpc, ORCH_STATE_READY);
	orch_rpc_set_close_cb(c->rpc, on_close);
	return 0;
}

void cli_disconnect(struct cli *c)
{
	if (c->rpc) {
		orch_rpc_set_close_cb(c->rpc, NULL);
		orch_rpc_close(c->rpc);
		orch_rpc_unref(c->rpc);
		c->rpc = NULL;
	}
	orch_loop_free(c->loop);
	c->loop = NULL;
}

struct reply {
	bool done;
	json_t *result;
	struct orch_error err;
	bool failed;
};

static void on_reply(struct orch_rpc *rpc, json_t *result, const struct orch_error *err,
		     json_t *err_data, void *data)
{
	struct reply *r = data;

	r->done = true;
	if (err) {
		r->failed = true;
		r->err = *err;
	} else {
		r->result = json_incref(result);
	}
}

int cli_call(struct cli *c, const char *method, json_t *params_new, uint64_t timeout_ms,
	     json_t **ret_result)
{
	struct reply rep = {0};
	int r;

	r = cli_connect(c);
	if (r < 0) {
		json_decref(params_new);
		return CLI_EXIT_NO_DAEMON;
	}
	/* The rpc layer wants a timeout: "forever" is a very long one. */
	r = orch_rpc_call(c->rpc, method, params_new, timeout_ms ? timeout_ms : 100ull * 86400000,
			  on_reply, &rep);
	if (r < 0) {
		fprintf(stderr, "orch: cannot send to orchd: %s\n", strerror(-r));
		return CLI_EXIT_NO_DAEMON;
	}
	while (!rep.done) {
		r = orch_loop_run_once(c->loop, -1);
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "orch: event loop: %s\n", strerror(-r));
			return CLI_EXIT_ERROR;
		}
	}
	if (rep.failed) {
		if (rep.err.code == ORCH_RPC_CLOSED) {
			fprintf(stderr, "orch: orchd closed the connection (%s)\n", rep.err.msg);
			return CLI_EXIT_NO_DAEMON;
		}
		if (rep.err.code == ORCH_RPC_DENIED) {
			fprintf(stderr, "orch: %s\n", rep.err.msg);
			return CLI_EXIT_NO_DAEMON;
		}
		fprintf(stderr, "orch: %s\n", rep.err.msg);
		return rep.err.code == ORCH_RPC_NOT_FOUND ? CLI_EXIT_NOT_FOUND : CLI_EXIT_ERROR;
	}
	if (ret_result)
		*ret_result = rep.result;
	else
		json_decref(rep.result);
	return 0;
}

void cli_print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s) {
		puts(s);
		free(s);
	}
}

int cli_parse_id(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0) {
		fprintf(stderr, "orch: '%s' is not a task id (a positive number)\n", s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static void write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void cli_write_output(struct cli *c, json_t *params)
{
	const char *data = NULL, *stream = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;

	if (c->json) {
		cli_print_json(params);
		fflush(stdout);
		return;
	}
	if (json_unpack(params, "{s:s, s:s}", "data", &data, "stream", &stream) < 0)
		return;
	json_int_t attempt = json_integer_value(json_object_get(params, "attempt"));
	if (attempt > 0 && attempt != c->shown_attempt) {
		fflush(stdout);
		fprintf(stderr, "--- attempt %lld ---\n", (long long)attempt);
		c->shown_attempt = attempt;
	}
	if (orch_b64_decode(data, strlen(data), &buf, &len) < 0)
		return;
	if (c->render && strcmp(stream, "stdout") == 0) {
		fflush(stderr);
		cli_render_feed(c->render, (const char *)buf, len);
		free(buf);
		return;
	}
	fflush(stdout);
	int fd = strcmp(stream, "stderr") == 0 ? 2 : 1;
	if (isatty(fd)) /* a guest's bytes must not drive the operator's terminal */
		cli_write_visible(fd, buf, len, CLI_VISIBLE_LINES | CLI_VISIBLE_SGR);
	else
		write_all(fd, buf, len);
	free(buf);
}

int cli_task_exit_code(json_t *task)
{
	const char *state = json_string_value(json_object_get(task, "state"));
	json_t *code = json_object_get(task, "exit_code");
	json_t *sig = json_object_get(task, "signal");

	if (!state)
		return CLI_EXIT_ERROR;
	if (json_is_integer(code))
		return (int)(json_integer_value(code) & 0xff);
	if (strcmp(state, "timed_out") == 0)
		return CLI_EXIT_TIMED_OUT;
	if (strcmp(state, "cancelled") == 0)
		return CLI_EXIT_CANCELLED;
	if (strcmp(state, "lost") == 0)
		return CLI_EXIT_LOST;
	if (json_is_integer(sig) && json_integer_value(sig) > 0)
		return 128 + (int)(json_integer_value(sig) & 0x7f);
	return CLI_EXIT_NEVER_RAN;
}

int cli_parse_duration_ms(const char *s, int64_t *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		;
	else if (*end == 0 || strcmp(end, "s") == 0)
		v *= 1000;
	else if (strcmp(end, "m") == 0)
		v *= 60000;
	else if (strcmp(end, "h") == 0)
		v *= 3600000;
	else
		return -EINVAL;
	if (v > 604800000.0)
		return -ERANGE;
	*ret = (int64_t)v;
	return 0;
}

int cli_common_opt(struct cli *c, int opt, void (*usage)(FILE *f))
{
	switch (opt) {
	case 'j':
		c->json = true;
		return CLI_GO_ON;
	case 'h':
		usage(stdout);
		return 0;
	default:
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
}

int cli_simple_args(struct cli *c, int argc, char **argv, const char *synopsis, const char *help,
		    const char **ret_arg)
{
	const char *arg = NULL;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0)
			c->json = true;
		else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			printf("Usage: orch %s%s\n%s", argv[0], synopsis, help);
			return 0;
		} else if (ret_arg && !arg)
			arg = argv[a];
		else {
			fprintf(stderr, "orch %s: unexpected argument '%s'\n", argv[0], argv[a]);
			return CLI_EXIT_USAGE;
		}
	}
	if (ret_arg)
		*ret_arg = arg;
	return CLI_GO_ON;
}

int cli_id_args(struct cli *c, int argc, char **argv, const char *help, int64_t *ret_id)
{
	const char *idarg;
	int r;

	r = cli_simple_args(c, argc, argv, " [--json] ID", help, &idarg);
	if (r != CLI_GO_ON)
		return r;
	if (!idarg || cli_parse_id(idarg, ret_id) < 0) {
		fprintf(stderr, "Usage: orch %s [--json] ID\n", argv[0]);
		return CLI_EXIT_USAGE;
	}
	return CLI_GO_ON;
}

void cli_print_vm_header(void)
{
	printf("%-16s %-8s %-9s %s\n", "VM", "BACKEND", "STATE", "SLOTS (agent:task)");
}

void cli_print_vm(json_t *vm)
{
	size_t j;
	json_t *slot;

	printf("%-16s %-8s %-9s", json_string_value(json_object_get(vm, "name")),
	       json_string_value(json_object_get(vm, "backend")),
	       json_string_value(json_object_get(vm, "state")));
	json_array_foreach(json_object_get(vm, "slots"), j, slot)
	{
		json_t *t = json_object_get(slot, "task");
		if (json_is_integer(t))
			printf(" %zu:%lld", j, (long long)json_integer_value(t));
		else
			printf(" %zu:-", j);
	}
	if (json_is_string(json_object_get(vm, "last_error"))) {
		char *e = cli_visible_str(json_string_value(json_object_get(vm, "last_error")));
		printf("  (%s)", e ? e : "?");
		free(e);
	}
	printf("\n");
}

int cli_self_path(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);

	if (n < 0)
		return -errno;
	if (n == 0)
		return -ENOENT;
	buf[n] = 0;
	return 0;
}

void cli_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}
