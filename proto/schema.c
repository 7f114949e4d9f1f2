/* SPDX-License-Identifier: Apache-2.0 */
/* hello, heartbeat and task.* messages (docs/PROTOCOL.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "schema-internal.h"
#include "schema.h"

#define MAX_PROTOCOL 1000
#define MAX_TIMEOUT_MS (INT64_C(30) * 24 * 3600 * 1000) /* 30 days */
#define MAX_GRACE_MS 600000

/* ---- hello ---- */

int orch_hello_parse(json_t *params, struct orch_hello *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"protocol", M_INT, true},	{"supervisor", M_STR, true},
		{"slots", M_INT, true},		{"boot_id", M_STR, true},
		{"capabilities", M_OBJ, false}, {"running", M_ARR, false},
	};
	struct orch_hello h = {0};
	json_t *sup = NULL, *running = NULL, *v;
	json_int_t protocol, slots;
	size_t i;
	int r;

	if ((r = check_members(params, "hello", m, ELEMENTSOF(m), err)) < 0)
		return r;
	if ((r = strict_unpack(params, "hello", err, "{s:I,s:o,s:I,s:s,s?o,s?o}", "protocol",
			       &protocol, "supervisor", &sup, "slots", &slots, "boot_id",
			       &h.boot_id, "capabilities", &h.capabilities, "running", &running)) <
	    0)
		return r;
	if ((r = check_range("hello", "protocol", protocol, 1, MAX_PROTOCOL, err)) < 0 ||
	    (r = check_string("hello", "supervisor", sup, 64, false, err)) < 0 ||
	    (r = check_range("hello", "slots", slots, 1, ORCH_MAX_SLOTS, err)) < 0 ||
	    (r = check_id("hello", "boot_id", h.boot_id, err)) < 0)
		return r;
	h.protocol = protocol;
	h.supervisor = json_string_value(sup);
	h.slots = slots;
	if (running && json_array_size(running) > (size_t)slots)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"hello: member 'running' lists more tasks than slots");
	if (running && json_array_size(running) > 0) {
		h.running = calloc(json_array_size(running), sizeof(*h.running));
		if (!h.running)
			return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "hello: out of memory");
	}
	json_array_foreach(running, i, v)
	{
		static const struct member rm[] = {{"task", M_STR, true}, {"slot", M_INT, true}};
		json_int_t slot;
		const char *task;
		if ((r = check_members(v, "hello.running[]", rm, ELEMENTSOF(rm), err)) < 0 ||
		    (r = strict_unpack(v, "hello.running[]", err, "{s:s,s:I}", "task", &task,
				       "slot", &slot)) < 0 ||
		    (r = check_id("hello.running[]", "task", task, err)) < 0 ||
		    (r = check_range("hello.running[]", "slot", slot, 0, slots - 1, err)) < 0) {
			free(h.running);
			return r;
		}
		for (size_t j = 0; j < h.n_running; j++)
			if (h.running[j].slot == slot || strcmp(h.running[j].task, task) == 0) {
				free(h.running);
				return orch_err(err, ORCH_RPC_INVALID_PARAMS,
						"hello: member 'running' repeats a slot or task");
			}
		h.running[h.n_running].task = task;
		h.running[h.n_running].slot = slot;
		h.n_running++;
	}
	*ret = h;
	return 0;
}

void orch_hello_done(struct orch_hello *h)
{
	if (!h)
		return;
	free(h->running);
	h->running = NULL;
	h->n_running = 0;
}

json_t *orch_hello_build(const struct orch_hello *h)
{
	json_t *running = json_array();

	if (!running)
		return NULL;
	for (size_t i = 0; i < h->n_running; i++)
		if (json_array_append_new(running,
					  json_pack("{s:s,s:I}", "task", h->running[i].task, "slot",
						    (json_int_t)h->running[i].slot)) < 0) {
			json_decref(running);
			return NULL;
		}
	return json_pack(
		"{s:I,s:s,s:I,s:s,s:o,s:o}", "protocol", (json_int_t)h->protocol, "supervisor",
		h->supervisor, "slots", (json_int_t)h->slots, "boot_id", h->boot_id, "capabilities",
		h->capabilities ? json_incref(h->capabilities) : json_object(), "running", running);
}

