/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "jail.h"
#include "privdrop.h"
#include "spawn.h"

#define FD_EXEC_ERR 5

/* struct clone_args of linux/sched.h (not in glibc's headers). */
struct sv_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};
#define SV_CLONE_INTO_CGROUP 0x200000000ULL

enum child_step {
	STEP_SIGNALS = 1,
	STEP_NETNS,
	STEP_CGROUP,
	STEP_FDS,
	STEP_RLIMITS,
	STEP_PRIVS,
	STEP_SECCOMP,
	STEP_EXEC,
};

static const char *step_name(int step)
{
	switch (step) {
	case STEP_SIGNALS:
		return "reset signals";
	case STEP_NETNS:
		return "join the agent's network namespace";
	case STEP_CGROUP:
		return "join the agent's cgroup";
	case STEP_FDS:
		return "set up descriptors";
	case STEP_RLIMITS:
		return "set rlimits";
	case STEP_PRIVS:
		return "switch to the agent's uid";
	case STEP_SECCOMP:
		return "prepare the seccomp filter";
	case STEP_EXEC:
		return "execute bwrap";
	default:
		return "start the jail";
	}
}

static _Noreturn void child_fail(int efd, int step, int r)
{
	int msg[2] = {step, r < 0 ? -r : r};
	ssize_t n = write(efd, msg, sizeof(msg));
	(void)n;
	_exit(127);
}

static _Noreturn void child(const struct sv_spawn_spec *s, int out_w, int err_w, int status_w,
			    int exec_err_w)
{
	int r;
	/* First of all: "this child runs". A child the kernel kills before it runs a single
	 * instruction (see sv_spawn) never says so. */
	if (write(exec_err_w, "", 1) != 1)
		_exit(127);
	sigset_t all;
	sigemptyset(&all);
	if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
		_exit(127);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	int efd = exec_err_w;

	if (s->netns_fd >= 0 && setns(s->netns_fd, CLONE_NEWNET) < 0)
		child_fail(efd, STEP_NETNS, -errno);
	if (s->cgroup && (r = sv_cgroup_enter(s->cgroup)) < 0)
		child_fail(efd, STEP_CGROUP, r);

	int seccomp_fd = -1;
	if (s->seccomp && (seccomp_fd = sv_seccomp_memfd(s->seccomp)) < 0)
		child_fail(efd, STEP_SECCOMP, seccomp_fd);

	/* Descriptors: 0 /dev/null, 1 stdout, 2 stderr, 3 seccomp, 4 status, 5 exec error
	 * (close-on-exec). Park everything at 16 or above first so that no dup2 below
	 * clobbers a source. */
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		child_fail(efd, STEP_FDS, -errno);
	int src[6] = {devnull, out_w, err_w, seccomp_fd, status_w, efd};
	for (int i = 0; i < 6; i++) {
		if (src[i] < 0)
			continue;
		int moved = fcntl(src[i], F_DUPFD_CLOEXEC, 16);
		if (moved < 0)
			child_fail(efd, STEP_FDS, -errno);
		src[i] = moved;
	}
	efd = src[5];
	for (int i = 0; i < 5; i++)
		if (src[i] >= 0 && dup2(src[i], i) < 0)
			child_fail(efd, STEP_FDS, -errno);
	if (dup3(efd, FD_EXEC_ERR, O_CLOEXEC) < 0)
		child_fail(efd, STEP_FDS, -errno);
	efd = FD_EXEC_ERR;
	if (syscall(SYS_close_range, FD_EXEC_ERR + 1, ~0U, 0) < 0)
		for (int fd = FD_EXEC_ERR + 1; fd < 1024; fd++)
			close(fd);

	if ((r = sv_apply_rlimits(&s->limits, s->nproc_rlimit)) < 0)
		child_fail(efd, STEP_RLIMITS, r);
	if ((r = sv_drop_privileges(s->uid, s->gid)) < 0)
		child_fail(efd, STEP_PRIVS, r);
	/* The jail dies with the supervisor (set after the uid change, which clears it). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(efd, STEP_PRIVS, -errno);
	if (getppid() == 1)
		_exit(127);

	execve(s->bwrap_argv[0], s->bwrap_argv, s->envp);
	child_fail(efd, STEP_EXEC, -errno);
}

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int sv_spawn(const struct sv_spawn_spec *s, struct sv_spawned *ret, struct orch_error *err)
{
	int out[2] = {-1, -1}, errp[2] = {-1, -1}, st[2] = {-1, -1}, ex[2] = {-1, -1};
	_cleanup_pid_ pid_t owned = 0; /* killed and reaped on failure */
	int r;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(st, O_CLOEXEC) < 0 ||
	    pipe2(ex, O_CLOEXEC) < 0) {
		r = orch_errno(err, -errno, "cannot create pipes for the task");
		goto fail;
	}
	/* Straight into the agent's v2 cgroup when the kernel can (clone3 with
	 * CLONE_INTO_CGROUP): moving a running process takes a global lock whose wait grows
	 * with other cgroup and namespace activity; being born there does not. */
	struct sv_cgroup cg_rest = {0};
	struct sv_spawn_spec spec;
	bool into_cgroup = s->cgroup && s->cgroup->v2 && !s->cgroup->killed;
	bool refused = false;
	pid_t pid;
	bool born_in;
