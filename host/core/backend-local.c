/* SPDX-License-Identifier: Apache-2.0 */
/* The local backend: orch-supervisor runs on the host as orchd's child, connected over a
 * socketpair (its fd 3), agents in bubblewrap jails. No VM. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "fs-util.h"
#include "cleanup.h"
#include "log.h"
#include "orchd.h"

struct local {
	pid_t pid;
	int pidfd;
	struct orch_io *pid_io;
	struct orch_timer *kill_timer;
	bool stopping;
	bool shells; /* the supervisor serves debug shells in <state_dir>/vm/<vm>/chan/ */
};

static void release(struct local *l)
{
	orch_io_free(l->pid_io);
	l->pid_io = NULL;
	orch_timer_free(l->kill_timer);
	l->kill_timer = NULL;
	if (l->pidfd >= 0)
		close(l->pidfd);
	l->pidfd = -1;
	l->pid = 0;
	l->stopping = false;
}

static void reaped(struct vm *vm, struct local *l)
{
	siginfo_t si = {0};
	bool stopping = l->stopping;
	char why[128];

	(void)waitid(P_PIDFD, (id_t)l->pidfd, &si, WEXITED | WNOHANG);
	if (si.si_code == CLD_EXITED)
		snprintf(why, sizeof(why), "supervisor exited with status %d", si.si_status);
	else
		snprintf(why, sizeof(why), "supervisor killed by signal %d", si.si_status);
	release(l);
	if (!stopping)
		vm_gone(vm, why);
}

static void on_pidfd(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		     void *data)
{
	struct vm *vm = data;

	reaped(vm, vm->backend);
}