int orch_hello_reply_parse(json_t *result, struct orch_hello_reply *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"protocol", M_INT, true}, {"heartbeat_ms", M_INT, true}, {"name", M_STR, true}};
	json_int_t protocol, hb;
	json_t *name;
	int r;

	if ((r = check_members(result, "hello result", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(result, "hello result", err, "{s:I,s:I,s:o}", "protocol", &protocol,
			       "heartbeat_ms", &hb, "name", &name)) < 0 ||
	    (r = check_range("hello result", "protocol", protocol, 1, MAX_PROTOCOL, err)) < 0 ||
	    (r = check_range("hello result", "heartbeat_ms", hb, 100, 600000, err)) < 0 ||
	    (r = check_id("hello result", "name", json_string_value(name), err)) < 0)
		return r;
	ret->protocol = protocol;
	ret->heartbeat_ms = hb;
	ret->name = json_string_value(name);
	return 0;
}

json_t *orch_hello_reply_build(const struct orch_hello_reply *r)
{
	return json_pack("{s:I,s:I,s:s}", "protocol", (json_int_t)r->protocol, "heartbeat_ms",
			 (json_int_t)r->heartbeat_ms, "name", r->name);
}

/* ---- heartbeat ---- */

int orch_heartbeat_parse(json_t *params, struct orch_heartbeat *ret, struct orch_error *err)
{
	static const struct member m[] = {{"seq", M_INT, true}, {"running", M_INT, true}};
	json_int_t seq, running;
	int r;

	if ((r = check_members(params, "heartbeat", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "heartbeat", err, "{s:I,s:I}", "seq", &seq, "running",
			       &running)) < 0 ||
	    (r = check_range("heartbeat", "seq", seq, 0, ORCH_MAX_SEQ, err)) < 0 ||
	    (r = check_range("heartbeat", "running", running, 0, ORCH_MAX_SLOTS, err)) < 0)
		return r;
	ret->seq = seq;
	ret->running = running;
	return 0;
}

json_t *orch_heartbeat_build(const struct orch_heartbeat *h)
{
	return json_pack("{s:I,s:I}", "seq", (json_int_t)h->seq, "running", (json_int_t)h->running);
}

/* ---- task.run ---- */

static int parse_limits(json_t *l, struct orch_limits *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"memory_bytes", M_INT, false}, {"pids", M_INT, false},
		{"cpu_percent", M_INT, false},	{"nofile", M_INT, false},
		{"fsize_bytes", M_INT, false},
	};
	json_int_t mem = 0, pids = 0, cpu = 0, nofile = 0, fsize = 0;
	const char *w = "task.run.limits";
	int r;

	if ((r = check_members(l, w, m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(l, w, err, "{s?I,s?I,s?I,s?I,s?I}", "memory_bytes", &mem, "pids",
			       &pids, "cpu_percent", &cpu, "nofile", &nofile, "fsize_bytes",
			       &fsize)) < 0 ||
	    (r = check_range(w, "memory_bytes", mem, 0, INT64_C(1) << 50, err)) < 0 ||
	    (r = check_range(w, "pids", pids, 0, 1 << 22, err)) < 0 ||
	    (r = check_range(w, "cpu_percent", cpu, 0, 100 * 1024, err)) < 0 ||
	    (r = check_range(w, "nofile", nofile, 0, 1 << 20, err)) < 0 ||
	    (r = check_range(w, "fsize_bytes", fsize, 0, INT64_C(1) << 62, err)) < 0)
		return r;
	*ret = (struct orch_limits){mem, pids, cpu, nofile, fsize};
	return 0;
}

