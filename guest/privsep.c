/* SPDX-License-Identifier: Apache-2.0 */
/* Helper processes of the supervisor: spawn, log relay, privilege drop (see privsep.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cleanup.h"
#include "jail-seccomp.h"
#include "log.h"
#include "privsep.h"
#include "schema.h"

#define MAX_FDS 8

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define SANITIZED 1
#endif
#endif

uid_t sv_privsep_uid(uid_t uid_base, enum sv_privsep_kind kind, unsigned slot)
{
	return uid_base + (uid_t)kind * ORCH_MAX_SLOTS + slot;
}

/* ---- spawn ---- */

_Noreturn void sv_exec_fail(int efd, int r)
{
	int e = r < 0 ? -r : r;
	ssize_t n = write(efd, &e, sizeof(e));
	(void)n;
	_exit(127);
}

int sv_exec_wait(int efd)
{
	int e = 0;
	ssize_t n;

	do
		n = read(efd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(e))
		return e > 0 ? -e : -EIO;
	return n == 0 ? 0 : 1;
}

static _Noreturn void child(const struct sv_helper_spawn *s, char *const *envp, int log_w, int efd)
{
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		sv_exec_fail(efd, -errno);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (s->netns_fd >= 0 && setns(s->netns_fd, CLONE_NEWNET) < 0)
		sv_exec_fail(efd, -errno);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		sv_exec_fail(efd, -errno);

	/* 0, 1 /dev/null; 2 the log pipe; 3.. the helper's descriptors; then the exec error
	 * pipe (close-on-exec). Everything is parked at 64 or above first, so that no dup2
	 * below clobbers a source. */
	int src[3 + MAX_FDS + 1];
	size_t n = 0;
	src[n++] = devnull;
	src[n++] = devnull;
	src[n++] = log_w;
	for (size_t i = 0; i < s->n_fds; i++)
		src[n++] = s->fds[i];
	src[n++] = efd;
	for (size_t i = 0; i < n; i++) {
		int moved = fcntl(src[i], F_DUPFD_CLOEXEC, 64);
		if (moved < 0)
			sv_exec_fail(efd, -errno);
		src[i] = moved;
	}
	efd = src[n - 1];
	for (size_t i = 0; i + 1 < n; i++)
		if (dup2(src[i], (int)i) < 0)
			sv_exec_fail(efd, -errno);
	int efd_to = (int)n - 1;
	if (dup3(efd, efd_to, O_CLOEXEC) < 0)
		sv_exec_fail(efd, -errno);
	efd = efd_to;
	if (syscall(SYS_close_range, efd_to + 1, ~0U, 0) < 0)
		for (int fd = efd_to + 1; fd < 1024; fd++)
			close(fd);
	execve(s->exe ? s->exe : "/proc/self/exe", s->argv, envp);
	sv_exec_fail(efd, -errno);
}

int sv_helper_spawn(const struct sv_helper_spawn *s, struct sv_helper *ret, struct orch_error *err)
{
	static const char *const keep[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"};
	static const char *const level[] = {"ORCH_LOG_LEVEL=error", "ORCH_LOG_LEVEL=warn",
					    "ORCH_LOG_LEVEL=info", "ORCH_LOG_LEVEL=debug"};
	char *envp[ELEMENTSOF(keep) + 2] = {NULL};
	size_t ne = 0;
	int lp[2] = {-1, -1}, ex[2] = {-1, -1}, r;
	_cleanup_pid_ pid_t owned = 0;

	if (s->n_fds > MAX_FDS)
		return orch_err(err, -EINVAL, "helper: too many descriptors");
	/* The helper's environment: the log level and the sanitizers' options, nothing of
	 * the supervisor's own (on the host that is orchd's, which may hold secrets). */
	envp[ne++] = (char *)level[orch_log_level <= ORCH_LOG_DEBUG ? orch_log_level : 1];
	for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
		const char *v = getenv(keep[i]);
		if (v && asprintf(&envp[ne], "%s=%s", keep[i], v) >= 0)
			ne++;
	}
	if (pipe2(lp, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
		r = orch_errno(err, -errno, "helper: cannot create pipes");
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		r = orch_errno(err, -errno, "helper: cannot fork");
		goto out;
	}
	if (pid == 0) {
		close(lp[0]);
		close(ex[0]);
		child(s, envp, lp[1], ex[1]);
	}
	owned = pid;
	closep(&lp[1]);
	closep(&ex[1]);
	lp[1] = ex[1] = -1;
	int e = sv_exec_wait(ex[0]);
	if (e < 0) {
		r = orch_errno(err, e, "helper: cannot execute %s",
			       s->exe ? s->exe : "/proc/self/exe");
		goto out;
	}
	if (e > 0) {
		r = orch_err(err, -EIO, "helper: the child died before exec");
		goto out;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		r = orch_errno(err, -errno, "helper: pidfd_open");
		goto out;
	}
	if (fcntl(lp[0], F_SETFL, O_NONBLOCK) < 0) {
		r = orch_errno(err, -errno, "helper: fcntl");
		close(pidfd);
		goto out;
	}
	*ret = (struct sv_helper){.pid = pid, .pidfd = pidfd, .log_fd = lp[0]};
	lp[0] = -1;
	owned = 0;
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		closep(&lp[i]);
		closep(&ex[i]);
	}
	for (size_t i = 1; i < ne; i++)
		free(envp[i]);
	return r;
}