static int local_start(struct vm *vm, struct orch_error *err)
{
	struct local *l = vm->backend;
	_cleanup_close_ int a = -1, b = -1, la = -1, lb = -1, ea = -1, eb = -1;
	char slots[32], uid_base[32], level[16], cgname[80], shell[PATH_MAX + 64];
	int sv[2], r, pidfd;
	pid_t pid;

	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l)
			return orch_err(err, -ENOMEM, "out of memory");
		l->pidfd = -1;
		vm->backend = l;
	}
	if (l->pid > 0)
		return orch_err(err, -EBUSY, "vm %s: supervisor already running (pid %d)",
				vm->cfg->name, (int)l->pid);
	if (!vm->d->supervisor_path)
		return orch_err(err, -ENOENT,
				"orch-supervisor not found next to orchd, in the libexec directory "
				"or the build tree; set \"supervisor\" in the config");
	r = orchd_mkdir_p(vm->cfg->workspace, 0755);
	if (r < 0)
		return orch_errno(err, r, "vm %s: cannot create workspace %s", vm->cfg->name,
				  vm->cfg->workspace);
	/* Debug shells: <state_dir>/vm/<vm>/chan/shell-N.sock, in a directory only root can
	 * enter; users reach them through orchd's relay (shell-relay.c). */
	shell[0] = '\0';
	l->shells = false;
	{
		char chan[PATH_MAX];
		int n = snprintf(chan, sizeof(chan), "%s/vm/%s/chan", vm->d->cfg->state_dir,
				 vm->cfg->name);
		if (n > 0 && (size_t)n < sizeof(chan) - 32 &&
		    orchd_dir_private(chan, 0, 0, 0700) >= 0 &&
		    orchd_shell_socket_path(vm->d->cfg->state_dir, vm->cfg->name, -1, shell + 5,
					    sizeof(shell) - 5) == 0) {
			memcpy(shell, "unix:", 5);
			l->shells = true;
		} else
			orch_log(ORCH_LOG_WARN, "local",
				 "no debug shells: cannot create the channel "
				 "directory",
				 "vm", vm->cfg->name, "path", chan, NULL);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return orch_errno(err, -errno, "socketpair");
	a = sv[0];
	b = sv[1];
	if (fcntl(a, F_SETFL, O_NONBLOCK) < 0)
		return orch_errno(err, -errno, "fcntl");
	if (orchd_lane_wanted(vm->d, ORCHD_LANE_LLM) &&
	    vm->d->supervisor_llm) { /* LLM channel: its fd 4 */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return orch_errno(err, -errno, "socketpair");
		la = sv[0];
		lb = sv[1];
		if (fcntl(la, F_SETFL, O_NONBLOCK) < 0)
			return orch_errno(err, -errno, "fcntl");
	}
	if (orchd_lane_wanted(vm->d, ORCHD_LANE_EGRESS) &&
	    vm->d->supervisor_egress) { /* egress lane: fd 5 */
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return orch_errno(err, -errno, "socketpair");
		ea = sv[0];
		eb = sv[1];
		if (fcntl(ea, F_SETFL, O_NONBLOCK) < 0)
			return orch_errno(err, -errno, "fcntl");
	}
	snprintf(slots, sizeof(slots), "%lld", (long long)vm->cfg->slots);
	snprintf(uid_base, sizeof(uid_base), "%lld", (long long)vm->cfg->uid_base);
	/* One name per VM. The supervisor makes a directory of its own from it (NAME, or
	 * NAME.1, NAME.2... while live supervisors hold the others: several orchds may share
	 * a host), never reuses one (an earlier cgroup.kill would kill its jails at birth),
	 * and first removes those of that name nobody holds any more: the leftovers of
	 * supervisors killed before they could remove theirs (guest/cgroup.c). A name of its
	 * own per start would leave those behind for good. */
	snprintf(cgname, sizeof(cgname), "orch-%s", vm->cfg->name);
	snprintf(level, sizeof(level), "%s",
		 orch_log_level >= ORCH_LOG_DEBUG  ? "debug"
		 : orch_log_level >= ORCH_LOG_INFO ? "info"
						   : "warn");

	pid = fork();
	if (pid < 0)
		return orch_errno(err, -errno, "fork");
	if (pid == 0) {
		const char *argv[24];
		size_t n = 0;

		argv[n++] = vm->d->supervisor_path;
		argv[n++] = "--connect";
		argv[n++] = "fd:3";
		argv[n++] = "--slots";
		argv[n++] = slots;
		argv[n++] = "--workspace-root";
		argv[n++] = vm->cfg->workspace;
		argv[n++] = "--uid-base";
		argv[n++] = uid_base;
		argv[n++] = "--cgroup-name";
		argv[n++] = cgname;
		argv[n++] = "--log-level";
		argv[n++] = level;
		if (shell[0]) { /* per-agent debug shells: one Unix socket per slot */
			argv[n++] = "--shell-listen";
			argv[n++] = shell;
		}
		if (lb >= 0) { /* the LLM channel of its own */
			argv[n++] = "--llm-connect";
			argv[n++] = "fd:4";
		}
		if (eb >= 0) { /* the egress lane */
			argv[n++] = "--egress-connect";
			argv[n++] = "fd:5";
		}
		argv[n] = NULL;
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(127);
		setsid();
		umask(022); /* the supervisor's own default, not orchd's 077 */
		if (dup2(b, 3) < 0 || (lb >= 0 && dup2(lb, 4) < 0) || (eb >= 0 && dup2(eb, 5) < 0))
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		r = -errno;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return orch_errno(err, r, "pidfd_open");
	}
	fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	l->pid = pid;
	l->pidfd = pidfd;
	l->stopping = false;
	r = orch_io_add(vm->d->loop, pidfd, EPOLLIN, on_pidfd, vm, &l->pid_io);
	if (r < 0)
		return orch_errno(err, r, "watching the supervisor");
	orch_log(ORCH_LOG_INFO, "local", "supervisor started", "vm", vm->cfg->name, "path",
		 vm->d->supervisor_path, NULL);
	r = vm_attach_channel(vm, TAKE_FD(a), err);
	if (r >= 0 && la >= 0)
		r = vm_lane_attach(vm, ORCHD_LANE_LLM, TAKE_FD(la), err);
	if (r >= 0 && ea >= 0)
		r = vm_lane_attach(vm, ORCHD_LANE_EGRESS, TAKE_FD(ea), err);
	return r;
}