static int parse_env(json_t *env, struct orch_task_run *r, struct orch_error *err)
{
	const char *k;
	json_t *v;
	size_t n = 0;
	int q;

	if (json_object_size(env) > ORCH_MAX_ENV)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"task.run: member 'env' has more than %d variables", ORCH_MAX_ENV);
	r->env = calloc(json_object_size(env) + 1, sizeof(char *));
	if (!r->env)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "task.run: out of memory");
	json_object_foreach(env, k, v)
	{
		char *kv;
		if (!orch_env_name_valid(k))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"task.run: member 'env' has an invalid name '%.64s' "
					"([A-Za-z_][A-Za-z0-9_]*, at most %d bytes)",
					k, ORCH_MAX_ENV_KEY_LEN);
		if ((q = check_string("task.run", "env", v, ORCH_MAX_ARG_LEN, true, err)) < 0)
			return q;
		if (asprintf(&kv, "%s=%s", k, json_string_value(v)) < 0)
			return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "task.run: out of memory");
		r->env[n++] = kv;
		r->n_env = n;
	}
	return 0;
}

bool orch_path_normalised(const char *p)
{
	if (!p || p[0] != '/' || p[1] == '\0')
		return false;
	for (const char *c = p; *c;) {
		/* c is at a '/': the component after it must be non-empty, not "." or "..". */
		const char *n = c + 1, *e = strchrnul(n, '/');
		size_t len = (size_t)(e - n);
		if (len == 0 || (len == 1 && n[0] == '.') ||
		    (len == 2 && n[0] == '.' && n[1] == '.'))
			return false;
		c = e;
	}
	return true;
}

bool orch_paths_overlap(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (strcmp(a, "/") == 0 || strcmp(b, "/") == 0)
		return true;
	if (strncmp(a, b, la < lb ? la : lb) != 0)
		return false;
	return la == lb || (la < lb ? b[la] == '/' : a[lb] == '/');
}

bool orch_workspace_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64 || name[0] == '_' || name[0] == '-')
		return false;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') ||
		      *name == '_' || *name == '-'))
			return false;
	return true;
}

static int parse_ro_paths(json_t *a, struct orch_task_run *t, struct orch_error *err)
{
	json_t *v;
	size_t i;
	int r;

	if (json_array_size(a) > ORCH_MAX_RO_PATHS)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"task.run: member 'ro_paths' has more than %d paths",
				ORCH_MAX_RO_PATHS);
	json_array_foreach(a, i, v)
	{
		if ((r = check_string("task.run", "ro_paths", v, ORCH_MAX_PATH_LEN, false, err)) <
		    0)
			return r;
		if (!orch_path_normalised(json_string_value(v)))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"task.run: ro_paths entry '%.128s' is not an absolute, "
					"normalised path other than /",
					json_string_value(v));
	}
	t->ro_paths = calloc(json_array_size(a) + 1, sizeof(char *));
	if (!t->ro_paths)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "task.run: out of memory");
	json_array_foreach(a, i, v) t->ro_paths[i] = json_string_value(v);
	t->n_ro_paths = json_array_size(a);
	return 0;
}

