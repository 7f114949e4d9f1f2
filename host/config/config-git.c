/* SPDX-License-Identifier: Apache-2.0 */
/* The "git" section of orchd's config (config-git.h). */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "strv.h"
#include "config-util.h"
#include "config-git.h"

static const char *const default_refs[] = {"orch/*", NULL};
static const char *const default_protected[] = {".github/workflows/",
						".gitlab-ci.yml",
						".githooks/",
						".husky/",
						".pre-commit-config.yaml",
						NULL};
static const char *const default_secrets[] = {"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----",
					      "gh[pousr]_[A-Za-z0-9]{36,}",
					      "github_pat_[A-Za-z0-9_]{40,}",
					      "AKIA[0-9A-Z]{16}",
					      "sk-ant-[A-Za-z0-9_-]{20,}",
					      "xox[abprs]-[A-Za-z0-9-]{10,}",
					      NULL};

static char **strv_dup(const char *const *v, size_t *ret_n)
{
	size_t n = 0;
	while (v[n])
		n++;
	char **out = calloc(n + 1, sizeof(char *));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(out[i] = strdup(v[i]))) {
			orch_strv_free(out);
			return NULL;
		}
	*ret_n = n;
	return out;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f)
			return false;
	return true;
}

bool git_repo_is_local(const char *repo)
{
	return repo[0] == '/' || strncmp(repo, "file://", 7) == 0;
}

bool git_repo_valid(const char *repo)
{
	static const char *const schemes[] = {"https://", "http://", "ssh://",
					      "git://",	  "file://", NULL};
	size_t n = strlen(repo);
	if (n == 0 || n > 4096 || repo[0] == '-' || !printable(repo))
		return false;
	/* "<transport>::<address>" runs a remote helper (ext::, fd::, ...) */
	if (strstr(repo, "::"))
		return false;
	if (repo[0] == '/')
		return strstr(repo, "/../") == NULL && strcmp(repo + n - (n >= 3 ? 3 : n), "/..");
	for (size_t i = 0; schemes[i]; i++) {
		size_t l = strlen(schemes[i]);
		if (strncmp(repo, schemes[i], l) != 0)
			continue;
		const char *rest = repo + l;
		if (strcmp(schemes[i], "file://") == 0)
			return rest[0] == '/' && strstr(rest, "/../") == NULL;
		/* authority up to the first '/': no password, no leading '-' host */
		size_t auth = strcspn(rest, "/");
		if (auth == 0 || rest[0] == '-')
			return false;
		const char *at = memchr(rest, '@', auth);
		const char *host = at ? at + 1 : rest;
		if (host[0] == '-' || (at && memchr(rest, ':', (size_t)(at - rest))))
			return false; /* user:password@ is refused: credentials live in the config */
		return true;
	}
	if (strstr(repo, "://"))
		return false; /* other transports (ext::, fd::, ...) */
	/* scp-like [user@]host:path, the host without '/' */
	const char *colon = strchr(repo, ':');
	if (!colon || colon == repo || memchr(repo, '/', (size_t)(colon - repo)))
		return false;
	const char *at = memchr(repo, '@', (size_t)(colon - repo));
	const char *host = at ? at + 1 : repo;
	return host < colon && host[0] != '-' && colon[1] != '\0';
}

bool git_ref_valid(const char *ref)
{
	size_t n = strlen(ref);
	if (n == 0 || n > 255 || ref[0] == '-' || !printable(ref))
		return false;
	for (const char *p = ref; *p; p++)
		if (strchr("~^:?*[\\", *p))
			return false;
	return strstr(ref, "..") == NULL && strstr(ref, "@{") == NULL;
}

bool git_refname_valid(const char *ref)
{
	size_t n = strlen(ref);
	if (!git_ref_valid(ref) || ref[0] == '/' || ref[n - 1] == '/' || ref[n - 1] == '.' ||
	    strstr(ref, "//") || strcmp(ref, "@") == 0)
		return false;
	/* no component begins with '.' or ends with ".lock" */
	for (const char *c = ref; *c;) {
		size_t l = strcspn(c, "/");
		if (c[0] == '.' || (l >= 5 && strncmp(c + l - 5, ".lock", 5) == 0))
			return false;
		c += l;
		if (*c == '/')
			c++;
	}
	return true;
}