static void on_kill_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct local *l = data;

	if (l->pid > 0)
		kill(l->pid, SIGKILL);
}

/* force: SIGKILL and reap now (the VM can be started again at once); otherwise SIGTERM,
 * SIGKILL after 3 s, reaped from the loop. */
static void local_stop(struct vm *vm, bool force)
{
	struct local *l = vm->backend;

	if (!l || l->pid <= 0)
		return;
	l->stopping = true;
	if (force) {
		kill(l->pid, SIGKILL);
		while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
			;
		release(l);
		return;
	}
	kill(l->pid, SIGTERM);
	if (!l->kill_timer)
		orch_timer_add(vm->d->loop, 3000, 0, on_kill_timer, l, &l->kill_timer);
}

static void local_free(struct vm *vm)
{
	struct local *l = vm->backend;

	if (!l)
		return;
	if (l->pid > 0) {
		kill(l->pid, SIGKILL);
		while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	release(l);
	free(l);
	vm->backend = NULL;
}

/* Waits (bounded) for a stopping supervisor, for a clean shutdown of orchd. */
static void local_shutdown(struct orchd *d)
{
	uint64_t deadline = orch_now_ms() + 3000;

	for (size_t i = 0; i < d->n_vms; i++) {
		struct local *l = d->vms[i]->backend;
		if (d->vms[i]->ops != &orchd_backend_local || !l || l->pid <= 0)
			continue;
		kill(l->pid, SIGTERM);
		while (orch_now_ms() < deadline) {
			if (waitpid(l->pid, NULL, WNOHANG) == l->pid) {
				l->pid = 0;
				break;
			}
			usleep(10000);
		}
	}
}

static int local_shell_endpoint(const struct vm *vm, unsigned slot, struct orch_addr *ret,
				struct orch_error *err)
{
	const struct local *l = vm->backend;
	struct orch_addr a = {.kind = ORCH_TRANSPORT_UNIX};

	if (!l || l->pid <= 0)
		return orch_err(err, -ENOTCONN, "its supervisor is not running");
	if (!l->shells)
		return orch_err(err, -ENOTCONN, "its supervisor was started without debug shells");
	if (orchd_shell_socket_path(vm->d->cfg->state_dir, vm->cfg->name, slot, a.path,
				    sizeof(a.path)) < 0)
		return orch_err(err, -ENAMETOOLONG, "its shell's socket path is too long");
	*ret = a;
	return 0;
}

static void local_describe(const struct vm *vm, json_t *obj)
{
	const struct local *l = vm->backend;

	json_object_set_new(obj, "pid", l && l->pid > 0 ? json_integer(l->pid) : json_null());
}

/* Whether the supervisor takes `--llm-connect` (its --help says so). */
static int local_init(struct orchd *d, struct orch_error *err)
{
	char buf[16384];
	size_t len = 0;
	int p[2], st;
	pid_t pid;

	if (!d->supervisor_path ||
	    (!orchd_lane_wanted(d, ORCHD_LANE_LLM) && !orchd_lane_wanted(d, ORCHD_LANE_EGRESS)))
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return orch_errno(err, -errno, "pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return orch_errno(err, -errno, "fork");
	}
	if (pid == 0) {
		dup2(p[1], 1);
		execl(d->supervisor_path, d->supervisor_path, "--help", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = 0;
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	d->supervisor_llm = strstr(buf, "--llm-connect") != NULL;
	d->supervisor_egress = strstr(buf, "--egress-connect") != NULL;
	orch_log(ORCH_LOG_DEBUG, "local",
		 d->supervisor_llm ? "LLM requests on a channel of their own (fd 4)"
				   : "LLM requests on the main channel",
		 "path", d->supervisor_path, NULL);
	return 0;
}

const struct orchd_backend_ops orchd_backend_local = {
	.name = "local",
	.init = local_init,
	.shutdown = local_shutdown,
	.start = local_start,
	.stop = local_stop,
	.free = local_free,
	.describe = local_describe,
	.shell_endpoint = local_shell_endpoint,
};
