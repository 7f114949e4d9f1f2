/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "jail.h"
#include "extras.h"
#include "log.h"
#include "spawn.h"
#include "shell-supervisor.h"
#include "task.h"
#include "transcript.h"
#include "strv.h"

struct sv_chunk {
	struct sv_chunk *next;
	int64_t seq;
	enum orch_stream stream;
	size_t len;
	unsigned char data[];
};

struct sv_task {
	struct supervisor *sv;
	struct sv_slot *slot;
	char id[ORCH_MAX_ID_LEN + 1];
	char argv0[256];
	uint64_t start_ms;
	int64_t timeout_ms;

	struct sv_spawned sp;
	struct orch_io *io[2]; /* stdout, stderr */
	struct orch_io *status_io, *pid_io;
	bool eof[2], status_eof, reaped;
	int wait_status;
	struct rusage ru;
	char status[64];
	size_t status_len;

	struct sv_chunk *head, *tail;
	size_t pending;
	int64_t next_seq;
	bool paused;

	struct orch_timer *timeout, *grace;
	bool cancelled, timed_out;
	int kill_signal;
	int transcript;
	char reason[ORCH_MAX_REASON_LEN]; /* set when the jail could not be built */
};

const char *sv_task_id(const struct sv_task *t)
{
	return t->id;
}

struct sv_task *sv_task_find(struct supervisor *sv, const char *id)
{
	for (unsigned i = 0; i < sv->cfg->slots; i++)
		if (sv->slots[i].task && strcmp(sv->slots[i].task->id, id) == 0)
			return sv->slots[i].task;
	return NULL;
}

static void task_free(struct sv_task *t)
{
	orch_io_free(t->io[0]);
	orch_io_free(t->io[1]);
	orch_io_free(t->status_io);
	orch_io_free(t->pid_io);
	int fds[] = {t->sp.out_fd, t->sp.err_fd, t->sp.status_fd, t->sp.pidfd};
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	orch_timer_free(t->timeout);
	orch_timer_free(t->grace);
	while (t->head) {
		struct sv_chunk *c = t->head;
		t->head = c->next;
		free(c);
	}
	if (t->transcript >= 0)
		close(t->transcript);
	if (t->slot->task == t) {
		t->slot->task = NULL;
		sv_extras_set_task(t->sv, t->slot, NULL);
	}
	free(t);
}

static void kill_tree(struct sv_task *t)
{
	if (t->sp.pid <= 0 || t->reaped)
		return;
	t->kill_signal = SIGKILL;
	/* Only what this supervisor started: the slot's cgroup (its own directory) and the
	 * jail's pid namespace, never a uid (other supervisors may use the same ones). */
	(void)sv_cgroup_kill(&t->slot->cgroup);
	(void)sv_signal_jail(t->sp.pid, SIGKILL);
	/* bwrap's monitor dies; its child (pid 1 of the jail's pid namespace) follows through
	 * --die-with-parent, which takes every process in the namespace with it. */
	kill(t->sp.pid, SIGKILL);
}

