/* SPDX-License-Identifier: Apache-2.0 */
/* Agent profiles: every shipped profile's generated command and environment, the
 * config's profiles on top, strict parsing, and the file writer run for real. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check-run.h"
#include "cleanup.h"
#include "orch-config.h"
#include "agents.h"
#include "profile.h"
#include "schema.h"

static struct orch_profiles ps;

static void load(void)
{
	struct orch_error err = {0};
	memset(&ps, 0, sizeof(ps));
	int r = orch_profiles_load(&ps, ORCH_SOURCEDIR "/host/profiles", NULL, &err);
	ck_assert_msg(r == 0, "load: %s", err.msg);
}

static void unload(void)
{
	orch_profiles_done(&ps);
}

static const char *env_get(char *const *env, const char *key)
{
	size_t n = strlen(key);
	for (; *env; env++)
		if (!strncmp(*env, key, n) && (*env)[n] == '=')
			return *env + n + 1;
	return NULL;
}

static size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

/* Index of the first argv element equal to s, or -1. */
static int argv_find(char *const *v, const char *s)
{
	for (int i = 0; v[i]; i++)
		if (!strcmp(v[i], s))
			return i;
	return -1;
}

static const struct orch_profile *get(const char *name)
{
	const struct orch_profile *p = orch_profiles_find(&ps, name);
	ck_assert_msg(p != NULL, "no shipped profile %s", name);
	ck_assert(!p->from_config);
	return p;
}

START_TEST(test_all_shipped)
{
	const char *names[] = {"base", "claude", "codex", "gemini", "opencode", "pi"};
	ck_assert_uint_eq(ps.n, ELEMENTSOF(names));
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		ck_assert_str_eq(ps.v[i].name, names[i]); /* sorted */
		ck_assert_ptr_nonnull(ps.v[i].description);
		ck_assert(strlen(ps.v[i].description) > 0);
		/* No real key anywhere; every endpoint is the in-jail one. */
		for (size_t k = 0; k < ps.v[i].n_env; k++) {
			const char *e = ps.v[i].env[k];
			ck_assert_msg(!strstr(e, "sk-"), "%s: %s looks like a key", names[i], e);
			if (strstr(e, "_URL="))
				ck_assert_msg(strstr(e, "=http://127.0.0.1:4000") != NULL, "%s: %s",
					      names[i], e);
			if (strstr(e, "_KEY="))
				ck_assert_str_eq(strchr(e, '=') + 1, ORCH_PROFILE_PLACEHOLDER_KEY);
		}
		/* every agent profile runs the installed agent of its own name */
		if (i > 0) {
			ck_assert_str_eq(ps.v[i].agent, names[i]);
			ck_assert_ptr_nonnull(orch_agent_kind_find(ps.v[i].agent));
		} else {
			ck_assert_ptr_null(ps.v[i].agent);
		}
		for (size_t k = 0; k < ps.v[i].n_files; k++) {
			ck_assert(!strstr(ps.v[i].files[k].content, "sk-"));
			if (strstr(ps.v[i].files[k].content, "http"))
				ck_assert(strstr(ps.v[i].files[k].content, "127.0.0.1:4000"));
		}
	}
}
END_TEST

START_TEST(test_base)
{
	struct orch_error err = {0};
	struct orch_profile_cmd c;
	ck_assert_int_eq(orch_profile_command(get("base"), NULL, "echo hi; id -u", NULL, &c, &err),
			 0);
	ck_assert_uint_eq(strv_len(c.argv), 3);
	ck_assert_str_eq(c.argv[0], "/bin/sh");
	ck_assert_str_eq(c.argv[1], "-c");
	ck_assert_str_eq(c.argv[2], "echo hi; id -u");
	ck_assert_str_eq(env_get(c.env, "HOME"), "/tmp/home");
	ck_assert_ptr_null(env_get(c.env, "ORCH_FILES"));
	orch_profile_cmd_done(&c);
}
END_TEST

