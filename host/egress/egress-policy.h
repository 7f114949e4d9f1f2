/* SPDX-License-Identifier: Apache-2.0 */
/* The egress decisions that need no I/O (docs/EGRESS.md): whether host:port is in a
 * task's allow sets, and whether an address is one a name may resolve to. Pure
 * functions, unit-tested in tests/egress/check_egress.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config-egress.h"

/* host (lower case, as the lane carries it) and port against the sets named in sets
 * (NULL-terminated; unknown names match nothing). 0: allowed; -EACCES: not, with a
 * one-line reason in why. An IP literal is allowed only by a rule naming exactly it. */
int egress_policy_allowed(const struct egress_config *c, char *const *sets, const char *host,
			  uint16_t port, char *why, size_t why_len);
/* Whether a wildcard or exact rule matches host:port. */
bool egress_rule_matches(const struct egress_rule *r, const char *host, uint16_t port);

/* Addresses a name may not resolve to unless egress.allow_private names it: loopback,
 * private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10, which holds the cloud
 * metadata address 169.254.169.254), carrier-grade NAT (100.64/10), unspecified,
 * multicast, broadcast, reserved (240/4, 0/8), benchmarking (198.18/15), IPv4-mapped
 * IPv6 of any of these, fd00:ec2::254 (metadata). Returns the class's name, or NULL for
 * an address that is fine. */
const char *egress_addr_class(const struct sockaddr *sa);
/* Whether name is in egress.allow_private. */
bool egress_private_allowed(const struct egress_config *c, const char *name);
/* The configured addresses of host (egress.resolve), NULL when none. */
const struct egress_resolve *egress_resolve_override(const struct egress_config *c,
						     const char *host);