static int parse_status(const struct sv_task *t, const char *word, int *ret)
{
	size_t wl = strlen(word);
	if (t->status_len <= wl + 1 || strncmp(t->status, word, wl) != 0 || t->status[wl] != ' ')
		return -ENOENT;
	char *end;
	long v = strtol(t->status + wl + 1, &end, 10);
	if (*end != '\n' || v < 0 || v > 4095)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int64_t ms_of(const struct timeval *tv)
{
	return (int64_t)tv->tv_sec * 1000 + tv->tv_usec / 1000;
}

static void finish(struct sv_task *t)
{
	struct orch_task_exit e = {
		.task = t->id,
		.exit_code = -1,
		.duration_ms = (int64_t)(orch_now_ms() - t->start_ms),
		.output_seq = t->next_seq,
		.rusage = {ms_of(&t->ru.ru_utime), ms_of(&t->ru.ru_stime), t->ru.ru_maxrss},
	};
	char reason[ORCH_MAX_REASON_LEN] = "";
	int v;
	if (t->reason[0]) {
		e.status = ORCH_EXIT_FAILED;
		snprintf(reason, sizeof(reason), "%s", t->reason);
	} else if (t->timed_out) {
		e.status = ORCH_EXIT_TIMED_OUT;
		e.signal = t->kill_signal;
		snprintf(reason, sizeof(reason), "timed out after %" PRId64 " ms", t->timeout_ms);
	} else if (t->cancelled) {
		e.status = ORCH_EXIT_CANCELLED;
		e.signal = t->kill_signal ? t->kill_signal : SIGTERM;
		snprintf(reason, sizeof(reason), "cancelled");
	} else if (parse_status(t, "exec", &v) == 0) {
		e.status = ORCH_EXIT_FAILED;
		snprintf(reason, sizeof(reason), "cannot execute '%s': %s", t->argv0, strerror(v));
	} else if (parse_status(t, "exited", &v) == 0 && v <= 255) {
		e.status = ORCH_EXIT_EXITED;
		e.exit_code = v;
	} else if (parse_status(t, "signaled", &v) == 0 && v > 0 && v < 65) {
		e.status = ORCH_EXIT_SIGNALED;
		e.signal = v;
		snprintf(reason, sizeof(reason), "killed by signal %d (%s)", v, strsignal(v));
	} else if (WIFEXITED(t->wait_status)) {
		e.status = ORCH_EXIT_FAILED;
		snprintf(reason, sizeof(reason),
			 "the jail could not be built (bwrap exited with %d; see stderr)",
			 WEXITSTATUS(t->wait_status));
	} else {
		e.status = ORCH_EXIT_SIGNALED;
		e.signal = WIFSIGNALED(t->wait_status) ? WTERMSIG(t->wait_status) : SIGKILL;
		snprintf(reason, sizeof(reason), "the jail was killed by signal %d", (int)e.signal);
	}
	e.reason = reason;

	json_t *params = orch_task_exit_build(&e);
	if (t->transcript >= 0)
		(void)sv_transcript_write(
			t->transcript, "exit",
			json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "task", t->id, "status",
				  orch_exit_status_name(e.status), "exit_code",
				  (json_int_t)e.exit_code, "signal", (json_int_t)e.signal,
				  "duration_ms", (json_int_t)e.duration_ms, "output_seq",
				  (json_int_t)e.output_seq, "reason", reason));
	orch_log(ORCH_LOG_INFO, "task", "task finished", "task", t->id, "status",
		 orch_exit_status_name(e.status), "reason", reason, NULL);
	struct supervisor *sv = t->sv;
	char id[sizeof(t->id)];
	memcpy(id, t->id, sizeof(id));
	task_free(t);
	if (params)
		sv_exit_queue(sv, id, params);
}

static void maybe_finish(struct sv_task *t)
{
	if (t->reason[0] && t->sp.pid <= 0) {
		finish(t);
		return;
	}
	if (t->reaped && t->eof[0] && t->eof[1] && t->status_eof && !t->head)
		finish(t);
}

static void output_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data);

static void set_paused(struct sv_task *t, bool paused)
{
	if (t->paused == paused)
		return;
	t->paused = paused;
	for (int i = 0; i < 2; i++) {
		if (t->eof[i])
			continue;
		/* Not watched at all while paused: a hung-up pipe would otherwise keep
		 * reporting EPOLLHUP. */
		if (paused) {
			orch_io_free(t->io[i]);
			t->io[i] = NULL;
		} else if (orch_io_add(t->sv->loop, i == 0 ? t->sp.out_fd : t->sp.err_fd, EPOLLIN,
				       output_cb, t, &t->io[i]) < 0) {
			t->io[i] = NULL;
			t->eof[i] = true; /* cannot watch it: treat as closed */
		}
	}
}