/* Checks a profile that writes config files: argv = sh -c WRITER orch-profile CMD...
 * and returns the index of CMD in argv. */
static int check_writer(const struct orch_profile_cmd *c, const char *cmd0, size_t nfiles)
{
	ck_assert_str_eq(c->argv[0], "/bin/sh");
	ck_assert_str_eq(c->argv[1], "-c");
	ck_assert_str_eq(c->argv[3], "orch-profile");
	ck_assert_str_eq(c->argv[4], cmd0);
	char buf[32];
	snprintf(buf, sizeof(buf), "%zu", nfiles);
	ck_assert_str_eq(env_get(c->env, "ORCH_FILES"), buf);
	return 4;
}

START_TEST(test_claude)
{
	struct orch_error err = {0};
	struct orch_profile_cmd c;
	const struct orch_profile *p = get("claude");
	ck_assert_int_eq(orch_profile_command(p, NULL, "fix the tests", NULL, &c, &err), 0);
	check_writer(&c, "claude", 1);
	int i = argv_find(c.argv, "-p");
	ck_assert_int_gt(i, 4);
	ck_assert_str_eq(c.argv[i + 1], "fix the tests");
	ck_assert_ptr_null(c.argv[i + 2]);
	ck_assert_int_gt(argv_find(c.argv, "--dangerously-skip-permissions"), 4);
	ck_assert_str_eq(env_get(c.env, "ANTHROPIC_BASE_URL"), "http://127.0.0.1:4000");
	ck_assert_str_eq(env_get(c.env, "ANTHROPIC_API_KEY"), ORCH_PROFILE_PLACEHOLDER_KEY);
	ck_assert_str_eq(env_get(c.env, "DISABLE_AUTOUPDATER"), "1");
	ck_assert_str_eq(env_get(c.env, "ORCH_FILE_0_PATH"), ".claude/settings.json");
	const char *s = env_get(c.env, "ORCH_FILE_0_DATA");
	ck_assert(strstr(s, "\"WebFetch\"") && strstr(s, "\"WebSearch\""));
	ck_assert(strstr(s, "\"sandbox\":{\"enabled\":false}"));
	/* the installed agent: its current version read-only, its bin/ first in PATH */
	ck_assert_str_eq(c.ro_paths[0], "/opt/orch/agents/claude/current");
	ck_assert_ptr_null(c.ro_paths[1]);
	ck_assert_str_eq(env_get(c.env, "PATH"),
			 "/opt/orch/agents/claude/current/bin:" ORCH_TASK_PATH_DEFAULT);
	/* the model is pinned, also for Claude Code's background (haiku) calls */
	ck_assert_str_eq(env_get(c.env, "ANTHROPIC_MODEL"), "claude-sonnet-4-6");
	ck_assert_str_eq(env_get(c.env, "ANTHROPIC_DEFAULT_HAIKU_MODEL"),
			 "claude-haiku-4-5-20251001");
	ck_assert_int_eq(p->limits.timeout_ms, 7200000);
	orch_profile_cmd_done(&c);
	ck_assert_int_eq(orch_profile_command(p, "/srv/agents", "x", NULL, &c, &err), 0);
	ck_assert_str_eq(c.ro_paths[0], "/srv/agents/claude/current");
	ck_assert_str_eq(env_get(c.env, "PATH"),
			 "/srv/agents/claude/current/bin:" ORCH_TASK_PATH_DEFAULT);
	orch_profile_cmd_done(&c);
}
END_TEST

