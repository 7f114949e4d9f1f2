/* SPDX-License-Identifier: Apache-2.0 */
/* Allow sets and address classes (egress-policy.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "egress-policy.h"
#include "egress.h"

bool egress_rule_matches(const struct egress_rule *r, const char *host, uint16_t port)
{
	size_t hl, sl;

	if (r->port != port)
		return false;
	if (!r->wildcard)
		return !strcmp(r->host, host);
	if (orch_egress_host_is_ip(host))
		return false;
	hl = strlen(host);
	sl = strlen(r->host);
	return hl > sl + 1 && host[hl - sl - 1] == '.' && !strcmp(host + hl - sl, r->host);
}

int egress_policy_allowed(const struct egress_config *c, char *const *sets, const char *host,
			  uint16_t port, char *why, size_t why_len)
{
	char names[160] = "";
	size_t n = 0;

	for (size_t i = 0; sets && sets[i]; i++) {
		const struct egress_set *s = egress_config_set(c, sets[i]);
		if (!s)
			continue;
		n++;
		if (strlen(names) + strlen(sets[i]) + 3 < sizeof(names)) {
			if (names[0])
				strcat(names, ",");
			strcat(names, sets[i]);
		}
		for (size_t j = 0; j < s->n_rules; j++)
			if (egress_rule_matches(&s->rules[j], host, port))
				return 0;
	}
	if (n == 0)
		snprintf(why, why_len, "no egress allowed for this task (no sets)");
	else if (orch_egress_host_is_ip(host))
		snprintf(why, why_len, "IP-literal target %s:%u is not in the task's sets (%s)",
			 host, port, names);
	else
		snprintf(why, why_len, "%s:%u is not in the task's egress sets (%s)", host, port,
			 names);
	return -EACCES;
}

static const char *v4_class(uint32_t a)
{
	static const struct {
		uint32_t net, mask;
		const char *name;
	} cls[] = {
		{0x00000000, 0xff000000, "unspecified"},    /* 0/8 */
		{0x0a000000, 0xff000000, "private"},	    /* 10/8 */
		{0x64400000, 0xffc00000, "shared (CGNAT)"}, /* 100.64/10 */
		{0x7f000000, 0xff000000, "loopback"},	    /* 127/8 */
		{0xa9fea9fe, 0xffffffff, "cloud metadata"}, /* 169.254.169.254 */
		{0xa9fe0000, 0xffff0000, "link-local"},	    /* 169.254/16 */
		{0xac100000, 0xfff00000, "private"},	    /* 172.16/12 */
		{0xc0000000, 0xffffff00, "reserved"},	    /* 192.0.0/24 */
		{0xc0a80000, 0xffff0000, "private"},	    /* 192.168/16 */
		{0xc6120000, 0xfffe0000, "benchmarking"},   /* 198.18/15 */
		{0xe0000000, 0xf0000000, "multicast"},	    /* 224/4 */
		{0xf0000000, 0xf0000000, "reserved"},	    /* 240/4, broadcast */
	};
	for (size_t i = 0; i < sizeof(cls) / sizeof(cls[0]); i++)
		if ((a & cls[i].mask) == cls[i].net)
			return cls[i].name;
	return NULL;
}

const char *egress_addr_class(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_class(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return "not an IP address";
	const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	static const uint8_t zero[16], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t metadata[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,	 0,
					     0,	   0,	 0,    0,    0, 0, 0x02, 0x54};
	if (!memcmp(b, zero, 15) && b[15] <= 1)
		return b[15] ? "loopback" : "unspecified";
	if (!memcmp(b, mapped, 12) || !memcmp(b, zero, 12)) /* v4-mapped, v4-compatible */
		return v4_class((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
				(uint32_t)b[14] << 8 | b[15])
			       ?: (memcmp(b, mapped, 12) ? "reserved" : NULL);
	if (!memcmp(b, metadata, 16))
		return "cloud metadata";
	if ((b[0] & 0xfe) == 0xfc)
		return "private";
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return "link-local";
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return "site-local";
	if (b[0] == 0xff)
		return "multicast";
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
		return "documentation";
	if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b) /* NAT64 */
		return v4_class((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
				(uint32_t)b[14] << 8 | b[15]);
	return NULL;
}

bool egress_private_allowed(const struct egress_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_allow_private; i++)
		if (!strcmp(c->allow_private[i], name))
			return true;
	return false;
}

const struct egress_resolve *egress_resolve_override(const struct egress_config *c,
						     const char *host)
{
	for (size_t i = 0; i < c->n_resolves; i++)
		if (!strcmp(c->resolves[i].host, host))
			return &c->resolves[i];
	return NULL;
}
