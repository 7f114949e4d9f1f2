/* SPDX-License-Identifier: Apache-2.0 */
/* The "egress" object of orchd's configuration (docs/EGRESS.md, docs/CONFIG.md): named
 * allow sets of host:port rules, names allowed to resolve to private addresses, name
 * overrides, credential injection, DLP patterns, limits. Parsed strictly; every error
 * names its key path. Nothing here resolves or connects. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

#define EGRESS_MAX_SETS 64
#define EGRESS_MAX_RULES 256 /* per set */
#define EGRESS_MAX_NAMES 256 /* allow_private, resolve, inject, dlp */

/* "host:port": host a lower-case DNS name or an IP literal ("[v6]:port" in the config),
 * or "*.suffix" (any name ending in ".suffix", at any depth, not suffix itself). */
struct egress_rule {
	char *host; /* the suffix for a wildcard */
	bool wildcard;
	uint16_t port;
};

struct egress_set {
	char *name;
	struct egress_rule *rules;
	size_t n_rules;
};

/* A name resolved by the config instead of DNS (like curl --resolve). */
struct egress_resolve {
	char *host;
	char **addrs; /* IP literals, NULL-terminated */
	size_t n_addrs;
};

/* Requests to host:port are intercepted (TLS terminated with orchd's CA) and get the
 * header "<header>: <prefix><key file's contents>". */
struct egress_inject {
	char *host;
	uint16_t port;
	char *header;
	char *prefix;	/* "" when none */
	char *key_file; /* absolute; mode checked when loaded */
};

struct egress_limits {
	int64_t connections;	    /* open at once per agent slot */
	int64_t bytes;		    /* per task, both directions; 0: none */
	int64_t duration_ms;	    /* per connection; 0: none */
	int64_t connect_timeout_ms; /* resolution and connect */
};

struct egress_config {
	struct egress_set *sets;
	size_t n_sets;
	char **allow_private; /* exact names (NULL-terminated) */
	size_t n_allow_private;
	struct egress_resolve *resolves;
	size_t n_resolves;
	struct egress_inject *injects;
	size_t n_injects;
	char **dlp_patterns; /* POSIX extended regular expressions (checked) */
	size_t n_dlp;
	struct egress_limits limits;
	char *upstream_ca_file; /* NULL: the system's trust store (intercepted hosts) */
	int64_t log_keep;	/* rows kept in the egress log */
};

int egress_config_parse(json_t *o, struct egress_config **ret, struct orch_error *err);
void egress_config_free(struct egress_config *c);
const struct egress_set *egress_config_set(const struct egress_config *c, const char *name);
/* Checks names (a VM's or profile's "egress" list) against the sets: -EINVAL naming the
 * first unknown one, with path as the key path. */
int egress_config_check_names(const struct egress_config *c, char *const *names, const char *path,
			      struct orch_error *err);