START_TEST(test_codex)
{
	struct orch_error err = {0};
	struct orch_profile_cmd c;
	ck_assert_int_eq(orch_profile_command(get("codex"), NULL, "do it", NULL, &c, &err), 0);
	check_writer(&c, "codex", 1);
	ck_assert_str_eq(c.argv[5], "exec");
	ck_assert_str_eq(c.argv[strv_len(c.argv) - 1], "do it");
	int i = argv_find(c.argv, "--sandbox");
	ck_assert_str_eq(c.argv[i + 1], "danger-full-access");
	ck_assert_str_eq(env_get(c.env, "OPENAI_BASE_URL"), "http://127.0.0.1:4000/v1");
	ck_assert_str_eq(env_get(c.env, "CODEX_HOME"), "/tmp/home/.codex");
	ck_assert_str_eq(env_get(c.env, "ORCH_FILE_0_PATH"), ".codex/config.toml");
	const char *s = env_get(c.env, "ORCH_FILE_0_DATA");
	ck_assert(strstr(s, "base_url = \"http://127.0.0.1:4000/v1\""));
	ck_assert(strstr(s, "web_search = \"disabled\""));
	ck_assert(strstr(s, "env_key = \"OPENAI_API_KEY\""));
	orch_profile_cmd_done(&c);
}
END_TEST

START_TEST(test_opencode_gemini_pi)
{
	struct orch_error err = {0};
	struct orch_profile_cmd c;
	ck_assert_int_eq(orch_profile_command(get("opencode"), NULL, "P", NULL, &c, &err), 0);
	check_writer(&c, "opencode", 1);
	ck_assert_str_eq(c.argv[5], "run");
	ck_assert_str_eq(c.argv[6], "P");
	ck_assert_str_eq(env_get(c.env, "ORCH_FILE_0_PATH"), ".config/opencode/opencode.json");
	ck_assert(strstr(env_get(c.env, "ORCH_FILE_0_DATA"), "\"webfetch\":false"));
	ck_assert(strstr(env_get(c.env, "ORCH_FILE_0_DATA"), "http://127.0.0.1:4000/v1"));
	orch_profile_cmd_done(&c);

	ck_assert_int_eq(orch_profile_command(get("gemini"), NULL, "P", NULL, &c, &err), 0);
	check_writer(&c, "gemini", 1);
	ck_assert_str_eq(env_get(c.env, "GOOGLE_GEMINI_BASE_URL"), "http://127.0.0.1:4000");
	ck_assert_str_eq(env_get(c.env, "GEMINI_SANDBOX"), "false");
	ck_assert(strstr(env_get(c.env, "ORCH_FILE_0_DATA"), "\"google_web_search\""));
	/* the API key auth type that -p accepts with GOOGLE_GEMINI_BASE_URL, and no folder
	 * trust (which would turn --yolo off for /workspace) */
	ck_assert(strstr(env_get(c.env, "ORCH_FILE_0_DATA"),
			 "\"auth\":{\"selectedType\":\"gemini-api-key\"}"));
	ck_assert(
		strstr(env_get(c.env, "ORCH_FILE_0_DATA"), "\"folderTrust\":{\"enabled\":false}"));
	ck_assert_str_eq(c.argv[argv_find(c.argv, "--model") + 1], "gemini-3.8-flash");
	ck_assert_str_eq(c.ro_paths[0], "/opt/orch/agents/gemini/current");
	int i = argv_find(c.argv, "-p");
	ck_assert_str_eq(c.argv[i + 1], "P");
	orch_profile_cmd_done(&c);

	ck_assert_int_eq(orch_profile_command(get("pi"), NULL, "P", NULL, &c, &err), 0);
	check_writer(&c, "pi", 1);
	ck_assert_str_eq(env_get(c.env, "ORCH_FILE_0_PATH"), ".pi/agent/models.json");
	ck_assert(strstr(env_get(c.env, "ORCH_FILE_0_DATA"), "\"anthropic-messages\""));
	ck_assert_str_eq(env_get(c.env, "ORCH_LLM_KEY"), ORCH_PROFILE_PLACEHOLDER_KEY);
	orch_profile_cmd_done(&c);
}
END_TEST

