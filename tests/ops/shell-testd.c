/* SPDX-License-Identifier: Apache-2.0 */
/* Test harness for guest/shell/: builds every agent slot's jail pieces the way the
 * supervisor does (seccomp filter, network namespace with lo, cgroup, workspace owned by
 * the agent's uid) and serves a debug shell per slot on unix:SOCKDIR/shell-N.sock until
 * SIGTERM/SIGINT.
 *   orch-shell-testd WORKSPACE_ROOT SOCKDIR SLOTS UID_BASE
 * Prints "ready" on stdout once every listener exists. The shells are started through
 * sv_shell_start_slot, the call orch-supervisor makes per slot. */
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
#include "shell-relay.h"
#include "shell-supervisor.h"
#include "shell.h"

#define MAX_SLOTS 8

static void on_signal(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct signalfd_siginfo si;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		orch_loop_quit(loop);
}

/* Audit lines on stderr, as the supervisor would log them. */
static void on_event(unsigned slot, enum sv_shell_event ev, const char *detail, void *data)
{
	static const char *const names[] = {"?", "opened", "closed", "refused", "failed"};
	fprintf(stderr, "shell slot=%u event=%s detail=\"%s\"\n", slot,
		names[ev <= SV_SHELL_FAILED ? ev : 0], detail);
}

int main(int argc, char **argv)
{
	struct orch_error err = {0};
	if (argc > 1 && strcmp(argv[1], SV_SHELL_RELAY_ARG) == 0)
		sv_shell_relay_main(argc, argv); /* a session's relay process */
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
	struct sv_config cfg;
	sv_config_init(&cfg);
	free(cfg.workspace_root);
	cfg.workspace_root = strdup(root);
	cfg.bwrap = strdup("/usr/bin/bwrap");
	cfg.exec_helper = strdup(ORCH_BUILDDIR "/guest/orch-jail-exec");
	cfg.limits = (struct orch_limits){.nofile = 1024, .pids = 512};
	cfg.slots = slots;
	cfg.uid_base = base;

	/* What orch-supervisor's setup builds (guest/main.c), without the host channel. */
	struct supervisor sv = {.cfg = &cfg, .signal_fd = -1};
	struct sv_shell *sh[MAX_SLOTS] = {0};
	int rc = 1;
	_cleanup_close_ int sfd = -1;
	for (unsigned i = 0; i < MAX_SLOTS; i++)
		sv.slots[i].netns_fd = -1;
	char cgname[64];
	snprintf(cgname, sizeof(cgname), "orch-shell-test-%d", (int)getpid());
	if (sv_seccomp_build(&sv.seccomp, &err) < 0 ||
	    sv_cgroups_init(&sv.cgroups, cgname, &err) < 0 || orch_loop_new(&sv.loop) < 0)
		goto out;
	sv.have_seccomp = true;
	for (unsigned i = 0; i < slots; i++) {
		struct sv_slot *s = &sv.slots[i];
		s->index = i;
		s->uid = base + i;
		bool enforced[_SV_CG_MAX];
		if ((s->netns_fd = sv_netns_new(&err)) < 0 ||
		    sv_cgroup_create(&sv.cgroups, i, &s->cgroup, &err) < 0 ||
		    sv_cgroup_apply(&s->cgroup, &cfg.limits, enforced, &err) < 0)
			goto out;
		s->enforced_pids = enforced[SV_CG_PIDS];
	}
	char listen[200];
	snprintf(listen, sizeof(listen), "unix:%s/shell-%%u.sock", sockdir);
	for (unsigned i = 0; i < slots; i++)
		if (sv_shell_start_slot(&sv, &sv.slots[i], listen, on_event, NULL, &sh[i], &err) <
		    0)
			goto out;

	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK);
	struct orch_io *sio = NULL;
	if (sfd < 0 || orch_io_add(sv.loop, sfd, EPOLLIN, on_signal, NULL, &sio) < 0) {
		orch_errno(&err, -errno, "signalfd");
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	rc = orch_loop_run(sv.loop) < 0 ? 1 : 0;
	orch_io_free(sio);
out:
	if (rc && err.msg[0])
		fprintf(stderr, "orch-shell-testd: %s\n", err.msg);
	for (unsigned i = 0; i < MAX_SLOTS; i++)
		sv_shell_free(sh[i]);
	/* A killed jail's pid namespace empties asynchronously: wait (bounded) for it. */
	for (unsigned i = 0; i < slots && i < MAX_SLOTS; i++)
		for (int k = 0; k < 200 && sv_cgroup_count(&sv.slots[i].cgroup) > 0; k++)
			usleep(10000);
	for (unsigned i = 0; i < MAX_SLOTS; i++) {
		if (sv.slots[i].netns_fd >= 0)
			close(sv.slots[i].netns_fd);
		sv_cgroup_remove(&sv.slots[i].cgroup);
		sv_cgroup_done(&sv.slots[i].cgroup);
	}
	sv_cgroups_remove(&sv.cgroups);
	sv_cgroups_done(&sv.cgroups);
	sv_seccomp_done(&sv.seccomp);
	orch_loop_free(sv.loop);
	sv_config_done(&cfg);
	return rc;
}