int sv_helper_exited(const struct sv_helper *h, int *ret_code, int *ret_status)
{
	siginfo_t si = {0};

	if (!h || h->pid <= 0 ||
	    waitid(P_PIDFD, (id_t)h->pidfd, &si, WEXITED | WNOWAIT | WNOHANG) < 0 || !si.si_pid)
		return 0;
	*ret_code = si.si_code;
	*ret_status = si.si_status;
	return 1;
}

void sv_helper_kill(struct sv_helper *h)
{
	siginfo_t si;

	if (!h || h->pid <= 0)
		return;
	(void)syscall(SYS_pidfd_send_signal, h->pidfd, SIGKILL, NULL, 0);
	while (waitid(P_PIDFD, (id_t)h->pidfd, &si, WEXITED) < 0 && errno == EINTR)
		;
	close(h->pidfd);
	if (h->log_fd >= 0)
		close(h->log_fd);
	*h = (struct sv_helper){.pidfd = -1, .log_fd = -1};
}

/* ---- the log relay ---- */

static void log_line(struct sv_helper_log *l, const char *comp, unsigned slot)
{
	char s[16];

	l->buf[l->len] = 0;
	l->len = 0;
	if (l->lines > SV_HELPER_LOG_MAX)
		return;
	snprintf(s, sizeof(s), "%u", slot);
	if (++l->lines > SV_HELPER_LOG_MAX)
		orch_log(ORCH_LOG_WARN, comp, "helper output: further lines dropped", "slot", s,
			 NULL);
	else { /* the helper's own orch_log lines: their time stamp is ours again */
		const char *line = l->buf, *sp = strchr(line, ' ');
		if (!strncmp(line, "ts=", 3) && sp)
			line = sp + 1;
		orch_log(ORCH_LOG_WARN, comp, "helper output", "slot", s, "line", line, NULL);
	}
}

uint64_t sv_helper_backoff(uint64_t last_ms)
{
	uint64_t ms = last_ms ? last_ms * 2 : SV_HELPER_RESTART_MIN_MS;
	return ms > SV_HELPER_RESTART_MAX_MS ? SV_HELPER_RESTART_MAX_MS : ms;
}

uint64_t sv_helper_restart_wait(uint64_t last_ms, uint64_t started_ms, uint64_t now_ms)
{
	return now_ms - started_ms >= SV_HELPER_STABLE_MS ? 0 : sv_helper_backoff(last_ms);
}

int sv_helper_log_read(int fd, struct sv_helper_log *l, const char *comp, unsigned slot)
{
	char buf[4096];

	for (int round = 0; round < 4; round++) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			if (l->len)
				log_line(l, comp, slot);
			return -EPIPE;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				if (!l->skipping && l->len)
					log_line(l, comp, slot);
				l->skipping = false;
				l->len = 0;
			} else if (!l->skipping) {
				l->buf[l->len++] = buf[i];
				if (l->len == SV_HELPER_LOG_LINE) { /* cut: the rest is skipped */
					log_line(l, comp, slot);
					l->skipping = true;
				}
			}
		}
	}
	return 0;
}

