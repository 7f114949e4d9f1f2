/* SPDX-License-Identifier: Apache-2.0 */
/* The warm-up of a restored VM (warm.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "jail.h"
#include "log.h"
#include "spawn.h"
#include "task.h"
#include "supervisor.h"
#include "warm.h"

/* Reads what the jail writes (nothing, for `true`) until every stream ends and the jail
 * has exited; kills it at the deadline. Returns its wait status. */
static int wait_jail(struct sv_spawned *sp, struct sv_cgroup *cg)
{
	int fds[3] = {sp->out_fd, sp->err_fd, sp->status_fd}, status = 0;
	uint64_t deadline = orch_now_ms() + SV_WARM_TIMEOUT_MS;
	bool exited = false, killed = false;
	char buf[512];

	for (;;) {
		struct pollfd p[4];
		nfds_t n = 0;
		for (int i = 0; i < 3; i++)
			if (fds[i] >= 0)
				p[n++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
		if (!exited)
			p[n++] = (struct pollfd){.fd = sp->pidfd, .events = POLLIN};
		if (n == 0)
			break;
		uint64_t now = orch_now_ms();
		int wait = killed ? 1000 : now < deadline ? (int)(deadline - now) : 0;
		int r = poll(p, n, wait);
		if (r < 0 && errno != EINTR)
			break;
		if (r == 0) {
			if (killed)
				break; /* gone or not, the loop must go on */
			orch_log(ORCH_LOG_WARN, "warm", "the warm-up jail did not end: killed",
				 NULL);
			(void)sv_cgroup_kill(cg);
			(void)sv_signal_jail(sp->pid, SIGKILL);
			kill(sp->pid, SIGKILL);
			killed = true;
			continue;
		}
		for (nfds_t k = 0; k < n; k++) {
			if (!p[k].revents)
				continue;
			if (p[k].fd == sp->pidfd) {
				exited = true;
				continue;
			}
			ssize_t got = read(p[k].fd, buf, sizeof(buf));
			if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
				continue;
			for (int i = 0; i < 3; i++)
				if (fds[i] == p[k].fd)
					fds[i] = -1;
		}
	}
	if (waitpid(sp->pid, &status, killed ? WNOHANG : 0) <= 0)
		status = -1;
	return status;
}

static void close_spawned(struct sv_spawned *sp)
{
	const int fds[] = {sp->pidfd, sp->out_fd, sp->err_fd, sp->status_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* `true` in a jail of slot 0 with ws as its /workspace, waited for. */
static int run_jail(struct supervisor *sv, struct sv_slot *slot, const char *ws,
		    struct orch_error *err)
{
	struct sv_config *cfg = sv->cfg;
	struct orch_limits none = {0}, lim;
	bool enforced[_SV_CG_MAX] = {0};
	struct sv_spawned sp = {.pid = 0, .pidfd = -1, .out_fd = -1, .err_fd = -1, .status_fd = -1};
	int r;

	sv_limits_merge(&cfg->limits, &none, &lim);
	if ((r = sv_cgroup_apply(&slot->cgroup, &lim, enforced, err)) < 0)
		return r;
	const char *const jargv[] = {"true", NULL};
	const char *const env[] = {"PATH=" ORCH_TASK_PATH_DEFAULT, "HOME=/workspace", "TMPDIR=/tmp",
				   NULL};
	struct sv_jail_spec js = {.workspace = ws, .argv = jargv, .env = env};
	if ((r = sv_jail_start(sv, slot, &js, &lim, !enforced[SV_CG_PIDS] && lim.pids > 0, &sp,
			       err)) < 0)
		return r;
	int status = wait_jail(&sp, &slot->cgroup);
	close_spawned(&sp);
	if (status != 0)
		return orch_err(err, -EIO, "warm-up: the jail ended with wait status %d", status);
	return 0;
}

int sv_warm(struct supervisor *sv, struct orch_error *err)
{
	char dir[] = "/run/orch-warm.XXXXXX", ws[sizeof(dir) + 8];
	uint64_t t0 = orch_now_ms();
	struct sv_slot *slot = &sv->slots[0];
	int r;

	if (sv->cfg->slots == 0)
		return 0;
	/* The jail's /workspace: empty, its own, reachable by the agent's uid only. */
	if (!mkdtemp(dir))
		return orch_errno(err, -errno, "warm-up: cannot create a directory below /run");
	snprintf(ws, sizeof(ws), "%s/w", dir);
	if (chmod(dir, 0711) < 0 || mkdir(ws, 0700) < 0 || chown(ws, slot->uid, slot->uid) < 0)
		r = orch_errno(err, -errno, "warm-up: cannot prepare %s", ws);
	else
		r = run_jail(sv, slot, ws, err);
	if ((rmdir(ws) < 0 && errno != ENOENT) || rmdir(dir) < 0)
		orch_log(ORCH_LOG_WARN, "warm", "cannot remove the warm-up's directory", "dir", dir,
			 "error", strerror(errno), NULL);
	if (r == 0) {
		char ms[24];
		snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(orch_now_ms() - t0));
		orch_log(ORCH_LOG_INFO, "warm", "warm-up jail ran", "ms", ms, NULL);
	}
	return r;
}
