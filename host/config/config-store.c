/* SPDX-License-Identifier: Apache-2.0 */
/* The "store" section of the configuration (docs/CONFIG.md; the struct is the store's,
 * host/store/store-config.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config-store.h"
#include "config-util.h"

/* The connection string must parse (libpq's own parser) and hold no password: the file
 * may be readable by others (a NixOS configuration is world-readable in the store). */
static int check_conninfo(const char *ci, struct orch_error *err)
{
	const char *p = "store.postgresql.conninfo";
	PQconninfoOption *opts;
	char *msg = NULL;
	int r = 0;

	opts = PQconninfoParse(ci, &msg);
	if (!opts) {
		r = orch_err(err, -EINVAL, "%s: %s", p,
			     msg ? strtok(msg, "\n") : "cannot parse the connection string");
		PQfreemem(msg);
		return r;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "password") == 0)
			r = orch_err(err, -EINVAL,
				     "%s: holds a password; put it in a file of its own and name "
				     "that in store.postgresql.password_file",
				     p);
	PQconninfoFree(opts);
	return r;
}

static int parse_pg(json_t *o, struct store_config *c, struct orch_error *err)
{
	static const char *const keys[] = {
		"conninfo",	"password_file", "node",    "statement_timeout_ms",
		"heartbeat_ms", "node_lease_ms", "poll_ms", NULL};
	const char *p = "store.postgresql";
	int r;

	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0 ||
	    (r = cfg_string(o, p, "conninfo", 4096, false, &c->conninfo, err)) < 0 ||
	    (r = cfg_path(o, p, "password_file", true, &c->password_file, err)) < 0 ||
	    (r = cfg_string(o, p, "node", STORE_NODE_MAX, true, &c->node, err)) < 0 ||
	    (r = cfg_int(o, p, "statement_timeout_ms", 100, 600000, &c->statement_timeout_ms,
			 err)) < 0 ||
	    (r = cfg_int(o, p, "heartbeat_ms", 100, 60000, &c->heartbeat_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "node_lease_ms", 300, 600000, &c->node_lease_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "poll_ms", 100, 60000, &c->poll_ms, err)) < 0)
		return r;
	if (!c->conninfo)
		return orch_err(err, -EINVAL,
				"%s.conninfo: required (e.g. \"host=/run/postgresql "
				"dbname=orch user=orch\")",
				p);
	if ((r = check_conninfo(c->conninfo, err)) < 0)
		return r;
	if (c->node && !store_node_name_valid(c->node))
		return orch_err(err, -EINVAL,
				"%s.node: expected a name of letters, digits, '.', '_' and '-' (at "
				"most %d, not starting with '.' or '-')",
				p, STORE_NODE_MAX);
	if (c->node_lease_ms < 3 * c->heartbeat_ms)
		return orch_err(
			err, -EINVAL,
			"%s.node_lease_ms: must be at least 3 × heartbeat_ms (%lld), so that "
			"a late heartbeat or two does not cost a node its tasks",
			p, (long long)(3 * c->heartbeat_ms));
	c->kind = STORE_POSTGRESQL;
	return 0;
}

int store_config_parse(json_t *v, struct store_config **ret, struct orch_error *err)
{
	static const char *const keys[] = {"sqlite", "postgresql", NULL};
	struct store_config *c = calloc(1, sizeof(*c));
	json_t *sq, *pg;
	int r = 0;

	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	store_config_defaults(c);
	if (v) {
		if ((r = cfg_object(v, "store", err)) >= 0)
			r = cfg_check_keys(v, "store", keys, err);
		sq = r >= 0 ? json_object_get(v, "sqlite") : NULL;
		pg = r >= 0 ? json_object_get(v, "postgresql") : NULL;
		if (r >= 0 && sq && pg)
			r = orch_err(err, -EINVAL,
				     "store: expected one of \"sqlite\" and \"postgresql\"");
		if (r >= 0 && sq &&
		    ((r = cfg_object(sq, "store.sqlite", err)) >= 0 && json_object_size(sq)))
			r = orch_err(err, -EINVAL, "store.sqlite.%s: unknown key",
				     json_object_iter_key(json_object_iter(sq)));
		if (r >= 0 && pg)
			r = parse_pg(pg, c, err);
	}
	if (r < 0) {
		store_config_free(c);
		return r;
	}
	*ret = c;
	return 0;
}