int orch_task_run_parse(json_t *params, struct orch_task_run *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"task", M_STR, true},	  {"slot", M_INT, true},      {"argv", M_ARR, true},
		{"env", M_OBJ, false},	  {"cwd", M_STR, false},      {"timeout_ms", M_INT, false},
		{"limits", M_OBJ, false}, {"ro_paths", M_ARR, false}, {"workspace", M_STR, false},
	};
	struct orch_task_run t = {0};
	json_t *argv, *env = NULL, *cwd = NULL, *limits = NULL, *ro = NULL, *ws = NULL, *v;
	json_int_t slot, timeout = 0;
	size_t i;
	int r;

	if ((r = check_members(params, "task.run", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "task.run", err, "{s:s,s:I,s:o,s?o,s?o,s?I,s?o,s?o,s?o}",
			       "task", &t.task, "slot", &slot, "argv", &argv, "env", &env, "cwd",
			       &cwd, "timeout_ms", &timeout, "limits", &limits, "ro_paths", &ro,
			       "workspace", &ws)) < 0 ||
	    (r = check_id("task.run", "task", t.task, err)) < 0 ||
	    (r = check_range("task.run", "slot", slot, 0, ORCH_MAX_SLOTS - 1, err)) < 0 ||
	    (r = check_range("task.run", "timeout_ms", timeout, 0, MAX_TIMEOUT_MS, err)) < 0)
		return r;
	t.slot = slot;
	t.timeout_ms = timeout;
	if (json_array_size(argv) < 1 || json_array_size(argv) > ORCH_MAX_ARGV)
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"task.run: member 'argv' must hold 1..%d strings", ORCH_MAX_ARGV);
	if (cwd) {
		if ((r = check_string("task.run", "cwd", cwd, ORCH_MAX_PATH_LEN, false, err)) < 0)
			return r;
		if (json_string_value(cwd)[0] != '/')
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"task.run: member 'cwd' must be an absolute path");
		t.cwd = json_string_value(cwd);
	}
	if (ws) {
		if ((r = check_string("task.run", "workspace", ws, 64, false, err)) < 0)
			return r;
		if (!orch_workspace_name_valid(json_string_value(ws)))
			return orch_err(err, ORCH_RPC_INVALID_PARAMS,
					"task.run: member 'workspace' must match "
					"[a-z0-9][a-z0-9_-]{0,63}");
		t.workspace = json_string_value(ws);
	}
	if (limits && (r = parse_limits(limits, &t.limits, err)) < 0)
		return r;
	json_array_foreach(argv, i, v)
	{
		if ((r = check_string("task.run", "argv", v, ORCH_MAX_ARG_LEN, i > 0, err)) < 0)
			return r;
	}
	t.argv = calloc(json_array_size(argv) + 1, sizeof(char *));
	if (!t.argv)
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "task.run: out of memory");
	json_array_foreach(argv, i, v) t.argv[i] = json_string_value(v);
	t.argc = json_array_size(argv);
	if (env && (r = parse_env(env, &t, err)) < 0) {
		orch_task_run_done(&t);
		return r;
	}
	if (!t.env && !(t.env = calloc(1, sizeof(char *)))) {
		orch_task_run_done(&t);
		return orch_err(err, ORCH_RPC_INTERNAL_ERROR, "task.run: out of memory");
	}
	if (ro && (r = parse_ro_paths(ro, &t, err)) < 0) {
		orch_task_run_done(&t);
		return r;
	}
	*ret = t;
	return 0;
}

void orch_task_run_done(struct orch_task_run *r)
{
	if (!r)
		return;
	free(r->argv);
	r->argv = NULL;
	if (r->env)
		for (size_t i = 0; i < r->n_env; i++)
			free((char *)r->env[i]);
	free(r->env);
	r->env = NULL;
	free(r->ro_paths);
	r->ro_paths = NULL;
	r->argc = r->n_env = r->n_ro_paths = 0;
}

json_t *orch_task_run_build(const struct orch_task_run *r)
{
	_cleanup_json_ json_t *argv = json_array(), *env = json_object(), *msg = NULL;

	if (!argv || !env)
		return NULL;
	for (size_t i = 0; i < r->argc; i++)
		if (json_array_append_new(argv, json_string(r->argv[i])) < 0)
			return NULL;
	for (size_t i = 0; i < r->n_env; i++) {
		const char *eq = strchr(r->env[i], '=');
		_cleanup_free_ char *k = NULL;
		if (!eq)
			return NULL;
		k = strndup(r->env[i], (size_t)(eq - r->env[i]));
		if (!k || json_object_set_new(env, k, json_string(eq + 1)) < 0)
			return NULL;
	}
	msg = json_pack("{s:s,s:I,s:O,s:O,s:I,s:{s:I,s:I,s:I,s:I,s:I}}", "task", r->task, "slot",
			(json_int_t)r->slot, "argv", argv, "env", env, "timeout_ms",
			(json_int_t)r->timeout_ms, "limits", "memory_bytes",
			(json_int_t)r->limits.memory_bytes, "pids", (json_int_t)r->limits.pids,
			"cpu_percent", (json_int_t)r->limits.cpu_percent, "nofile",
			(json_int_t)r->limits.nofile, "fsize_bytes",
			(json_int_t)r->limits.fsize_bytes);
	if (msg && r->cwd && json_object_set_new(msg, "cwd", json_string(r->cwd)) < 0)
		return NULL;
	if (msg && r->workspace &&
	    json_object_set_new(msg, "workspace", json_string(r->workspace)) < 0)
		return NULL;
	if (msg && r->n_ro_paths) {
		json_t *ro = json_array();
		if (!ro || json_object_set_new(msg, "ro_paths", ro) < 0)
			return NULL;
		for (size_t i = 0; i < r->n_ro_paths; i++)
			if (json_array_append_new(ro, json_string(r->ro_paths[i])) < 0)
				return NULL;
	}
	return TAKE_PTR(msg);
}