void sv_task_flush(struct sv_task *t)
{
	struct supervisor *sv = t->sv;
	while (t->head && sv_channel_ready(sv)) {
		struct sv_chunk *c = t->head;
		json_t *p = orch_task_output_build(t->id, c->seq, c->stream, c->data, c->len);
		if (!p)
			break;
		int r = orch_rpc_notify(sv->rpc, "task.output", p);
		if (r < 0)
			break; /* -ENOBUFS: the drain callback brings us back */
		t->head = c->next;
		if (!t->head)
			t->tail = NULL;
		t->pending -= c->len + sizeof(*c);
		free(c);
	}
	if (t->pending < sv->cfg->output_buffer)
		set_paused(t, false);
	maybe_finish(t);
}

static void close_stream(struct sv_task *t, int i)
{
	orch_io_free(t->io[i]);
	t->io[i] = NULL;
	t->eof[i] = true;
}

/* Reads stream i until it would block, hits EOF or the buffer is full. */
static void read_stream(struct sv_task *t, int i)
{
	struct supervisor *sv = t->sv;
	int fd = i == 0 ? t->sp.out_fd : t->sp.err_fd;
	unsigned char buf[ORCH_MAX_OUTPUT_CHUNK];
	size_t chunk = sv->cfg->output_chunk < sizeof(buf) ? sv->cfg->output_chunk : sizeof(buf);

	while (!t->eof[i] && t->pending < sv->cfg->output_buffer) {
		ssize_t n = read(fd, buf, chunk);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				break;
			close_stream(t, i);
			break;
		}
		/* Sized to the data: many small writes cannot inflate memory beyond the
		 * bound, which also counts each chunk's overhead. */
		struct sv_chunk *c = malloc(sizeof(*c) + (size_t)n);
		if (!c)
			break;
		memcpy(c->data, buf, (size_t)n);
		c->len = (size_t)n;
		c->seq = t->next_seq++;
		c->stream = i == 0 ? ORCH_STREAM_STDOUT : ORCH_STREAM_STDERR;
		c->next = NULL;
		if (t->tail)
			t->tail->next = c;
		else
			t->head = c;
		t->tail = c;
		t->pending += c->len + sizeof(*c);
		if (t->transcript >= 0)
			(void)sv_transcript_write(t->transcript, "output",
						  json_pack("{s:s, s:I, s:s, s:I}", "task", t->id,
							    "seq", (json_int_t)c->seq, "stream",
							    i == 0 ? "stdout" : "stderr", "bytes",
							    (json_int_t)c->len));
	}
	if (t->pending >= sv->cfg->output_buffer)
		set_paused(t, true);
}

static void output_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct sv_task *t = data;
	read_stream(t, io == t->io[0] ? 0 : 1);
	sv_task_flush(t); /* may finish and free t */
}

static void read_status(struct sv_task *t)
{
	for (;;) {
		char buf[64];
		ssize_t n = read(t->sp.status_fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			break;
		size_t room = sizeof(t->status) - 1 - t->status_len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(t->status + t->status_len, buf, take);
		t->status_len += take;
		t->status[t->status_len] = 0;
	}
	orch_io_free(t->status_io);
	t->status_io = NULL;
	t->status_eof = true;
}

static void status_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct sv_task *t = data;
	read_status(t);
	maybe_finish(t);
}

static void pid_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events, void *data)
{
	struct sv_task *t = data;
	pid_t r = wait4(t->sp.pid, &t->wait_status, WNOHANG, &t->ru);
	if (r == 0)
		return;
	if (r < 0 && errno == EINTR)
		return;
	t->reaped = true;
	orch_io_free(t->pid_io);
	t->pid_io = NULL;
	orch_timer_free(t->timeout);
	t->timeout = NULL;
	orch_timer_free(t->grace);
	t->grace = NULL;
	/* bwrap is gone, and with it every process of the jail: what is left in the pipes
	 * is all there is. Drain it now rather than in further loop iterations. */
	for (int i = 0; i < 2; i++)
		if (!t->paused)
			read_stream(t, i);
	if (!t->status_eof)
		read_status(t);
	sv_task_flush(t); /* may finish and free t */
}