static int parse_cred(json_t *o, const char *p, struct git_cred *c, struct orch_error *err)
{
	static const char *const keys[] = {"url",	   "username",	  "token_file",
					   "ssh_key_file", "known_hosts", NULL};
	int r;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0 ||
	    (r = cfg_string(o, p, "url", 4096, false, &c->url, err)) < 0 ||
	    (r = cfg_string(o, p, "username", 256, false, &c->username, err)) < 0 ||
	    (r = cfg_path(o, p, "token_file", true, &c->token_file, err)) < 0 ||
	    (r = cfg_path(o, p, "ssh_key_file", true, &c->ssh_key_file, err)) < 0 ||
	    (r = cfg_path(o, p, "known_hosts", true, &c->known_hosts, err)) < 0)
		return r;
	if (!c->url || !*c->url || !printable(c->url) || c->url[0] == '-')
		return orch_err(err, -EINVAL, "%s.url: expected a URL prefix", p);
	if (!c->token_file == !c->ssh_key_file)
		return orch_err(err, -EINVAL, "%s: expected one of token_file and ssh_key_file", p);
	if (c->username && (!printable(c->username) || strchr(c->username, ':')))
		return orch_err(err, -EINVAL, "%s.username: expected a user name without ':'", p);
	if (!c->username && !(c->username = strdup("x-access-token")))
		return orch_err(err, -ENOMEM, "out of memory");
	return 0;
}

static int parse_push(json_t *o, struct git_push_policy *pp, struct orch_error *err)
{
	static const char *const keys[] = {"refs",	"protected_paths", "secret_patterns",
					   "max_files", "max_bytes",	   "max_file_bytes",
					   NULL};
	const char *p = "git.push";
	int r;
	if (!o)
		return 0;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		return r;
	if (json_object_get(o, "refs")) {
		orch_strv_free(pp->refs);
		pp->refs = NULL;
	}
	if (json_object_get(o, "protected_paths")) {
		orch_strv_free(pp->protected_paths);
		pp->protected_paths = NULL;
	}
	if (json_object_get(o, "secret_patterns")) {
		orch_strv_free(pp->secret_patterns);
		pp->secret_patterns = NULL;
	}
	if ((r = cfg_strv(o, p, "refs", GIT_MAX_LIST, 255, &pp->refs, &pp->n_refs, err)) < 0 ||
	    (r = cfg_strv(o, p, "protected_paths", GIT_MAX_LIST, 4096, &pp->protected_paths,
			  &pp->n_protected, err)) < 0 ||
	    (r = cfg_strv(o, p, "secret_patterns", GIT_MAX_LIST, 4096, &pp->secret_patterns,
			  &pp->n_secret_patterns, err)) < 0 ||
	    (r = cfg_int(o, p, "max_files", 0, 10000000, &pp->max_files, err)) < 0 ||
	    (r = cfg_int(o, p, "max_bytes", 0, INT64_C(1) << 40, &pp->max_bytes, err)) < 0 ||
	    (r = cfg_int(o, p, "max_file_bytes", 0, INT64_C(1) << 40, &pp->max_file_bytes, err)) <
		    0)
		return r;
	if (!pp->refs && !(pp->refs = calloc(1, sizeof(char *))))
		return orch_err(err, -ENOMEM, "out of memory");
	if (!pp->protected_paths && !(pp->protected_paths = calloc(1, sizeof(char *))))
		return orch_err(err, -ENOMEM, "out of memory");
	if (!pp->secret_patterns && !(pp->secret_patterns = calloc(1, sizeof(char *))))
		return orch_err(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < pp->n_refs; i++)
		if (!*pp->refs[i] || !printable(pp->refs[i]))
			return orch_err(err, -EINVAL, "git.push.refs[%zu]: expected a ref pattern",
					i);
	for (size_t i = 0; i < pp->n_protected; i++)
		if (!*pp->protected_paths[i] || pp->protected_paths[i][0] == '/')
			return orch_err(err, -EINVAL,
					"git.push.protected_paths[%zu]: expected a path relative "
					"to the repository's top",
					i);
	for (size_t i = 0; i < pp->n_secret_patterns; i++) {
		regex_t re;
		if (regcomp(&re, pp->secret_patterns[i], REG_EXTENDED | REG_NOSUB) != 0)
			return orch_err(err, -EINVAL,
					"git.push.secret_patterns[%zu]: not a POSIX extended "
					"regular expression",
					i);
		regfree(&re);
	}
	return 0;
}

