/* SPDX-License-Identifier: Apache-2.0 */
/* Agent profiles as orchd applies them to a submitted task. With the operator library
 * (host/profile.h, docs/PROFILES.md) orchd knows the shipped profiles plus the config's
 * (profiles-ops.c); without it only the config's `profiles` (profiles-config.c). */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "error.h"

#define ORCHD_MAX_PROMPT (100 * 1024)

struct orchd;

/* A task's command after its profile: owned, NULL-terminated. */
struct task_cmd {
	char **argv;
	char **env; /* "K=V" */
	char **ro_paths;
	struct orchd_limits limits;
};

int orchd_profiles_init(struct orchd *d, struct orch_error *err);
/* A profile's read-only path must not expose orchd's own files: its state directory,
 * socket, workspaces and LLM key files (the same, below or above them; -EPERM). */
int orchd_ro_path_check(const struct orchd_config *c, const char *path, struct orch_error *err);
void orchd_profiles_free(struct orchd *d);
bool orchd_profile_known(const struct orchd *d, const char *name);
/* The profile's command, then the prompt arguments (prompt may be NULL), then args
 * (NULL-terminated, may be empty). -ENOENT for an unknown profile. */
int orchd_profile_apply(struct orchd *d, const char *name, const char *prompt,
			const char *const *args, struct task_cmd *ret, struct orch_error *err);
void task_cmd_done(struct task_cmd *c);