static void timeout_cb(struct orch_loop *loop, struct orch_timer *timer, void *data)
{
	struct sv_task *t = data;
	if (t->reaped || t->cancelled)
		return;
	t->timed_out = true;
	orch_log(ORCH_LOG_INFO, "task", "task timed out", "task", t->id, NULL);
	kill_tree(t);
}

static void grace_cb(struct orch_loop *loop, struct orch_timer *timer, void *data)
{
	kill_tree(data);
}

static void deferred_finish_cb(struct orch_loop *loop, struct orch_timer *timer, void *data)
{
	maybe_finish(data);
}

void sv_task_cancel(struct sv_task *t, uint64_t grace_ms)
{
	if (t->reaped || t->cancelled || t->timed_out || t->reason[0])
		return;
	t->cancelled = true;
	if (grace_ms == 0 || sv_signal_jail(t->sp.pid, SIGTERM) <= 0) {
		kill_tree(t);
		return;
	}
	if (orch_timer_add(t->sv->loop, grace_ms, 0, grace_cb, t, &t->grace) < 0)
		kill_tree(t);
}

void sv_task_destroy(struct sv_task *t)
{
	kill_tree(t);
	if (t->sp.pid > 0 && !t->reaped)
		while (waitpid(t->sp.pid, NULL, 0) < 0 && errno == EINTR)
			;
	task_free(t);
}

static char **build_env(const struct sv_task *t, const struct orch_task_run *run)
{
	const char *const *extra = sv_extras_env(t->sv);
	size_t n_extra = 0;
	while (extra[n_extra])
		n_extra++;
	char **env = calloc(run->n_env + n_extra + 10, sizeof(char *));
	size_t n = 0;
	if (!env)
		return NULL;
	for (size_t i = 0; i < n_extra; i++)
		env[n++] = strdup(extra[i]);
	const char *defaults[] = {"PATH=" ORCH_TASK_PATH_DEFAULT,
				  "HOME=/workspace",
				  "TMPDIR=/tmp",
				  "LANG=C.UTF-8",
				  "USER=agent",
				  NULL};
	for (size_t i = 0; defaults[i]; i++)
		env[n++] = strdup(defaults[i]);
	if (asprintf(&env[n++], "ORCH_TASK=%s", t->id) < 0)
		env[n - 1] = NULL;
	if (asprintf(&env[n++], "ORCH_SLOT=%u", t->slot->index) < 0)
		env[n - 1] = NULL;
	for (size_t i = 0; i < run->n_env; i++) {
		/* Later entries win: drop an earlier default with the same name. */
		size_t kl = strcspn(run->env[i], "=");
		for (size_t j = 0; j < n; j++)
			if (env[j] && strncmp(env[j], run->env[i], kl) == 0 && env[j][kl] == '=') {
				free(env[j]);
				env[j] = env[--n];
				env[n] = NULL;
				break;
			}
		env[n++] = strdup(run->env[i]);
	}
	for (size_t i = 0; i < n; i++)
		if (!env[i]) {
			orch_strv_free(env);
			return NULL;
		}
	return env;
}

int sv_jail_start(struct supervisor *sv, struct sv_slot *slot, struct sv_jail_spec *js,
		  const struct orch_limits *lim, bool nproc, struct sv_spawned *ret,
		  struct orch_error *err)
{
	struct sv_config *cfg = sv->cfg;
	_cleanup_(orch_strv_freep) char **argv = NULL;
	int r;

