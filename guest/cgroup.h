/* SPDX-License-Identifier: Apache-2.0 */
/* Per-agent cgroups. cgroup v2 is used for what it offers (always grouping and
 * cgroup.kill; memory/pids/cpu when its controllers can be enabled, as in the VM guest);
 * where v2 lacks a controller and a cgroup v1 hierarchy has it (a hybrid host), v1 is used
 * for that limit. Whatever neither offers is reported as not enforced. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "error.h"
#include "schema.h"

enum sv_cg_kind { SV_CG_NONE = 0, SV_CG_V1, SV_CG_V2 };

enum sv_cg_ctrl { SV_CG_MEMORY = 0, SV_CG_PIDS, SV_CG_CPU, _SV_CG_MAX };

struct sv_cgroups {
	char *v2_parent; /* directory holding agent-N in the v2 tree, NULL when unusable */
	bool v2_kill;	 /* cgroup.kill exists */
	enum sv_cg_kind ctrl[_SV_CG_MAX];
	char *v1_parent[_SV_CG_MAX]; /* directory holding agent-N in that v1 hierarchy */
	char why[256];		     /* human summary of what is missing */
	/* flock(LOCK_EX) on each parent directory, held while the supervisor lives: a
	 * directory nobody holds locked is a leftover (sv_cgroups_init removes those). */
	int locks[1 + _SV_CG_MAX];
	unsigned n_locks;
};

/* One agent's cgroup directories (NULL where not used). */
struct sv_cgroup {
	char *v2;
	char *v1[_SV_CG_MAX];
	int64_t applied[_SV_CG_MAX]; /* last value written (-1: unknown): unchanged limits
				      * are not written again (cgroup writes are slow) */	/* cgroup.kill was used: from then on children are moved in, not born in
	 * (CLONE_INTO_CGROUP), see spawn.c. */
	bool killed;
};

/* Finds the hierarchies this process lives in and prepares <own cgroup>/<name>.
 * Never fails for lack of cgroups: what is missing is recorded. */
int sv_cgroups_init(struct sv_cgroups *cg, const char *name, struct orch_error *err);
void sv_cgroups_done(struct sv_cgroups *cg);
/* {"v2":bool,"kill":"cgroup.kill"|"pid-namespace","memory":"v2"|"v1"|null,...} */
json_t *sv_cgroups_describe(const struct sv_cgroups *cg);
const char *sv_cg_kind_name(enum sv_cg_kind k);
const char *sv_cg_ctrl_name(enum sv_cg_ctrl c);

int sv_cgroup_create(const struct sv_cgroups *cg, unsigned slot, struct sv_cgroup *ret,
		     struct orch_error *err);
void sv_cgroup_done(struct sv_cgroup *c);

/* Writes the limits (0 = unlimited); which ones were enforced is returned in
 * ret_enforced[SV_CG_*]. A limit without a controller is left to the caller. */
int sv_cgroup_apply(struct sv_cgroup *c, const struct orch_limits *l, bool ret_enforced[_SV_CG_MAX],
		    struct orch_error *err);

/* In a forked child: moves the calling process into every directory of c.
 * Async-signal-safe (no allocation). */
int sv_cgroup_enter(const struct sv_cgroup *c);

/* Kills every process in the cgroup: cgroup.kill on v2, else SIGKILL to each pid listed
 * in the v1 directories. Returns 1 when a cgroup-wide kill was possible, 0 if not. */
int sv_cgroup_kill(struct sv_cgroup *c);

/* Removes the (empty) agent directories / the parent directories; errors are ignored:
 * a cgroup that still holds processes stays. */
void sv_cgroup_remove(const struct sv_cgroup *c);
void sv_cgroups_remove(const struct sv_cgroups *cg);

/* Number of processes still in the cgroup (v2 or first v1 directory), or -errno. */
int sv_cgroup_count(const struct sv_cgroup *c);
