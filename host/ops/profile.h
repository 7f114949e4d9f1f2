/* SPDX-License-Identifier: Apache-2.0 */
/* Agent profiles: how to start one kind of agent (docs/PROFILES.md). Shipped profiles are
 * JSON files (host/profiles/NAME.json, installed to <datadir>/orch/profiles); profiles in
 * orchd's config (`profiles.<name>`, docs/CONFIG.md) are added on top and replace a
 * shipped profile of the same name. orch_profile_command turns a profile and a prompt into
 * the argv, environment and extra read-only paths of a task. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "config.h"
#include "error.h"

#define ORCH_PROFILE_MAX_PROMPT (100 * 1024) /* bytes; one argv string must stay < 128 KiB */
#define ORCH_PROFILE_MAX_FILE (64 * 1024)    /* bytes of one config file */
#define ORCH_PROFILE_MAX_ITEMS 64	     /* command/prompt/env/ro_paths/files entries */
#define ORCH_PROFILE_PROMPT_TOKEN "{prompt}"
#define ORCH_PROFILE_PLACEHOLDER_KEY "orch-placeholder-key"

struct orch_profile_file {
	char *path;    /* relative to $HOME inside the jail */
	char *content; /* written before the agent starts */
};

struct orch_profile {
	char *name;
	char *description;
	char **command; /* NULL-terminated */
	size_t n_command;
	char **prompt; /* argv templates appended after command; "{prompt}" substituted */
	size_t n_prompt;
	char **env; /* "K=V", NULL-terminated */
	size_t n_env;
	char **ro_paths; /* NULL-terminated */
	size_t n_ro_paths;
	struct orch_profile_file *files;
	size_t n_files;
	/* The installed agent it runs (`orch agents`, host/agents.h), NULL: none. Its task
	 * gets <agents_dir>/<agent>/current as a read-only path and that directory's bin/
	 * first in PATH. */
	char *agent;
	struct orchd_limits limits;
	bool from_config; /* false: shipped */
};

struct orch_profiles {
	struct orch_profile *v;
	size_t n;
};

/* Where shipped profiles are: $ORCH_PROFILES_DIR, else <datadir>/orch/profiles when it
 * exists, else the source tree's host/profiles (an uninstalled build). */
const char *orch_profiles_default_dir(void);

/* Parses one shipped profile (strict: unknown keys and wrong types are errors). */
int orch_profile_parse(const char *name, const char *text, size_t len, struct orch_profile *ret,
		       struct orch_error *err);
void orch_profile_done(struct orch_profile *p);

/* Loads every NAME.json of dir (sorted by name). */
int orch_profiles_load_dir(struct orch_profiles *ps, const char *dir, struct orch_error *err);
/* Adds the config's profiles, replacing shipped ones of the same name. */
int orch_profiles_add_config(struct orch_profiles *ps, const struct orchd_config *c,
			     struct orch_error *err);
/* dir NULL: orch_profiles_default_dir(); c may be NULL. */
int orch_profiles_load(struct orch_profiles *ps, const char *dir, const struct orchd_config *c,
		       struct orch_error *err);
const struct orch_profile *orch_profiles_find(const struct orch_profiles *ps, const char *name);
void orch_profiles_done(struct orch_profiles *ps);

struct orch_profile_cmd {
	char **argv;	 /* NULL-terminated */
	char **env;	 /* "K=V", NULL-terminated */
	char **ro_paths; /* NULL-terminated */
};

/* The task for a prompt (may be NULL: no prompt arguments) and extra arguments appended
 * at the end (may be NULL); agents_dir (NULL: ORCHD_DEFAULT_AGENTS_DIR) is where the
 * profile's agent is installed. When the profile has files, argv is
 *   /bin/sh -c <writer> orch-profile <command...> <prompt args...> <extra...>
 * where the writer creates each file under $HOME from ORCH_FILE_<i>_PATH/_DATA in env
 * and then execs the rest, so the agent's config exists fresh in every task. */
int orch_profile_command(const struct orch_profile *p, const char *agents_dir, const char *prompt,
			 const char *const *extra, struct orch_profile_cmd *ret,
			 struct orch_error *err);
void orch_profile_cmd_done(struct orch_profile_cmd *c);

/* {"name","description","source":"shipped"|"config","command":[..],"prompt":[..],
 *  "env":{..},"ro_paths":[..],"files":[paths],"agent":name|null,"limits":{..}} */
json_t *orch_profile_to_json(const struct orch_profile *p);