	/* What a jail's read-only paths must not expose: every agent's workspace, and the
	 * debug shells' sockets (unix:DIR/NAME-%u.sock). */
	char shell_dir[PATH_MAX] = "";
	(void)sv_shell_socket_dir(cfg->shell_listen, shell_dir, sizeof(shell_dir));
	const char *const deny[] = {cfg->workspace_root, shell_dir[0] ? shell_dir : NULL, NULL};
	js->bwrap = cfg->bwrap;
	js->exec_helper = cfg->exec_helper;
	js->slot = slot->index;
	js->ro_paths = cfg->ro_paths;
	js->n_ro_paths = cfg->n_ro_paths;
	js->deny = deny;
	js->seccomp = sv->have_seccomp;
	js->extra_ro_binds = sv_extras_binds(sv);
	r = sv_jail_argv(js, &argv, err);
	js->deny = NULL; /* this frame's */
	if (r < 0)
		return r;
	/* Joining a cgroup v1 hierarchy costs milliseconds (the kernel's migration lock):
	 * only those that hold a limit for this jail. v2 (cheap) is always joined. */
	struct sv_cgroup join = slot->cgroup;
	const int64_t want[_SV_CG_MAX] = {lim->memory_bytes, lim->pids, lim->cpu_percent};
	for (int i = 0; i < _SV_CG_MAX; i++)
		if (!want[i])
			join.v1[i] = NULL;
	/* bwrap itself runs with a fixed environment: the task's variables are set inside
	 * the jail (--setenv), so that none of them (LD_PRELOAD...) acts on bwrap. */
	static char *const bwrap_env[] = {"PATH=/usr/bin:/bin", NULL};
	struct sv_spawn_spec ss = {
		.bwrap_argv = argv,
		.envp = bwrap_env,
		.seccomp = sv->have_seccomp ? &sv->seccomp : NULL,
		.netns_fd = slot->netns_fd,
		.cgroup = &join,
		.uid = slot->uid,
		.gid = slot->uid,
		.limits = *lim,
		.nproc_rlimit = nproc,
	};
	if ((r = sv_spawn(&ss, ret, err)) < 0)
		return r;
	if (ret->cgroup_refused)
		slot->cgroup.killed = true;
	return 0;
}

static int launch(struct sv_task *t, const struct orch_task_run *run, json_t *unenforced,
		  struct orch_error *err)
{
	struct supervisor *sv = t->sv;
	struct sv_slot *slot = t->slot;
	struct sv_config *cfg = sv->cfg;
	_cleanup_free_ char *ws = NULL;
	int r;

	if (run->workspace)
		r = sv_task_workspace(cfg->workspace_root, run->workspace, slot->uid, slot->uid,
				      &ws, err);
	else
		r = sv_workspace_prepare(cfg->workspace_root, slot->index, slot->uid, slot->uid,
					 &ws, err);
	if (r < 0)
		return r;
	struct orch_error terr = {0};
	t->transcript = sv_transcript_open(ws, slot->uid, slot->uid, &terr);
	if (t->transcript < 0)
		orch_log(ORCH_LOG_WARN, "task", "no transcript", "task", t->id, "error", terr.msg,
			 NULL);

	struct orch_limits lim;
	sv_limits_merge(&cfg->limits, &run->limits, &lim);
	bool enforced[_SV_CG_MAX] = {0};
	if ((r = sv_cgroup_apply(&slot->cgroup, &lim, enforced, err)) < 0)
		return r;
	bool nproc = !enforced[SV_CG_PIDS] && lim.pids > 0;
	if (lim.memory_bytes && !enforced[SV_CG_MEMORY])
		json_array_append_new(unenforced, json_string("memory"));
	if (lim.cpu_percent && !enforced[SV_CG_CPU])
		json_array_append_new(unenforced, json_string("cpu"));

	if (t->transcript >= 0) {
		json_t *argv = json_array();
		for (size_t i = 0; i < run->argc; i++)
			json_array_append_new(argv, json_string(run->argv[i]));
		(void)sv_transcript_write(t->transcript, "start",
					  json_pack("{s:s, s:I, s:o, s:I}", "task", t->id, "slot",
						    (json_int_t)slot->index, "argv", argv,
						    "timeout_ms", (json_int_t)run->timeout_ms));
	}