static int parse_remotes(json_t *o, struct git_config *c, struct orch_error *err)
{
	const char *name;
	json_t *v;
	if (!o)
		return 0;
	if (!json_is_object(o) || json_object_size(o) > GIT_MAX_LIST)
		return orch_err(err, -EINVAL, "git.remotes: expected an object of at most %d URLs",
				GIT_MAX_LIST);
	c->remotes = calloc(json_object_size(o) + 1, sizeof(*c->remotes));
	if (!c->remotes)
		return orch_err(err, -ENOMEM, "out of memory");
	json_object_foreach(o, name, v)
	{
		bool ok = *name && strlen(name) <= 64;
		for (const char *s = name; *s; s++)
			ok = ok && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
				    (*s >= '0' && *s <= '9') || *s == '_' || *s == '-');
		if (!ok)
			return orch_err(err, -EINVAL,
					"git.remotes.%.64s: names must match [A-Za-z0-9_-]{1,64}",
					name);
		if (!json_is_string(v) || !git_repo_valid(json_string_value(v)))
			return orch_err(err, -EINVAL,
					"git.remotes.%s: expected a repository URL or absolute "
					"path",
					name);
		struct git_remote *rm = &c->remotes[c->n_remotes++];
		if (!(rm->name = strdup(name)) || !(rm->url = strdup(json_string_value(v))))
			return orch_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int set_defaults(struct git_config *c, const char *state_dir, struct orch_error *err)
{
	c->workspace_mib = 4096;
	c->workspace_inodes = 0;
	c->min_free_mib = 1024;
	c->keep_workspaces = 10;
	c->fetch_interval_ms = 60000;
	c->timeout_ms = 600000;
	c->max_repo_mib = 8192;
	c->max_result_mib = 512;
	c->max_diff_mib = 64;
	c->push.max_files = 5000;
	c->push.max_bytes = 64 * 1024 * 1024;
	c->push.max_file_bytes = 16 * 1024 * 1024;
	if (asprintf(&c->dir, "%s/git", state_dir) < 0) {
		c->dir = NULL;
		return orch_err(err, -ENOMEM, "out of memory");
	}
	if (!(c->push.refs = strv_dup(default_refs, &c->push.n_refs)) ||
	    !(c->push.protected_paths = strv_dup(default_protected, &c->push.n_protected)) ||
	    !(c->push.secret_patterns = strv_dup(default_secrets, &c->push.n_secret_patterns)))
		return orch_err(err, -ENOMEM, "out of memory");
	return 0;
}

int git_config_parse(json_t *o, const char *state_dir, struct git_config **ret,
		     struct orch_error *err)
{
	static const char *const keys[] = {"dir",
					   "workspace_mib",
					   "workspace_inodes",
					   "min_free_mib",
					   "keep_workspaces",
					   "fetch_interval_ms",
					   "timeout_ms",
					   "max_repo_mib",
					   "max_result_mib",
					   "max_diff_mib",
					   "credentials",
					   "remotes",
					   "push",
					   NULL};
	const char *p = "git";
	struct git_config *c = calloc(1, sizeof(*c));
	json_t *creds, *v;
	size_t i;
	int r;

	if (!c)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = set_defaults(c, state_dir, err)) < 0)
		goto fail;
	if (!o)
		goto done;
	if ((r = cfg_object(o, p, err)) < 0 || (r = cfg_check_keys(o, p, keys, err)) < 0)
		goto fail;
	if (json_object_get(o, "dir")) {
		free(c->dir);
		c->dir = NULL;
	}
	if ((r = cfg_path(o, p, "dir", false, &c->dir, err)) < 0 ||
	    (r = cfg_int(o, p, "workspace_mib", 16, 16 * 1024 * 1024, &c->workspace_mib, err)) <
		    0 ||
	    (r = cfg_int(o, p, "workspace_inodes", 0, 1 << 30, &c->workspace_inodes, err)) < 0 ||
	    (r = cfg_int(o, p, "min_free_mib", 0, 16 * 1024 * 1024, &c->min_free_mib, err)) < 0 ||
	    (r = cfg_int(o, p, "keep_workspaces", 0, 100000, &c->keep_workspaces, err)) < 0 ||
	    (r = cfg_int(o, p, "fetch_interval_ms", 0, 86400000, &c->fetch_interval_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "timeout_ms", 1000, 86400000, &c->timeout_ms, err)) < 0 ||
	    (r = cfg_int(o, p, "max_repo_mib", 1, 16 * 1024 * 1024, &c->max_repo_mib, err)) < 0 ||
	    (r = cfg_int(o, p, "max_result_mib", 1, 1024 * 1024, &c->max_result_mib, err)) < 0 ||
	    (r = cfg_int(o, p, "max_diff_mib", 1, 1024 * 1024, &c->max_diff_mib, err)) < 0 ||
	    (r = parse_remotes(json_object_get(o, "remotes"), c, err)) < 0 ||
	    (r = parse_push(json_object_get(o, "push"), &c->push, err)) < 0)
		goto fail;
	creds = json_object_get(o, "credentials");
	if (creds) {
		if (!json_is_array(creds) || json_array_size(creds) > GIT_MAX_LIST) {
			r = orch_err(err, -EINVAL,
				     "git.credentials: expected an array of at most %d objects",
				     GIT_MAX_LIST);
			goto fail;
		}
		c->creds = calloc(json_array_size(creds) + 1, sizeof(*c->creds));
		if (!c->creds) {
			r = orch_err(err, -ENOMEM, "out of memory");
			goto fail;
		}
		json_array_foreach(creds, i, v)
		{
			char cp[48];
			snprintf(cp, sizeof(cp), "git.credentials[%zu]", i);
			c->n_creds++;
			if ((r = parse_cred(v, cp, &c->creds[i], err)) < 0)
				goto fail;
		}
	}
