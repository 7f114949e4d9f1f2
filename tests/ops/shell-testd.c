/* SPDX-License-Identifier: Apache-2.0 */
/* Test harness for guest/shell/: builds every agent slot's jail pieces the way the
 * supervisor does (seccomp filter, network namespace with lo, cgroup, workspace owned by
 * the agent's uid) and serves a debug shell per slot on unix:SOCKDIR/shell-N.sock until
 * SIGTERM/SIGINT.
 *   orch-shell-testd WORKSPACE_ROOT SOCKDIR SLOTS UID_BASE
 * Prints "ready" on stdout once every listener exists. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "cgroup.h"
#include "jail-seccomp.h"
#include "jail.h"
#include "loop.h"
#include "netns.h"
#include "shell.h"

#define MAX_SLOTS 8

static void on_signal(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		orch_loop_quit(loop);
}

int main(int argc, char **argv)
{
	struct orch_error err = {0};
	if (argc != 5) {
		fprintf(stderr, "usage: %s WORKSPACE_ROOT SOCKDIR SLOTS UID_BASE\n", argv[0]);
		return 2;
	}
	const char *root = argv[1], *sockdir = argv[2];
	unsigned slots = (unsigned)atoi(argv[3]);
	uid_t base = (uid_t)atoi(argv[4]);
	if (slots < 1 || slots > MAX_SLOTS || base < 1000) {
		fprintf(stderr, "bad SLOTS or UID_BASE\n");
		return 2;
	}
	static char *ro[] = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"};
	struct sv_seccomp sc = {0};
	struct sv_cgroups cgs = {0};
	struct sv_cgroup cg[MAX_SLOTS] = {0};
	int netns[MAX_SLOTS];
	char *ws[MAX_SLOTS] = {0};
	struct sv_shell *sh[MAX_SLOTS] = {0};
	struct orch_loop *loop = NULL;
	int rc = 1;
	_cleanup_close_ int sfd = -1;
	for (unsigned i = 0; i < MAX_SLOTS; i++)
		netns[i] = -1;

	char cgname[64];
	snprintf(cgname, sizeof(cgname), "orch-shell-test-%d", (int)getpid());
	if (sv_seccomp_build(&sc, &err) < 0 || sv_cgroups_init(&cgs, cgname, &err) < 0 ||
	    orch_loop_new(&loop) < 0)
		goto out;
	struct orch_limits lim = {.nofile = 1024, .pids = 512};
	for (unsigned i = 0; i < slots; i++) {
		uid_t uid = base + i;
		if (sv_workspace_prepare(root, i, uid, uid, &ws[i], &err) < 0 ||
		    (netns[i] = sv_netns_new(&err)) < 0 ||
		    sv_cgroup_create(&cgs, i, &cg[i], &err) < 0)
			goto out;
		bool enforced[_SV_CG_MAX];
		if (sv_cgroup_apply(&cg[i], &lim, enforced, &err) < 0)
			goto out;
		struct sv_shell_jail j = {
			.bwrap = "/usr/bin/bwrap",
			.exec_helper = ORCH_BUILDDIR "/guest/orch-jail-exec",
			.shell_init = ORCH_BUILDDIR "/guest/shell/orch-shell-init",
			.workspace = ws[i],
			.ro_paths = ro,
			.n_ro_paths = ELEMENTSOF(ro),
			.seccomp = &sc,
			.netns_fd = netns[i],
			.cgroup = &cg[i],
			.uid = uid,
			.gid = uid,
			.limits = lim,
			.nproc_rlimit = !enforced[SV_CG_PIDS],
		};
		char addr[200];
		snprintf(addr, sizeof(addr), "unix:%s/shell-%u.sock", sockdir, i);
		struct sv_shell_opts o = {.slot = i, .listen = addr};
		if (sv_shell_new(loop, &o, &j, &sh[i], &err) < 0)
			goto out;
	}
	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	struct orch_io *sio = NULL;
	if (sfd < 0 || orch_io_add(loop, sfd, EPOLLIN, on_signal, NULL, &sio) < 0) {
		orch_errno(&err, -errno, "signalfd");
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	rc = orch_loop_run(loop) < 0 ? 1 : 0;
	orch_io_free(sio);
out:
	if (rc && err.msg[0])
		fprintf(stderr, "orch-shell-testd: %s\n", err.msg);
	for (unsigned i = 0; i < MAX_SLOTS; i++) {
		sv_shell_free(sh[i]);
		if (netns[i] >= 0)
			close(netns[i]);
		sv_cgroup_done(&cg[i]);
		free(ws[i]);
	}
	sv_cgroups_done(&cgs);
	sv_seccomp_done(&sc);
	orch_loop_free(loop);
	return rc;
}