/* ---- in the helper ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release)

static int helper_seccomp(struct orch_error *err)
{
	static const char *const more[] = {
		"socket", "socketpair", "connect", "bind",   "listen",	 "fork",
		"vfork",  "clone",	"clone3",  "execve", "execveat", NULL,
	};
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;

	if (!ctx)
		return orch_err(err, -ENOMEM, "seccomp: cannot create a filter");
	for (int list = 0; list < 2; list++) {
		const char *const *names = list ? more : sv_seccomp_denied;
		for (size_t i = 0; names[i]; i++) {
			int nr = seccomp_syscall_resolve_name(names[i]);
			if (nr == __NR_SCMP_ERROR)
				continue; /* not on this architecture */
			if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0)
				return orch_errno(err, r, "seccomp: cannot deny %s", names[i]);
		}
	}
	static const unsigned long tty_push[] = {TIOCSTI, TIOCLINUX};
	for (size_t i = 0; i < ELEMENTSOF(tty_push); i++)
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
					  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, tty_push[i]))) <
		    0)
			return orch_errno(err, r, "seccomp: cannot deny ioctl %lu", tty_push[i]);
	if ((r = seccomp_load(ctx)) < 0)
		return orch_errno(err, r, "seccomp: cannot load the helpers' filter");
	return 0;
}

/* A root directory with nothing in it, nothing to create in it and no way out: a fresh
 * directory, entered, removed, then made the root. */
static int empty_root(struct orch_error *err)
{
	static const char *const where[] = {"/run", "/tmp"};
	char path[64];

	for (size_t i = 0; i < ELEMENTSOF(where); i++) {
		snprintf(path, sizeof(path), "%s/orch-privsep.XXXXXX", where[i]);
		if (!mkdtemp(path))
			continue;
		if (chdir(path) < 0) {
			int r = -errno;
			rmdir(path);
			return orch_errno(err, r, "cannot enter %s", path);
		}
		if (rmdir(path) < 0 || chroot(".") < 0 || chdir("/") < 0)
			return orch_errno(err, -errno, "cannot make %s the root", path);
		return 0;
	}
	return orch_errno(err, -errno, "cannot create an empty directory in /run or /tmp");
}

static int set_limit(int resource, rlim_t v)
{
	struct rlimit rl = {v, v};
	return setrlimit(resource, &rl) < 0 ? -errno : 0;
}

int sv_privsep_enter(const struct sv_privsep *p, struct orch_error *err)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int r;

	umask(077);
	if (geteuid() == 0 || getuid() == 0) {
		if (p->uid == 0 || p->gid == 0)
			return orch_err(err, -EPERM, "refusing to run a helper as root");
		if ((r = empty_root(err)) < 0)
			return r;
		for (int cap = 0; cap < 64; cap++)
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
				return orch_errno(err, -errno, "cannot drop capability %d", cap);
		if (setgroups(0, NULL) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
		    setresuid(p->uid, p->uid, p->uid) < 0)
			return orch_errno(err, -errno, "cannot switch to uid %u", (unsigned)p->uid);
		if (getgroups(0, NULL) != 0)
			return orch_err(err, -EPERM, "helper still has supplementary groups");
	}
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return orch_errno(err, -errno, "getresuid");
	if (ru != p->uid || eu != p->uid || su != p->uid || rg != p->gid || eg != p->gid ||
	    sg != p->gid || ru == 0 || rg == 0)
		return orch_err(err, -EPERM, "helper runs as uid %u gid %u, not %u/%u",
				(unsigned)ru, (unsigned)rg, (unsigned)p->uid, (unsigned)p->gid);
	/* Regaining root, or any other id, must fail now. */
	if (setuid(0) != -1 || seteuid(0) != -1 || setgid(0) != -1 || setegid(0) != -1 ||
	    setresuid((uid_t)-1, p->uid + 1, (uid_t)-1) != -1)
		return orch_err(err, -EPERM, "helper could regain privileges");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		return orch_errno(err, -errno, "prctl");
	if ((r = set_limit(RLIMIT_CORE, 0)) < 0 || (r = set_limit(RLIMIT_FSIZE, 0)) < 0 ||
	    (r = set_limit(RLIMIT_NPROC, 0)) < 0 || (r = set_limit(RLIMIT_MEMLOCK, 0)) < 0 ||
	    (r = set_limit(RLIMIT_MSGQUEUE, 0)) < 0 ||
	    (p->nofile && (r = set_limit(RLIMIT_NOFILE, p->nofile)) < 0))
		return orch_errno(err, r, "cannot set the helper's rlimits");
#ifndef SANITIZED
	if (p->memory && (r = set_limit(RLIMIT_AS, p->memory)) < 0)
		return orch_errno(err, r, "cannot limit the helper's memory");
#endif
	if (p->seccomp && (r = helper_seccomp(err)) < 0)
		return r;
	return 0;
}