/* ---- task.output ---- */

int orch_task_output_parse(json_t *params, struct orch_task_output *ret, struct orch_error *err)
{
	static const struct member m[] = {{"task", M_STR, true},
					  {"seq", M_INT, true},
					  {"stream", M_STR, true},
					  {"data", M_STR, true}};
	struct orch_task_output o = {0};
	const char *stream;
	json_t *data;
	json_int_t seq;
	int r;

	if ((r = check_members(params, "task.output", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "task.output", err, "{s:s,s:I,s:s,s:o}", "task", &o.task,
			       "seq", &seq, "stream", &stream, "data", &data)) < 0 ||
	    (r = check_id("task.output", "task", o.task, err)) < 0 ||
	    (r = check_range("task.output", "seq", seq, 0, ORCH_MAX_SEQ, err)) < 0)
		return r;
	if (strcmp(stream, "stdout") == 0)
		o.stream = ORCH_STREAM_STDOUT;
	else if (strcmp(stream, "stderr") == 0)
		o.stream = ORCH_STREAM_STDERR;
	else
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"task.output: member 'stream' must be \"stdout\" or \"stderr\"");
	if ((r = decode_b64_field("task.output", "data", data, ORCH_MAX_OUTPUT_CHUNK, &o.data,
				  &o.len, err)) < 0)
		return r;
	if (o.len == 0) { /* an empty chunk says nothing and would cost a store row */
		free(o.data);
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"task.output: member 'data' must not be empty");
	}
	o.seq = seq;
	*ret = o;
	return 0;
}

void orch_task_output_done(struct orch_task_output *o)
{
	if (!o)
		return;
	free(o->data);
	o->data = NULL;
	o->len = 0;
}

json_t *orch_task_output_build(const char *task, int64_t seq, enum orch_stream stream,
			       const void *data, size_t len)
{
	_cleanup_free_ char *b64 = orch_b64_encode(data, len);

	if (!b64)
		return NULL;
	return json_pack("{s:s,s:I,s:s,s:s}", "task", task, "seq", (json_int_t)seq, "stream",
			 stream == ORCH_STREAM_STDERR ? "stderr" : "stdout", "data", b64);
}

/* ---- task.exit ---- */

static const char *const exit_names[] = {
	[ORCH_EXIT_EXITED] = "exited",	     [ORCH_EXIT_SIGNALED] = "signaled",
	[ORCH_EXIT_TIMED_OUT] = "timed_out", [ORCH_EXIT_CANCELLED] = "cancelled",
	[ORCH_EXIT_FAILED] = "failed",
};

const char *orch_exit_status_name(enum orch_exit_status s)
{
	if ((size_t)s < ELEMENTSOF(exit_names) && exit_names[s])
		return exit_names[s];
	return "unknown";
}

