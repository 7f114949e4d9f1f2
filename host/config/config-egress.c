/* SPDX-License-Identifier: Apache-2.0 */
/* The egress configuration (egress-config.h). */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "strv.h"
#include "config-util.h"
#include "config.h"
#include "config-egress.h"
#include "egress.h"

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* "host:port", "[v6]:port", "*.suffix:port". */
static int parse_rule(const char *s, const char *path, struct egress_rule *ret,
		      struct orch_error *err)
{
	_cleanup_free_ char *copy = strdup(s);
	char *host, *colon, *end;
	long port;

	if (!copy)
		return orch_err(err, -ENOMEM, "out of memory");
	lower(copy);
	host = copy;
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		if (!close || close[1] != ':')
			return orch_err(err, -EINVAL, "%s: \"%s\": expected [IPv6]:port", path, s);
		*close = 0;
		host++;
		colon = close + 1;
	} else {
		colon = strrchr(host, ':');
		if (!colon)
			return orch_err(err, -EINVAL, "%s: \"%s\": expected host:port", path, s);
		*colon = 0;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 1 || port > 65535)
		return orch_err(err, -EINVAL, "%s: \"%s\": bad port", path, s);
	ret->wildcard = !strncmp(host, "*.", 2);
	if (ret->wildcard)
		host += 2;
	if (!orch_egress_host_valid(host) || (ret->wildcard && orch_egress_host_is_ip(host)) ||
	    (strchr(host, ':') && s[0] != '['))
		return orch_err(err, -EINVAL,
				"%s: \"%s\": expected a host name, *.domain or an IP literal", path,
				s);
	if (!(ret->host = strdup(host)))
		return orch_err(err, -ENOMEM, "out of memory");
	ret->port = (uint16_t)port;
	return 0;
}

static int parse_sets(json_t *o, struct egress_config *c, struct orch_error *err)
{
	const char *name;
	json_t *v;
	char p[160];
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, "egress.sets", err)) < 0)
		return r;
	if (json_object_size(o) > EGRESS_MAX_SETS)
		return orch_err(err, -E2BIG, "egress.sets: at most %d sets", EGRESS_MAX_SETS);
	if (!(c->sets = calloc(json_object_size(o) + 1, sizeof(*c->sets))))
		return orch_err(err, -ENOMEM, "out of memory");
	json_object_foreach(o, name, v)
	{
		struct egress_set *s = &c->sets[c->n_sets++];
		size_t i;
		json_t *e;
		snprintf(p, sizeof(p), "egress.sets.%s", name);
		if (!orchd_name_valid(name))
			return orch_err(err, -EINVAL, "%s: not a valid set name", p);
		if (!(s->name = strdup(name)))
			return orch_err(err, -ENOMEM, "out of memory");
		if (!json_is_array(v) || json_array_size(v) > EGRESS_MAX_RULES)
			return orch_err(err, -EINVAL,
					"%s: expected an array of at most %d \"host:port\" strings",
					p, EGRESS_MAX_RULES);
		if (!(s->rules = calloc(json_array_size(v) + 1, sizeof(*s->rules))))
			return orch_err(err, -ENOMEM, "out of memory");
		json_array_foreach(v, i, e)
		{
			char ep[200];
			snprintf(ep, sizeof(ep), "%s[%zu]", p, i);
			if (!json_is_string(e))
				return orch_err(err, -EINVAL, "%s: expected a string", ep);
			if ((r = parse_rule(json_string_value(e), ep, &s->rules[s->n_rules], err)) <
			    0)
				return r;
			s->n_rules++;
		}
	}
	return 0;
}