again:
	spec = *s;
	pid = -1;
	born_in = false;
	int cgfd = -1;
	/* Not after a cgroup.kill of that cgroup: this kernel then kills every child born
	 * into it with CLONE_INTO_CGROUP (the kill generation is compared with the parent's
	 * cgroup, not the target's); a child moved in after fork is not affected. The same
	 * happens when the supervisor's own cgroup was killed once: such a child is noticed
	 * below (it never runs) and the spawn is done again with a fork. */
	if (into_cgroup)
		cgfd = open(s->cgroup->v2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd >= 0) {
		struct sv_clone_args args = {.flags = SV_CLONE_INTO_CGROUP,
					     .exit_signal = SIGCHLD,
					     .cgroup = (uint64_t)cgfd};
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		if (pid >= 0) {
			born_in = true;
			cg_rest = *s->cgroup;
			cg_rest.v2 = NULL; /* joined already */
			spec.cgroup = &cg_rest;
		}
	}
	if (pid < 0)
		pid = fork();
	if (pid < 0) {
		r = orch_errno(err, -errno, "cannot fork");
		if (cgfd >= 0)
			close(cgfd);
		goto fail;
	}
	if (pid == 0) {
		close(out[0]);
		close(errp[0]);
		close(st[0]);
		close(ex[0]);
		child(&spec, out[1], errp[1], st[1], ex[1]);
	}
	if (cgfd >= 0)
		close(cgfd);
	owned = pid;
	close(out[1]);
	close(errp[1]);
	close(st[1]);
	close(ex[1]);
	out[1] = errp[1] = st[1] = ex[1] = -1;

	/* Blocks only until the child execs bwrap or fails a setup step (no I/O waits). */
	int msg[2];
	ssize_t n;
	char alive;
	do
		n = read(ex[0], &alive, 1);
	while (n < 0 && errno == EINTR);
	if (n == 0 && born_in && !refused) {
		/* Died before its first instruction: killed by the kernel at birth in the
		 * cgroup. Nothing of the task ran; reap it and fork instead. */
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		owned = 0;
		close(ex[0]);
		ex[0] = -1;
		for (int i = 0; i < 2; i++) {
			if (out[i] >= 0)
				close(out[i]);
			if (errp[i] >= 0)
				close(errp[i]);
			if (st[i] >= 0)
				close(st[i]);
			out[i] = errp[i] = st[i] = -1;
		}
		if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
		    pipe2(st, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
			r = orch_errno(err, -errno, "cannot create pipes for the task");
			goto fail;
		}
		refused = true;
		into_cgroup = false;
		goto again;
	}
	if (n != 1) {
		r = orch_err(err, -EIO, "the jail's child was killed before it ran");
		goto fail;
	}
	do
		n = read(ex[0], msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(ex[0]);
	ex[0] = -1;
	if (n == (ssize_t)sizeof(msg)) {
		r = orch_errno(err, -msg[1], "cannot %s", step_name(msg[0]));
		goto fail; /* the cleanup reaps the child */
	}
	if (n != 0) {
		r = orch_err(err, -EIO, "the jail's child died before exec");
		goto fail;
	}
	int pidfd = pidfd_open_(pid);
	if (pidfd < 0) {
		r = orch_errno(err, -errno, "pidfd_open");
		goto fail;
	}
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? out[0] : i == 1 ? errp[0] : st[0];
		if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
			r = orch_errno(err, -errno, "fcntl");
			close(pidfd);
			goto fail;
		}
	}
	*ret = (struct sv_spawned){
		.pid = pid,
		.pidfd = pidfd,
		.out_fd = out[0],
		.err_fd = errp[0],
		.status_fd = st[0],
		.cgroup_refused = refused,
	};
	owned = 0;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (out[i] >= 0)
			close(out[i]);
		if (errp[i] >= 0)
			close(errp[i]);
		if (st[i] >= 0)
			close(st[i]);
		if (ex[i] >= 0)
			close(ex[i]);
	}
	return r;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

static int pid_ns_of(long pid, struct stat *ret)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/ns/pid", pid);
	return stat(path, ret) < 0 ? -errno : 0;
}

static bool same_ns(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The one child of bwrap's monitor: pid 1 of the jail's pid namespace. */
static long jail_init(pid_t monitor)
{
	char path[96], buf[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)monitor, (int)monitor);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ESRCH;
	buf[n] = 0;
	char *end;
	long pid = strtol(buf, &end, 10);
	return pid > 0 && (*end == ' ' || *end == 0 || *end == '\n') ? pid : -ESRCH;
}

int sv_signal_jail(pid_t monitor, int sig)
{
	long init = jail_init(monitor);
	if (init < 0)
		return (int)init;
	struct stat ns, self, st;
	int r;
	if ((r = pid_ns_of(init, &ns)) < 0 || (r = pid_ns_of((long)getpid(), &self)) < 0)
		return r;
	/* Never our own namespace (the init's pid was reused meanwhile, or it has none of
	 * its own): that would signal every process of the machine. */
	if (same_ns(&ns, &self))
		return -ESRCH;
	_cleanup_(closedirp) DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid == init || pid == monitor)
			continue;
		/* Checked after the pidfd is held: the process signalled is the one whose
		 * namespace was looked at, even if its pid is reused in between. */
		_cleanup_close_ int pfd = pidfd_open_((pid_t)pid);
		if (pfd < 0 || pid_ns_of(pid, &st) < 0 || !same_ns(&st, &ns))
			continue;
		if (syscall(SYS_pidfd_send_signal, pfd, sig, NULL, 0) == 0)
			n++;
	}
	return n;
}
