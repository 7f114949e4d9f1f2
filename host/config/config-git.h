/* SPDX-License-Identifier: Apache-2.0 */
/* The "git" object of orchd's configuration (docs/WORKSPACES.md, docs/CONFIG.md): where
 * the repository caches and task workspaces live, their limits, the credentials orchd
 * fetches and pushes with, and the push gate's policy. Parsed strictly; every error
 * names its key path. The section is optional: without it every key has its default. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

#define GIT_MAX_LIST 256

/* Credentials for URLs that start with url: an HTTP(S) token (sent as Basic auth with
 * username) or an SSH key (and the known_hosts file to check the host with). */
struct git_cred {
	char *url;
	char *username;	    /* HTTP(S): default "x-access-token" */
	char *token_file;   /* HTTP(S): the token is its first line */
	char *ssh_key_file; /* SSH: a private key */
	char *known_hosts;  /* SSH: NULL: orchd's own file, first contact accepted */
};

struct git_remote {
	char *name;
	char *url;
};

struct git_push_policy {
	char **refs; /* patterns of the refs that may be pushed (fnmatch), NULL-terminated */
	size_t n_refs;
	char **protected_paths; /* "dir/" (all below) or a pattern, case-insensitive */
	size_t n_protected;
	char **secret_patterns; /* POSIX extended regular expressions (checked) */
	size_t n_secret_patterns;
	int64_t max_files;	/* changed paths; 0: none */
	int64_t max_bytes;	/* bytes of the new and changed files; 0: none */
	int64_t max_file_bytes; /* one file; 0: none */
};

struct git_config {
	char *dir;		   /* caches, results, workspace images: <state_dir>/git */
	int64_t workspace_mib;	   /* a task workspace's size */
	int64_t workspace_inodes;  /* files in it; 0: one per 16 KiB */
	int64_t min_free_mib;	   /* free space the host keeps beyond the workspaces' */
	int64_t keep_workspaces;   /* finished tasks' workspace images kept */
	int64_t fetch_interval_ms; /* a cache this fresh is not fetched again */
	int64_t timeout_ms;	   /* one git operation */
	int64_t max_repo_mib;	   /* one fetched pack */
	int64_t max_result_mib;	   /* one task's result (its new objects) */
	int64_t max_diff_mib;	   /* `orch diff` output */
	struct git_cred *creds;
	size_t n_creds;
	struct git_remote *remotes;
	size_t n_remotes;
	struct git_push_policy push;
};

/* o may be NULL (no section): the defaults. state_dir gives the default dir. */
int git_config_parse(json_t *o, const char *state_dir, struct git_config **ret,
		     struct orch_error *err);
void git_config_free(struct git_config *c);
const struct git_remote *git_config_remote(const struct git_config *c, const char *name);
/* The credentials for url (the longest matching prefix), NULL when none. */
const struct git_cred *git_config_cred(const struct git_config *c, const char *url);

/* A repository as task.submit and profiles name it: an absolute local path (a
 * directory), or an https://, http://, ssh://, git:// or file:// URL, or scp-like
 * "user@host:path". No leading '-', no whitespace or control bytes, no password in the
 * URL, at most 4096 bytes. */
bool git_repo_valid(const char *repo);
/* True for a local path or file:// URL (read with the submitter's permissions). */
bool git_repo_is_local(const char *repo);
/* A ref as task.submit names it: a branch, tag, full ref or commit id; the charset of
 * git check-ref-format plus no leading '-', at most 255 bytes. */
bool git_ref_valid(const char *ref);
/* A ref a push may name: git check-ref-format's rules (no "..", "@{", "//", ".lock"
 * components, control bytes, space, ~^:?*[\). */
bool git_refname_valid(const char *ref);