int orch_task_exit_parse(json_t *params, struct orch_task_exit *ret, struct orch_error *err)
{
	static const struct member m[] = {
		{"task", M_STR, true},	       {"status", M_STR, true},
		{"exit_code", M_INT, false},   {"signal", M_INT, false},
		{"duration_ms", M_INT, false}, {"output_seq", M_INT, false},
		{"rusage", M_OBJ, false},      {"reason", M_STR, false},
	};
	static const struct member rm[] = {
		{"utime_ms", M_INT, true}, {"stime_ms", M_INT, true}, {"maxrss_kb", M_INT, true}};
	struct orch_task_exit e = {0};
	const char *status;
	json_int_t code = -1, sig = 0, dur = 0, oseq = 0, ut = 0, st = 0, rss = 0;
	json_t *rusage = NULL, *reason = NULL;
	size_t i;
	int r;

	if ((r = check_members(params, "task.exit", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "task.exit", err, "{s:s,s:s,s?I,s?I,s?I,s?I,s?o,s?o}",
			       "task", &e.task, "status", &status, "exit_code", &code, "signal",
			       &sig, "duration_ms", &dur, "output_seq", &oseq, "rusage", &rusage,
			       "reason", &reason)) < 0 ||
	    (r = check_id("task.exit", "task", e.task, err)) < 0)
		return r;
	for (i = 1; i < ELEMENTSOF(exit_names); i++)
		if (strcmp(status, exit_names[i]) == 0)
			break;
	if (i == ELEMENTSOF(exit_names))
		return orch_err(err, ORCH_RPC_INVALID_PARAMS,
				"task.exit: member 'status' must be one of exited, signaled, "
				"timed_out, cancelled, failed");
	e.status = (enum orch_exit_status)i;
	if ((r = check_range("task.exit", "exit_code", code, e.status == ORCH_EXIT_EXITED ? 0 : -1,
			     e.status == ORCH_EXIT_EXITED ? 255 : -1, err)) < 0 ||
	    (r = check_range("task.exit", "signal", sig, e.status == ORCH_EXIT_SIGNALED ? 1 : 0, 64,
			     err)) < 0 ||
	    (r = check_range("task.exit", "duration_ms", dur, 0, INT64_MAX, err)) < 0 ||
	    (r = check_range("task.exit", "output_seq", oseq, 0, INT64_MAX, err)) < 0)
		return r;
	if (rusage) {
		const char *w = "task.exit.rusage";
		if ((r = check_members(rusage, w, rm, ELEMENTSOF(rm), err)) < 0 ||
		    (r = strict_unpack(rusage, w, err, "{s:I,s:I,s:I}", "utime_ms", &ut, "stime_ms",
				       &st, "maxrss_kb", &rss)) < 0 ||
		    (r = check_range(w, "utime_ms", ut, 0, INT64_MAX, err)) < 0 ||
		    (r = check_range(w, "stime_ms", st, 0, INT64_MAX, err)) < 0 ||
		    (r = check_range(w, "maxrss_kb", rss, 0, INT64_MAX, err)) < 0)
			return r;
	}
	if (reason &&
	    (r = check_string("task.exit", "reason", reason, ORCH_MAX_REASON_LEN, true, err)) < 0)
		return r;
	e.exit_code = code;
	e.signal = sig;
	e.duration_ms = dur;
	e.output_seq = oseq;
	e.rusage = (struct orch_rusage){ut, st, rss};
	e.reason = reason ? json_string_value(reason) : "";
	*ret = e;
	return 0;
}

json_t *orch_task_exit_build(const struct orch_task_exit *e)
{
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},s:s}", "task", e->task, "status",
			 orch_exit_status_name(e->status), "exit_code", (json_int_t)e->exit_code,
			 "signal", (json_int_t)e->signal, "duration_ms", (json_int_t)e->duration_ms,
			 "output_seq", (json_int_t)e->output_seq, "rusage", "utime_ms",
			 (json_int_t)e->rusage.utime_ms, "stime_ms", (json_int_t)e->rusage.stime_ms,
			 "maxrss_kb", (json_int_t)e->rusage.maxrss_kb, "reason",
			 e->reason ? e->reason : "");
}

/* ---- task.cancel ---- */

int orch_task_cancel_parse(json_t *params, struct orch_task_cancel *ret, struct orch_error *err)
{
	static const struct member m[] = {{"task", M_STR, true}, {"grace_ms", M_INT, false}};
	const char *task;
	json_int_t grace = 2000;
	int r;

	if ((r = check_members(params, "task.cancel", m, ELEMENTSOF(m), err)) < 0 ||
	    (r = strict_unpack(params, "task.cancel", err, "{s:s,s?I}", "task", &task, "grace_ms",
			       &grace)) < 0 ||
	    (r = check_id("task.cancel", "task", task, err)) < 0 ||
	    (r = check_range("task.cancel", "grace_ms", grace, 0, MAX_GRACE_MS, err)) < 0)
		return r;
	ret->task = task;
	ret->grace_ms = grace;
	return 0;
}

json_t *orch_task_cancel_build(const struct orch_task_cancel *c)
{
	return json_pack("{s:s,s:I}", "task", c->task, "grace_ms", (json_int_t)c->grace_ms);
}
