/* SPDX-License-Identifier: Apache-2.0 */
/* Agent CLIs installed on the host (docs/AGENTS.md): each from its official npm package,
 * with the Node.js runtime it needs, into a versioned directory
 *
 *   <dir>/<name>/<version>/   node_modules/ (the package, its dependencies and
 *                             node-linux-<arch>), bin/<command> and bin/node (links into
 *                             node_modules), orch-agent.json (what was installed)
 *   <dir>/<name>/current      a relative symlink to <version>, switched atomically
 *
 * A task's jail binds <dir>/<name>/current resolved when the jail is built, so an upgrade
 * (a new version directory, then the link switched) never changes a running task's
 * files. The local backend's jails and every VM (a read-only virtio-fs share mounted at
 * the same path) use the one installation. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "config.h"
#include "error.h"

#define ORCH_AGENTS_DIR_DEFAULT ORCHD_DEFAULT_AGENTS_DIR
/* The Node.js major line installed with every agent (npm's node-linux-<arch> package). */
#define ORCH_AGENTS_NODE_DEFAULT "24"
#define ORCH_AGENTS_CURRENT "current"
#define ORCH_AGENTS_MANIFEST "orch-agent.json"
/* npm's install scripts of the agent's own package run as this uid/gid (nobody). */
#define ORCH_AGENTS_SCRIPT_UID 65534
#define ORCH_AGENTS_VERSION_MAX 64

/* An agent orch knows how to install. */
struct orch_agent_kind {
	const char *name;    /* as in `orch agents install NAME` and the profile's "agent" */
	const char *package; /* npm package */
	const char *command; /* its executable, linked into bin/ */
	const char *title;
};

extern const struct orch_agent_kind orch_agent_kinds[];
extern const size_t orch_agent_n_kinds;
const struct orch_agent_kind *orch_agent_kind_find(const char *name);

/* A version string as npm prints it: [0-9][0-9A-Za-z.+-]*, at most
 * ORCH_AGENTS_VERSION_MAX bytes. */
bool orch_agents_version_valid(const char *v);

/* $ORCH_AGENTS_DIR, else ORCH_AGENTS_DIR_DEFAULT. */
const char *orch_agents_dir_default(void);

/* What `orch agents list` shows of one installed version. */
struct orch_agent_version {
	char name[33];
	char version[ORCH_AGENTS_VERSION_MAX + 1];
	char package[215];
	char node[ORCH_AGENTS_VERSION_MAX + 1]; /* "" when unknown */
	int64_t installed_at;			/* seconds since the epoch, 0 unknown */
	bool current;
};

/* Every installed version under dir (sorted by name, then version as listed); a missing
 * dir is no installation (0 entries). */
int orch_agents_list(const char *dir, struct orch_agent_version **ret, size_t *ret_n,
		     struct orch_error *err);
json_t *orch_agent_version_json(const struct orch_agent_version *v);
/* The version <dir>/<name>/current points at (-ENOENT: none). */
int orch_agents_current(const char *dir, const char *name, char ret[ORCH_AGENTS_VERSION_MAX + 1]);

struct orch_agents_install_opts {
	const char *dir;
	const char *node_spec; /* NULL: ORCH_AGENTS_NODE_DEFAULT */
	const char *npm;       /* NULL: "npm" from PATH */
	bool force;	       /* reinstall a version that is there already */
	/* Progress for humans ("resolving ...", npm's own output goes to stderr). */
	void (*progress)(const char *msg, void *data);
	void *data;
};

/* Installs kind at spec (a version, a dist-tag or a range; NULL: "latest") and makes it
 * current; *ret_version is what was installed, *ret_fresh false when that version was
 * there already. Needs root and npm; serialised by a lock on dir. */
int orch_agents_install(const struct orch_agents_install_opts *o, const struct orch_agent_kind *k,
			const char *spec, char ret_version[ORCH_AGENTS_VERSION_MAX + 1],
			bool *ret_fresh, struct orch_error *err);

/* Removes one version (refused for the current one: remove the agent instead) or, with
 * version NULL, the whole agent. Needs root. */
int orch_agents_remove(const char *dir, const char *name, const char *version,
		       struct orch_error *err);

/* For orch doctor: "claude 2.1.3, codex 0.1.0" or "" (none), into buf. */
int orch_agents_summary(const char *dir, char *buf, size_t size);

/* Internal to agents.c / agents-npm.c. The lock also clears <dir>/.stage (what an
 * interrupted install left). */
int orch_agents_lock(const char *dir, int *ret_fd, struct orch_error *err);
int orch_agents_rm_rf(const char *path);
int orch_agents_switch_current(const char *agent_dir, const char *version, struct orch_error *err);
