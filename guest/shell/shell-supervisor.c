/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "jail.h"
#include "privsep.h"
#include "shell-listen.h"
#include "shell-supervisor.h"

char *sv_shell_find_init(const char *exec_helper)
{
	if (!exec_helper)
		return NULL;
	_cleanup_free_ char *copy = strdup(exec_helper);
	if (!copy)
		return NULL;
	const char *dir = dirname(copy);
	static const char *const rel[] = {"orch-shell-init", "shell/orch-shell-init"};
	for (size_t i = 0; i < ELEMENTSOF(rel); i++) {
		char *p;
		if (asprintf(&p, "%s/%s", dir, rel[i]) < 0)
			return NULL;
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

/* Replaces one "%u" in t by slot; anything else with '%' is refused. */
static int expand(const char *t, unsigned slot, char *buf, size_t len)
{
	const char *p = strchr(t, '%');
	if (!p)
		return snprintf(buf, len, "%s", t) < (int)len ? 0 : -ENAMETOOLONG;
	if (p[1] != 'u' || strchr(p + 1, '%'))
		return -EINVAL;
	int n = snprintf(buf, len, "%.*s%u%s", (int)(p - t), t, slot, p + 2);
	return n >= 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

int sv_shell_start_slot(struct supervisor *sv, struct sv_slot *slot, const char *listen,
			sv_shell_event_cb on_event, void *event_data, struct sv_shell **ret,
			struct orch_error *err)
{
	const struct sv_config *cfg = sv->cfg;
	char addr[256];
	int r = expand(listen, slot->index, addr, sizeof(addr));
	if (r < 0)
		return orch_err(err, r, "shell address '%s': expected at most one %%u", listen);
	_cleanup_free_ char *ws = NULL, *init = sv_shell_find_init(cfg->exec_helper);
	if (!init)
		return orch_err(err, -ENOENT,
				"orch-shell-init not found next to %s (install it beside "
				"orch-jail-exec)",
				cfg->exec_helper);
	if ((r = sv_workspace_prepare(cfg->workspace_root, slot->index, slot->uid, slot->uid, &ws,
				      err)) < 0)
		return r;
	struct sv_shell_jail j = {
		.bwrap = cfg->bwrap,
		.shell_init = init,
		.workspace = ws,
		.ro_paths = cfg->ro_paths,
		.n_ro_paths = cfg->n_ro_paths,
		.seccomp = sv->have_seccomp ? &sv->seccomp : NULL,
		.netns_fd = slot->netns_fd,
		.cgroup = &slot->cgroup,
		.uid = slot->uid,
		.gid = slot->uid,
		.limits = cfg->limits,
		.nproc_rlimit = !slot->enforced_pids,
	};
	uid_t relay = sv_privsep_uid(cfg->uid_base, SV_PRIVSEP_SHELL, slot->index);
	struct sv_shell_opts o = {
		.slot = slot->index,
		.listen = addr,
		.allow_cid = ORCH_VSOCK_CID_HOST,
		.relay_uid = relay,
		.relay_gid = relay,
		.relay_no_seccomp = cfg->no_seccomp,
		.on_event = on_event,
		.event_data = event_data,
	};
	return sv_shell_new(sv->loop, &o, &j, ret, err);
}

int sv_shell_socket_dir(const char *listen, char *buf, size_t len)
{
	struct sv_shell_addr a;
	const char *slash;

	buf[0] = '\0';
	if (!listen)
		return 0;
	if (sv_shell_addr_parse(listen, 0, &a, NULL) < 0)
		return -EINVAL;
	if (a.kind != SV_SHELL_UNIX)
		return 0;
	slash = strrchr(a.path, '/');
	if (!slash || (size_t)(slash - a.path) >= len)
		return -EINVAL;
	snprintf(buf, len, "%.*s", (int)(slash - a.path), a.path);
	return 0;
}
