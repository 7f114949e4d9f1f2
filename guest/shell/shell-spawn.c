/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
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
#include "privsep.h"
#include "shell-spawn.h"
#include "strv.h"

#define FD_EXEC_ERR 5

int sv_shell_pty_open(uid_t uid, gid_t gid, struct sv_shell_pty *ret, struct orch_error *err)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	if (m < 0)
		return orch_errno(err, -errno, "cannot open a pty (is /dev/pts mounted?)");
	if (grantpt(m) < 0 || unlockpt(m) < 0)
		return orch_errno(err, -errno, "cannot unlock the pty");
	char name[64];
	if (ptsname_r(m, name, sizeof(name)) != 0)
		return orch_errno(err, -errno, "ptsname");
	_cleanup_close_ int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return orch_errno(err, -errno, "cannot open %s", name);
	if (fchown(s, uid, gid) < 0 || fchmod(s, 0620) < 0)
		return orch_errno(err, -errno, "cannot give %s to uid %u", name, (unsigned)uid);
	struct winsize ws = {.ws_row = 24, .ws_col = 80};
	(void)ioctl(m, TIOCSWINSZ, &ws);
	ret->master = TAKE_FD(m);
	ret->slave = TAKE_FD(s);
	return 0;
}

/* The forked child: the same steps as the supervisor's sv_spawn (guest/spawn.c), with
 * the pty slave as stdio instead of pipes. */
static _Noreturn void child(const struct sv_shell_jail *j, char *const *argv, char *const *envp,
			    int slave, int status_w, int efd)
{
	int r;
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		sv_exec_fail(efd, -errno);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if (j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0)
		sv_exec_fail(efd, -errno);
	if (j->cgroup && (r = sv_cgroup_enter(j->cgroup)) < 0)
		sv_exec_fail(efd, r);
	int seccomp_fd = -1;
	if (j->seccomp && (seccomp_fd = sv_seccomp_memfd(j->seccomp)) < 0)
		sv_exec_fail(efd, seccomp_fd);

	/* 0-2 pty slave, 3 seccomp, 4 status, 5 exec error (close-on-exec). */
	int src[4] = {slave, seccomp_fd, status_w, efd};
	for (int i = 0; i < 4; i++) {
		if (src[i] < 0)
			continue;
		int moved = fcntl(src[i], F_DUPFD_CLOEXEC, 16);
		if (moved < 0)
			sv_exec_fail(efd, -errno);
		src[i] = moved;
	}
	efd = src[3];
	for (int fd = 0; fd < 3; fd++)
		if (dup2(src[0], fd) < 0)
			sv_exec_fail(efd, -errno);
	if (src[1] >= 0 && dup2(src[1], SV_JAIL_FD_SECCOMP) < 0)
		sv_exec_fail(efd, -errno);
	if (dup2(src[2], SV_JAIL_FD_STATUS) < 0 || dup3(efd, FD_EXEC_ERR, O_CLOEXEC) < 0)
		sv_exec_fail(efd, -errno);
	efd = FD_EXEC_ERR;
	if (syscall(SYS_close_range, FD_EXEC_ERR + 1, ~0U, 0) < 0)
		for (int fd = FD_EXEC_ERR + 1; fd < 1024; fd++)
			close(fd);

	if ((r = sv_apply_rlimits(&j->limits, j->nproc_rlimit)) < 0)
		sv_exec_fail(efd, r);
	if ((r = sv_drop_privileges(j->uid, j->gid)) < 0)
		sv_exec_fail(efd, r);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		sv_exec_fail(efd, -errno);
	if (getppid() == 1)
		_exit(127);
	execve(argv[0], argv, envp);
	sv_exec_fail(efd, -errno);
}

static const char *pick_shell(const struct sv_shell_jail *j)
{
	if (j->shell)
		return j->shell;
	return access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
}

int sv_shell_spawn(const struct sv_shell_jail *j, unsigned slot, int pty_slave,
		   struct sv_shell_child *ret, struct orch_error *err)
{
	const char *init = j->shell_init ? j->shell_init : SV_SHELL_DEFAULT_INIT;
	if (access(init, X_OK) < 0)
		return orch_errno(err, -errno, "shell helper %s is not executable", init);

	/* orch-shell-init takes orch-jail-exec's place at /run/orch/exec (a fixed path inside
	 * the jail, whatever the host path). */
	const char *cmd[] = {pick_shell(j), NULL};
	struct sv_jail_spec spec = {
		.bwrap = j->bwrap,
		.exec_helper = init,
		.slot = slot,
		.workspace = j->workspace,
		.ro_paths = j->ro_paths,
		.n_ro_paths = j->n_ro_paths,
		.seccomp = j->seccomp != NULL,
		.cwd = NULL,
		.argv = cmd,
	};
	char **argv = NULL;
	int r = sv_jail_argv(&spec, &argv, err);
	if (r < 0)
		return r;

	char user[32], ps1[64], agent[32];
	snprintf(user, sizeof(user), "USER=agent-%u", slot);
	snprintf(agent, sizeof(agent), "ORCH_AGENT=%u", slot);
	snprintf(ps1, sizeof(ps1), "PS1=agent-%u:\\w\\$ ", slot);
	char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
			"HOME=/workspace",
			"TERM=xterm-256color",
			"LANG=C.UTF-8",
			"SHELL=/bin/sh",
			user,
			agent,
			ps1,
			NULL};

	int st[2] = {-1, -1}, ex[2] = {-1, -1};
	_cleanup_pid_ pid_t owned = 0; /* killed and reaped on failure */
	if (pipe2(st, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
		r = orch_errno(err, -errno, "cannot create pipes for the shell");
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		r = orch_errno(err, -errno, "cannot fork");
		goto out;
	}
	if (pid == 0) {
		close(st[0]);
		close(ex[0]);
		child(j, argv, envp, pty_slave, st[1], ex[1]);
	}
	owned = pid;
	close(st[1]);
	close(ex[1]);
	st[1] = ex[1] = -1;
	int e = sv_exec_wait(ex[0]);
	if (e < 0) {
		r = orch_errno(err, e, "cannot start the jail for agent %u's shell", slot);
		goto out;
	}
	if (e > 0) {
		r = orch_err(err, -EIO, "the shell's child died before exec");
		goto out;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		r = orch_errno(err, -errno, "pidfd_open");
		goto out;
	}
	if (fcntl(st[0], F_SETFL, O_NONBLOCK) < 0) {
		r = orch_errno(err, -errno, "fcntl");
		close(pidfd);
		goto out;
	}
	*ret = (struct sv_shell_child){.pid = pid, .pidfd = pidfd, .status_fd = st[0]};
	st[0] = -1;
	owned = 0;
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (st[i] >= 0)
			close(st[i]);
		if (ex[i] >= 0)
			close(ex[i]);
	}
	orch_strv_free(argv);
	return r;
}