done:
	*ret = c;
	return 0;
fail:
	git_config_free(c);
	return r;
}

void git_config_free(struct git_config *c)
{
	if (!c)
		return;
	free(c->dir);
	for (size_t i = 0; i < c->n_creds; i++) {
		free(c->creds[i].url);
		free(c->creds[i].username);
		free(c->creds[i].token_file);
		free(c->creds[i].ssh_key_file);
		free(c->creds[i].known_hosts);
	}
	free(c->creds);
	for (size_t i = 0; i < c->n_remotes; i++) {
		free(c->remotes[i].name);
		free(c->remotes[i].url);
	}
	free(c->remotes);
	orch_strv_free(c->push.refs);
	orch_strv_free(c->push.protected_paths);
	orch_strv_free(c->push.secret_patterns);
	free(c);
}

const struct git_remote *git_config_remote(const struct git_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_remotes; i++)
		if (strcmp(c->remotes[i].name, name) == 0)
			return &c->remotes[i];
	return NULL;
}

const struct git_cred *git_config_cred(const struct git_config *c, const char *url)
{
	const struct git_cred *best = NULL;
	for (size_t i = 0; i < c->n_creds; i++) {
		size_t l = strlen(c->creds[i].url);
		if (strncmp(url, c->creds[i].url, l) == 0 && (!best || l > strlen(best->url)))
			best = &c->creds[i];
	}
	return best;
}