static int parse_resolve(json_t *o, struct egress_config *c, struct orch_error *err)
{
	const char *name;
	json_t *v;
	int r;

	if (!o)
		return 0;
	if ((r = cfg_object(o, "egress.resolve", err)) < 0)
		return r;
	if (json_object_size(o) > EGRESS_MAX_NAMES)
		return orch_err(err, -E2BIG, "egress.resolve: at most %d names", EGRESS_MAX_NAMES);
	if (!(c->resolves = calloc(json_object_size(o) + 1, sizeof(*c->resolves))))
		return orch_err(err, -ENOMEM, "out of memory");
	json_object_foreach(o, name, v)
	{
		struct egress_resolve *e = &c->resolves[c->n_resolves++];
		if (!(e->host = strdup(name)))
			return orch_err(err, -ENOMEM, "out of memory");
		lower(e->host);
		if (!orch_egress_host_valid(e->host) || orch_egress_host_is_ip(e->host))
			return orch_err(err, -EINVAL, "egress.resolve.%s: not a host name", name);
		json_t *arr = json_is_string(v) ? json_pack("[O]", v) : json_incref(v);
		_cleanup_json_ json_t *holder = json_pack("{so}", "a", arr);
		if ((r = cfg_strv(holder, "egress.resolve", "a", 16, 64, &e->addrs, &e->n_addrs,
				  err)) < 0)
			return orch_err(err, -EINVAL,
					"egress.resolve.%s: expected an address or an array of "
					"addresses",
					name);
		for (size_t i = 0; i < e->n_addrs; i++)
			if (!orch_egress_host_is_ip(e->addrs[i]))
				return orch_err(err, -EINVAL,
						"egress.resolve.%s: \"%s\" is not an IP address",
						name, e->addrs[i]);
		if (e->n_addrs == 0)
			return orch_err(err, -EINVAL, "egress.resolve.%s: no address", name);
	}
	return 0;
}

static int parse_inject(json_t *a, struct egress_config *c, struct orch_error *err)
{
	static const char *const keys[] = {"host", "header", "prefix", "key_file", NULL};
	size_t i;
	json_t *v;
	int r;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > EGRESS_MAX_NAMES)
		return orch_err(err, -EINVAL, "egress.inject: expected an array of objects");
	if (!(c->injects = calloc(json_array_size(a) + 1, sizeof(*c->injects))))
		return orch_err(err, -ENOMEM, "out of memory");
	json_array_foreach(a, i, v)
	{
		struct egress_inject *in = &c->injects[c->n_injects++];
		_cleanup_free_ char *hp = NULL;
		struct egress_rule rule = {0};
		char p[64];
		snprintf(p, sizeof(p), "egress.inject[%zu]", i);
		if ((r = cfg_object(v, p, err)) < 0 || (r = cfg_check_keys(v, p, keys, err)) < 0 ||
		    (r = cfg_string(v, p, "host", 300, false, &hp, err)) < 0 ||
		    (r = cfg_string(v, p, "header", 256, false, &in->header, err)) < 0 ||
		    (r = cfg_string(v, p, "prefix", 256, false, &in->prefix, err)) < 0 ||
		    (r = cfg_path(v, p, "key_file", false, &in->key_file, err)) < 0)
			return r;
		if (!hp || !in->header || !in->key_file)
			return orch_err(err, -EINVAL, "%s: host, header and key_file are required",
					p);
		if ((r = parse_rule(hp, p, &rule, err)) < 0)
			return r;
		in->host = rule.host;
		in->port = rule.port;
		if (rule.wildcard || orch_egress_host_is_ip(in->host))
			return orch_err(err, -EINVAL, "%s.host: one exact host name:port", p);
		if (!orch_egress_token_valid(in->header, strlen(in->header)))
			return orch_err(err, -EINVAL, "%s.header: not a header name", p);
		if (!in->prefix && !(in->prefix = strdup("")))
			return orch_err(err, -ENOMEM, "out of memory");
		if (!orch_egress_value_valid(in->prefix, strlen(in->prefix)))
			return orch_err(err, -EINVAL, "%s.prefix: control characters", p);
	}
	return 0;
}