	char **env = build_env(t, run);
	if (!env)
		return orch_err(err, -ENOMEM, "out of memory");
	struct sv_jail_spec js = {
		.workspace = ws,
		.task_ro_paths = run->ro_paths,
		.n_task_ro_paths = run->n_ro_paths,
		.cwd = run->cwd,
		.argv = run->argv,
		.env = (const char *const *)env,
	};
	r = sv_jail_start(sv, slot, &js, &lim, nproc, &t->sp, err);
	orch_strv_free(env);
	if (r < 0) {
		t->sp.pid = 0;
		return r;
	}
	if (t->sp.cgroup_refused)
		orch_log(ORCH_LOG_WARN, "task", "the kernel refused children born into the cgroup",
			 "task", t->id, "cgroup", slot->cgroup.v2, NULL);
	if ((r = orch_io_add(sv->loop, t->sp.out_fd, EPOLLIN, output_cb, t, &t->io[0])) < 0 ||
	    (r = orch_io_add(sv->loop, t->sp.err_fd, EPOLLIN, output_cb, t, &t->io[1])) < 0 ||
	    (r = orch_io_add(sv->loop, t->sp.status_fd, EPOLLIN, status_cb, t, &t->status_io)) <
		    0 ||
	    (r = orch_io_add(sv->loop, t->sp.pidfd, EPOLLIN, pid_cb, t, &t->pid_io)) < 0) {
		kill_tree(t);
		return orch_errno(err, r, "cannot watch the task");
	}
	if (run->timeout_ms > 0 && (r = orch_timer_add(sv->loop, (uint64_t)run->timeout_ms, 0,
						       timeout_cb, t, &t->timeout)) < 0) {
		kill_tree(t);
		return orch_errno(err, r, "cannot arm the timeout");
	}
	return 0;
}

int sv_task_start(struct supervisor *sv, struct sv_slot *slot, const struct orch_task_run *run,
		  json_t **ret_result, struct orch_error *err)
{
	if (slot->task)
		return orch_err(err, ORCH_RPC_BUSY, "slot %u is busy", slot->index);
	if (strlen(run->task) > ORCH_MAX_ID_LEN || !run->argv || !run->argv[0])
		return orch_err(err, ORCH_RPC_INVALID_PARAMS, "bad task");
	struct sv_task *t = calloc(1, sizeof(*t));
	json_t *result = json_object(), *unenforced = json_array();
	if (!t || !result || !unenforced) {
		free(t);
		json_decref(result);
		json_decref(unenforced);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	t->sv = sv;
	t->slot = slot;
	t->transcript = -1;
	t->sp = (struct sv_spawned){
		.pid = 0, .pidfd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
	snprintf(t->id, sizeof(t->id), "%s", run->task);
	snprintf(t->argv0, sizeof(t->argv0), "%s", run->argv[0]);
	t->start_ms = orch_now_ms();
	t->timeout_ms = run->timeout_ms;
	slot->task = t;
	sv_extras_set_task(sv, slot, t->id);

	struct orch_error lerr = {0};
	int r = launch(t, run, unenforced, &lerr);
	json_object_set_new(result, "task", json_string(t->id));
	json_object_set_new(result, "slot", json_integer(slot->index));
	json_object_set_new(result, "started", json_boolean(r >= 0));
	json_object_set_new(result, "unenforced", unenforced);
	if (r < 0) {
		snprintf(t->reason, sizeof(t->reason), "the jail could not be built: %s",
			 lerr.msg[0] ? lerr.msg : strerror(-r));
		orch_log(ORCH_LOG_WARN, "task", "jail failed", "task", t->id, "error", t->reason,
			 NULL);
		if (t->sp.pid > 0) {
			/* Started but not watchable: killed above; wait for it here. */
			while (waitpid(t->sp.pid, &t->wait_status, 0) < 0 && errno == EINTR)
				;
			t->reaped = true;
			for (int i = 0; i < 2; i++)
				close_stream(t, i);
			t->status_eof = true;
			t->sp.pid = 0;
		}
	} else {
		json_object_set_new(result, "pid", json_integer(t->sp.pid));
		orch_log(ORCH_LOG_INFO, "task", "task started", "task", t->id, "argv0", t->argv0,
			 NULL);
	}
	*ret_result = result;
	/* The failed task.exit goes out after the task.run reply. */
	if (r < 0 && orch_timer_add(sv->loop, 0, 0, deferred_finish_cb, t, &t->grace) < 0)
		maybe_finish(t);
	return 0;
}