START_TEST(test_no_prompt_extra_args)
{
	struct orch_error err = {0};
	struct orch_profile_cmd c;
	const char *extra[] = {"a b", "c", NULL};
	ck_assert_int_eq(orch_profile_command(get("base"), NULL, NULL, extra, &c, &err), 0);
	ck_assert_uint_eq(strv_len(c.argv), 4);
	ck_assert_str_eq(c.argv[2], "a b");
	orch_profile_cmd_done(&c);

	_cleanup_free_ char *big = malloc(ORCH_PROFILE_MAX_PROMPT + 2);
	memset(big, 'x', ORCH_PROFILE_MAX_PROMPT + 1);
	big[ORCH_PROFILE_MAX_PROMPT + 1] = 0;
	ck_assert_int_eq(orch_profile_command(get("base"), NULL, big, NULL, &c, &err), -E2BIG);
	ck_assert(strstr(err.msg, "prompt"));
}
END_TEST

/* The writer, run for real: hostile file content arrives byte for byte and the command
 * gets the prompt as one argument. */
START_TEST(test_writer_runs)
{
	struct orch_error err = {0};
	static const char text[] =
		"{\"description\":\"t\",\"command\":[\"/bin/sh\",\"-c\","
		"\"cat \\\"$HOME/$1\\\"; printf '|%s|' \\\"$2\\\" \\\"${ORCH_FILES-unset}\\\"\","
		"\"x\"],\"prompt\":[\"dir/sub/f.txt\",\"<{prompt}>\"],"
		"\"files\":{\"dir/sub/f.txt\":\"a'b\\\"c $(false) `x` \\\\n\\nend\"}}";
	struct orch_profile p;
	ck_assert_int_eq(orch_profile_parse("t", text, strlen(text), &p, &err), 0);
	struct orch_profile_cmd c;
	ck_assert_int_eq(orch_profile_command(&p, NULL, "$HOME; rm -rf /", NULL, &c, &err), 0);

	char home[] = "/tmp/orch-profile-test.XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(home));
	size_t n = strv_len(c.env);
	char **env = calloc(n + 3, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		env[i] = c.env[i];
	char h[64];
	snprintf(h, sizeof(h), "HOME=%s", home);
	env[n] = h;
	env[n + 1] = "PATH=/usr/bin:/bin";
	int pfd[2];
	ck_assert_int_eq(pipe(pfd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		execve(c.argv[0], c.argv, env);
		_exit(127);
	}
	close(pfd[1]);
	char out[512] = {0};
	size_t len = 0;
	ssize_t k;
	while ((k = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)k;
	close(pfd[0]);
	int st;
	waitpid(pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_str_eq(out, "a'b\"c $(false) `x` \\n\nend|<$HOME; rm -rf />||unset|");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	ck_assert_int_eq(system(cmd), 0);
	free(env);
	orch_profile_cmd_done(&c);
	orch_profile_done(&p);
}
END_TEST

START_TEST(test_invalid)
{
	static const char *const bad[] = {
		"[]",
		"{\"command\":[]}",
		"{\"command\":[\"a\"],\"bogus\":1}",
		"{\"command\":[\"a\"],\"env\":{\"1X\":\"v\"}}",
		"{\"command\":[\"a\"],\"env\":{\"ORCH_FILES\":\"v\"}}",
		"{\"command\":[\"a\"],\"env\":{\"K\":1}}",
		"{\"command\":[\"a\"],\"files\":{\"../x\":\"v\"}}",
		"{\"command\":[\"a\"],\"files\":{\"/etc/x\":\"v\"}}",
		"{\"command\":[\"a\"],\"files\":{\"a/./b\":\"v\"}}",
		"{\"command\":[\"a\"],\"files\":{\"a b\":\"v\"}}",
		"{\"command\":[\"a\"],\"ro_paths\":[\"relative\"]}",
		"{\"command\":[\"a\"],\"ro_paths\":[\"/opt/../etc\"]}",
		"{\"command\":[\"a\"],\"ro_paths\":[\"/\"]}",
		"{\"command\":[\"a\"],\"ro_paths\":[\"/opt/\"]}",
		"{\"command\":[\"a\"],\"ro_paths\":[\"/a\",\"/b\",\"/c\",\"/d\",\"/e\",\"/f\","
		"\"/g\",\"/h\",\"/i\",\"/j\",\"/k\",\"/l\",\"/m\",\"/n\",\"/o\",\"/p\",\"/q\"]}",
		"{\"command\":[\"a\"],\"limits\":{\"pids\":-1}}",
		"{\"command\":[\"a\"],\"limits\":{\"bogus\":1}}",
		"{\"command\":[\"a\"],\"command\":[\"b\"]}",
		"{\"command\":[\"a\\u0000b\"]}",
		"{\"command\":\"a\"}",
		"{\"command\":[\"a\"],\"agent\":\"../x\"}",
		"{\"command\":[\"a\"],\"agent\":\"\"}",
		"{\"command\":[\"a\"],\"agent\":7}",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct orch_error err = {0};
		struct orch_profile p;
		int r = orch_profile_parse("x", bad[i], strlen(bad[i]), &p, &err);
		ck_assert_msg(r < 0, "accepted: %s", bad[i]);
		ck_assert_msg(strstr(err.msg, "profile x") != NULL, "message: %s", err.msg);
	}
	struct orch_error err = {0};
	struct orch_profile p;
	ck_assert_int_lt(orch_profile_parse("../x", "{\"command\":[\"a\"]}", 16, &p, &err), 0);
}
END_TEST

static void check_model_tokens(const char *profile, const char *s, const struct orchd_config *c)
{
	static const char *const prefixes[] = {"claude-", "gpt-", "gemini-"};
	for (const char *p = s; *p; p++) {
		for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
			size_t pl = strlen(prefixes[i]);
			if (strncmp(p, prefixes[i], pl) != 0 || (p > s && strchr("-_", p[-1])))
				continue;
			size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789.-");
			char tok[128];
			snprintf(tok, sizeof(tok), "%.*s", (int)n, p);
			if (!strpbrk(tok + pl, "0123456789"))
				continue; /* gemini-api-key, claude-code: not a model */
			bool found = false;
			for (size_t k = 0; k < c->llm.n_models; k++)
				found |= strcmp(c->llm.models[k].name, tok) == 0;
			ck_assert_msg(found,
				      "profile %s pins model %s, which host/orchd.example.json's "
				      "llm.models does not allow",
				      profile, tok);
		}
	}
}

/* Every model a shipped profile pins is in the example config's allowlist, with prices. */
START_TEST(test_models_allowed)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	char path[4096];
	snprintf(path, sizeof(path), "%s/host/orchd.example.json", ORCH_SOURCEDIR);
	ck_assert_msg(orchd_config_load(path, NULL, &c, &err) == 0, "%s", err.msg);
	for (size_t i = 0; i < ps.n; i++) {
		const struct orch_profile *p = &ps.v[i];
		for (size_t k = 0; k < p->n_command; k++)
			check_model_tokens(p->name, p->command[k], c);
		for (size_t k = 0; k < p->n_env; k++)
			check_model_tokens(p->name, p->env[k], c);
		for (size_t k = 0; k < p->n_files; k++)
			check_model_tokens(p->name, p->files[k].content, c);
	}
	orchd_config_free(c);
}
END_TEST

/* A profile's own PATH comes after its agent's bin/. */
START_TEST(test_agent_path)
{
	static const char text[] =
		"{\"command\":[\"x\"],\"agent\":\"pi\",\"env\":{\"PATH\":"
		"\"/opt/tools/bin:/usr/bin\",\"A\":\"b\"},\"ro_paths\":[\"/opt/tools\"]}";
	struct orch_error err = {0};
	struct orch_profile p;
	struct orch_profile_cmd c;
	ck_assert_int_eq(orch_profile_parse("t", text, strlen(text), &p, &err), 0);
	ck_assert_int_eq(orch_profile_command(&p, "/a", NULL, NULL, &c, &err), 0);
	ck_assert_str_eq(env_get(c.env, "PATH"), "/a/pi/current/bin:/opt/tools/bin:/usr/bin");
	ck_assert_str_eq(env_get(c.env, "A"), "b");
	ck_assert_uint_eq(strv_len(c.env), 2);
	ck_assert_str_eq(c.ro_paths[0], "/a/pi/current");
	ck_assert_str_eq(c.ro_paths[1], "/opt/tools");
	orch_profile_cmd_done(&c);
	orch_profile_done(&p);
}
END_TEST

START_TEST(test_config_on_top)
{
	static const char cfg_text[] =
		"{\"profiles\":{\"claude\":{\"description\":\"mine\",\"command\":[\"claude\","
		"\"-p\"],\"env\":{\"A\":\"1\"}},\"shell\":{\"command\":[\"/bin/bash\",\"-c\"]}}}";
	struct orch_error err = {0};
	struct orchd_config *cfg = NULL;
	int r = orchd_config_parse(cfg_text, strlen(cfg_text), "/tmp/orch-profile-test-state", &cfg,
				   &err);
	ck_assert_msg(r == 0, "config: %s", err.msg);
	orch_profiles_done(&ps);
	ck_assert_int_eq(orch_profiles_load(&ps, ORCH_SOURCEDIR "/host/profiles", cfg, &err), 0);
	ck_assert_uint_eq(ps.n, 7);
	const struct orch_profile *p = orch_profiles_find(&ps, "claude");
	ck_assert(p->from_config);
	ck_assert_str_eq(p->description, "mine");
	struct orch_profile_cmd c;
	ck_assert_int_eq(orch_profile_command(p, NULL, "hello", NULL, &c, &err), 0);
	ck_assert_uint_eq(strv_len(c.argv), 3);
	ck_assert_str_eq(c.argv[2], "hello");
	ck_assert_str_eq(env_get(c.env, "A"), "1");
	orch_profile_cmd_done(&c);
	ck_assert(orch_profiles_find(&ps, "shell")->from_config);
	ck_assert(!orch_profiles_find(&ps, "codex")->from_config);
	json_t *j = orch_profile_to_json(orch_profiles_find(&ps, "codex"));
	ck_assert_str_eq(json_string_value(json_object_get(j, "source")), "shipped");
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(j, "env"), "CODEX_HOME")),
		"/tmp/home/.codex");
	json_decref(j);
	orchd_config_free(cfg);
}
END_TEST

START_TEST(test_missing_dir)
{
	struct orch_error err = {0};
	struct orch_profiles none = {0};
	ck_assert_int_lt(orch_profiles_load(&none, "/nonexistent/profiles", NULL, &err), 0);
	ck_assert(strstr(err.msg, "/nonexistent/profiles"));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("profile");
	TCase *tc = tcase_create("profile");
	tcase_add_checked_fixture(tc, load, unload);
	tcase_add_test(tc, test_all_shipped);
	tcase_add_test(tc, test_base);
	tcase_add_test(tc, test_claude);
	tcase_add_test(tc, test_codex);
	tcase_add_test(tc, test_opencode_gemini_pi);
	tcase_add_test(tc, test_no_prompt_extra_args);
	tcase_add_test(tc, test_writer_runs);
	tcase_add_test(tc, test_invalid);
	tcase_add_test(tc, test_agent_path);
	tcase_add_test(tc, test_models_allowed);
	tcase_add_test(tc, test_config_on_top);
	tcase_add_test(tc, test_missing_dir);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return orch_check_run(suite());
}