int egress_config_parse(json_t *o, struct egress_config **ret, struct orch_error *err)
{
	static const char *const keys[] = {
		"sets",	  "allow_private",    "resolve",  "inject", "dlp_patterns",
		"limits", "upstream_ca_file", "log_keep", NULL};
	static const char *const lkeys[] = {"connections", "bytes", "duration_ms",
					    "connect_timeout_ms", NULL};
	struct egress_config *c = calloc(1, sizeof(*c));
	json_t *l;
	int r;

	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	c->limits = (struct egress_limits){
		.connections = 32, .bytes = 0, .duration_ms = 3600000, .connect_timeout_ms = 10000};
	c->log_keep = 100000;
	if ((r = cfg_object(o, "egress", err)) < 0 ||
	    (r = cfg_check_keys(o, "egress", keys, err)) < 0 ||
	    (r = cfg_int(o, "egress", "log_keep", 100, 100000000, &c->log_keep, err)) < 0 ||
	    (r = parse_sets(json_object_get(o, "sets"), c, err)) < 0 ||
	    (r = cfg_strv(o, "egress", "allow_private", EGRESS_MAX_NAMES, ORCH_EGRESS_MAX_HOST,
			  &c->allow_private, &c->n_allow_private, err)) < 0 ||
	    (r = parse_resolve(json_object_get(o, "resolve"), c, err)) < 0 ||
	    (r = parse_inject(json_object_get(o, "inject"), c, err)) < 0 ||
	    (r = cfg_strv(o, "egress", "dlp_patterns", EGRESS_MAX_NAMES, 1024, &c->dlp_patterns,
			  &c->n_dlp, err)) < 0 ||
	    (r = cfg_path(o, "egress", "upstream_ca_file", true, &c->upstream_ca_file, err)) < 0)
		goto fail;
	for (size_t i = 0; i < c->n_allow_private; i++) {
		lower(c->allow_private[i]);
		if (!orch_egress_host_valid(c->allow_private[i])) {
			r = orch_err(err, -EINVAL, "egress.allow_private[%zu]: not a host name", i);
			goto fail;
		}
	}
	for (size_t i = 0; i < c->n_dlp; i++) {
		regex_t re;
		if (regcomp(&re, c->dlp_patterns[i], REG_EXTENDED | REG_NOSUB) != 0) {
			r = orch_err(err, -EINVAL,
				     "egress.dlp_patterns[%zu]: not a POSIX extended regular "
				     "expression",
				     i);
			goto fail;
		}
		regfree(&re);
	}
	if ((l = json_object_get(o, "limits")) &&
	    ((r = cfg_object(l, "egress.limits", err)) < 0 ||
	     (r = cfg_check_keys(l, "egress.limits", lkeys, err)) < 0 ||
	     (r = cfg_int(l, "egress.limits", "connections", 1, 1024, &c->limits.connections,
			  err)) < 0 ||
	     (r = cfg_int(l, "egress.limits", "bytes", 0, INT64_MAX, &c->limits.bytes, err)) < 0 ||
	     (r = cfg_int(l, "egress.limits", "duration_ms", 0, 7LL * 24 * 3600 * 1000,
			  &c->limits.duration_ms, err)) < 0 ||
	     (r = cfg_int(l, "egress.limits", "connect_timeout_ms", 100, 600000,
			  &c->limits.connect_timeout_ms, err)) < 0))
		goto fail;
	*ret = c;
	return 0;
fail:
	egress_config_free(c);
	return r;
}

void egress_config_free(struct egress_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_sets; i++) {
		for (size_t j = 0; j < c->sets[i].n_rules; j++)
			free(c->sets[i].rules[j].host);
		free(c->sets[i].rules);
		free(c->sets[i].name);
	}
	free(c->sets);
	orch_strv_free(c->allow_private);
	for (size_t i = 0; i < c->n_resolves; i++) {
		free(c->resolves[i].host);
		orch_strv_free(c->resolves[i].addrs);
	}
	free(c->resolves);
	for (size_t i = 0; i < c->n_injects; i++) {
		free(c->injects[i].host);
		free(c->injects[i].header);
		free(c->injects[i].prefix);
		free(c->injects[i].key_file);
	}
	free(c->injects);
	orch_strv_free(c->dlp_patterns);
	free(c->upstream_ca_file);
	free(c);
}

const struct egress_set *egress_config_set(const struct egress_config *c, const char *name)
{
	for (size_t i = 0; c && i < c->n_sets; i++)
		if (!strcmp(c->sets[i].name, name))
			return &c->sets[i];
	return NULL;
}

int egress_config_check_names(const struct egress_config *c, char *const *names, const char *path,
			      struct orch_error *err)
{
	for (size_t i = 0; names && names[i]; i++)
		if (!egress_config_set(c, names[i]))
			return orch_err(err, -EINVAL, "%s: no egress set named \"%s\"%s", path,
					names[i], c ? "" : " (there is no egress section)");
	return 0;
}
