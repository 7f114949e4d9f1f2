/* SPDX-License-Identifier: Apache-2.0 */
/* orch-supervisor: runs agents in bubblewrap jails, serves one host channel. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "log.h"
#include "extras.h"
#include "netns.h"
#include "supervisor.h"
#include "task.h"
#include "thaw.h"

json_t *sv_capabilities(const struct supervisor *sv)
{
	json_t *limits = json_object();
	json_t *cg = json_array();
	for (int c = 0; c < _SV_CG_MAX; c++) {
		const char *k = sv_cg_kind_name(sv->cgroups.ctrl[c]);
		char how[32];
		if (k) {
			snprintf(how, sizeof(how), "cgroup-%s", k);
			json_array_append_new(cg, json_string(sv_cg_ctrl_name(c)));
		} else if (c == SV_CG_PIDS) {
			snprintf(how, sizeof(how), "rlimit-nproc");
		}
		json_object_set_new(limits, sv_cg_ctrl_name(c),
				    k || c == SV_CG_PIDS ? json_string(how) : json_null());
	}
	json_object_set_new(limits, "nofile", json_string("rlimit"));
	json_object_set_new(limits, "fsize", json_string("rlimit"));
	json_object_set_new(limits, "core", json_string("rlimit-zero"));
	json_t *caps =
		json_pack("{s:o, s:o, s:o, s:b, s:s, s:s, s:I, s:b, s:s}", "cgroup", cg,
			  "cgroup_detail", sv_cgroups_describe(&sv->cgroups), "limits", limits,
			  "seccomp", sv->have_seccomp, "network", "loopback-only", "jail",
			  "bubblewrap", "uid_base", (json_int_t)sv->cfg->uid_base, "timeout", 1,
			  "kill", sv->cgroups.v2_kill ? "cgroup.kill" : "pid-namespace");
	if (caps)
		sv_extras_capabilities(sv, caps);
	if (caps && sv->frozen)
		json_object_set_new(caps, "frozen", json_true());
	return caps;
}

static void signal_cb(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t events,
		      void *data)
{
	struct supervisor *sv = data;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		orch_logf(ORCH_LOG_INFO, "main", "signal %u: shutting down", si.ssi_signo);
		sv->quitting = true;
		orch_loop_quit(loop);
	}
}

int sv_read_boot_id(char *buf, size_t size)
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/uuid", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int setup(struct supervisor *sv, struct orch_error *err)
{
	struct sv_config *cfg = sv->cfg;
	int r;

	if (geteuid() != 0)
		return orch_err(err, -EPERM,
				"orch-supervisor must run as root (it switches agents to their "
				"own uids and builds their namespaces)");
	if ((r = orch_addr_parse(cfg->connect, &sv->addr, err)) < 0)
		return orch_err_prefix(err, "--connect");
	if ((r = sv_read_boot_id(sv->boot_id, sizeof(sv->boot_id))) < 0)
		return orch_errno(err, r, "cannot read a boot id");
	if (mkdir(cfg->workspace_root, 0711) < 0 && errno != EEXIST)
		return orch_errno(err, -errno, "cannot create workspace root %s",
				  cfg->workspace_root);

	if ((r = sv_cgroups_init(&sv->cgroups, cfg->cgroup_name, err)) < 0)
		return r;
	if (sv->cgroups.why[0])
		orch_log(ORCH_LOG_WARN, "main", "limits not all enforceable", "missing",
			 sv->cgroups.why, NULL);
	if (!cfg->no_seccomp) {
		if ((r = sv_seccomp_build(&sv->seccomp, err)) < 0)
			return r;
		sv->have_seccomp = true;
	} else {
		orch_log(ORCH_LOG_WARN, "main", "seccomp filter disabled (--no-seccomp)", NULL);
	}

	for (unsigned i = 0; i < cfg->slots; i++) {
		struct sv_slot *s = &sv->slots[i];
		s->index = i;
		s->uid = cfg->uid_base + i;
		s->netns_fd = sv_netns_new(err);
		if (s->netns_fd < 0)
			return orch_err_prefix(err, "slot %u", i);
		if ((r = sv_cgroup_create(&sv->cgroups, i, &s->cgroup, err)) < 0)
			return orch_err_prefix(err, "slot %u", i);
	}

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return orch_errno(err, -errno, "sigprocmask");
	signal(SIGPIPE, SIG_IGN);
	sv->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sv->signal_fd < 0)
		return orch_errno(err, -errno, "signalfd");
	if ((r = orch_loop_new(&sv->loop)) < 0)
		return orch_errno(err, r, "cannot create the event loop");
	if ((r = orch_io_add(sv->loop, sv->signal_fd, EPOLLIN, signal_cb, sv, &sv->signal_io)) < 0)
		return orch_errno(err, r, "cannot watch signals");
	if ((r = sv_extras_start(sv, err)) < 0)
		return r;
	sv->heartbeat_ms = cfg->heartbeat_ms;
	if ((r = sv_channel_start(sv)) < 0)
		return orch_errno(err, r, "cannot start the channel");
	return 0;
}

static void teardown(struct supervisor *sv)
{
	sv_thaw_stop(sv);
	if (sv->loop)
		sv_extras_stop(sv);
	for (unsigned i = 0; i < sv->cfg->slots; i++) {
		struct sv_slot *s = &sv->slots[i];
		if (s->task)
			sv_task_destroy(s->task);
		if (s->netns_fd >= 0)
			close(s->netns_fd);
		sv_cgroup_remove(&s->cgroup);
		sv_cgroup_done(&s->cgroup);
	}
	if (sv->loop)
		sv_channel_stop(sv);
	orch_io_free(sv->signal_io);
	if (sv->signal_fd >= 0)
		close(sv->signal_fd);
	if (sv->loop)
		orch_loop_free(sv->loop);
	sv_cgroups_remove(&sv->cgroups);
	sv_cgroups_done(&sv->cgroups);
	sv_seccomp_done(&sv->seccomp);
}

int main(int argc, char **argv)
{
	struct sv_config cfg;
	struct orch_error err = {0};
	struct supervisor sv = {.cfg = &cfg, .signal_fd = -1};
	int r;

	sv_extras_helper_main(argc, argv); /* returns unless this is a helper process */
	const char *lvl = getenv("ORCH_LOG_LEVEL");
	if (lvl)
		(void)orch_log_level_parse(lvl, &orch_log_level);
	sv_config_init(&cfg);
	r = sv_config_parse_args(&cfg, argc, argv, &err);
	if (r == 0)
		r = sv_config_finish(&cfg, &err);
	if (r > 0 && cfg.dlopen_list)
		sv_extras_print_dlopen(stdout);
	if (r != 0) {
		if (r < 0)
			orch_log(ORCH_LOG_ERROR, "main", "bad configuration", "error",
				 err.msg[0] ? err.msg : strerror(-r), NULL);
		sv_config_done(&cfg);
		return r < 0 ? 2 : 0;
	}
	for (unsigned i = 0; i < ORCH_MAX_SLOTS; i++)
		sv.slots[i].netns_fd = -1;
	sv.template = cfg.template;

	r = setup(&sv, &err);
	if (r < 0) {
		orch_log(ORCH_LOG_ERROR, "main", "cannot start", "error",
			 err.msg[0] ? err.msg : strerror(-r), NULL);
		teardown(&sv);
		sv_config_done(&cfg);
		return 1;
	}
	orch_log(ORCH_LOG_INFO, "main", "supervisor started", "connect", cfg.connect, NULL);
	r = orch_loop_run(sv.loop);
	if (r < 0)
		orch_logf(ORCH_LOG_ERROR, "main", "event loop failed: %s", strerror(-r));
	teardown(&sv);
	sv_config_done(&cfg);
	return r < 0 ? 1 : 0;
}
