/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests: the key file (mode check, the key never in messages), the "llm" config
 * object, and the token-bucket rate limiter. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "check-run.h"
#include "config.h"
#include "llm-config.h"
#include "llm-key.h"
#include "llm-ratelimit.h"

#define SECRET "sk-ant-api03-SECRETSECRET"

static char dir[64], keyfile[128];

static void write_key(const char *content, mode_t mode)
{
	int fd;

	unlink(keyfile);
	fd = open(keyfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	ck_assert_int_eq(chmod(keyfile, mode), 0);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/orch-key-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(keyfile, sizeof(keyfile), "%s/key", dir);
}

static void teardown(void)
{
	unlink(keyfile);
	rmdir(dir);
}

START_TEST(test_key_modes)
{
	struct orch_error err = {0};
	char *key = NULL;

	write_key(SECRET "\n", 0600);
	ck_assert_int_eq(llm_key_read(keyfile, &key, &err), 0);
	ck_assert_str_eq(key, SECRET);
	llm_key_free(key);
	write_key(SECRET "\r\n# comment\n", 0400);
	ck_assert_int_eq(llm_key_read(keyfile, &key, &err), 0);
	ck_assert_str_eq(key, SECRET);
	llm_key_free(key);

	static const mode_t bad[] = {0640, 0604, 0644, 0660, 0602, 0610, 0601};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_key(SECRET "\n", bad[i]);
		key = NULL;
		ck_assert_int_eq(llm_key_read(keyfile, &key, &err), -EPERM);
		ck_assert_ptr_null(key);
		ck_assert_ptr_nonnull(strstr(err.msg, "chmod 600"));
		ck_assert_ptr_null(strstr(err.msg, "SECRET"));
	}

	/* Mode 0600 but owned by someone else: they could swap the key (needs root). */
	if (geteuid() == 0) {
		write_key(SECRET "\n", 0600);
		ck_assert_int_eq(chown(keyfile, 65534, 65534), 0);
		key = NULL;
		ck_assert_int_eq(llm_key_read(keyfile, &key, &err), -EPERM);
		ck_assert_ptr_null(key);
		ck_assert_ptr_nonnull(strstr(err.msg, "chown root"));
		ck_assert_int_eq(chown(keyfile, 0, 0), 0);
	} else {
		fprintf(stderr, "test_key_modes: the owner check needs root; not run\n");
	}
}
END_TEST

START_TEST(test_key_contents)
{
	struct orch_error err = {0};
	char *key = NULL;
	char big[LLM_KEY_MAX + 10];

	write_key("\n", 0600);
	ck_assert_int_eq(llm_key_read(keyfile, &key, &err), -EINVAL);
	write_key("sk-ant SECRET\n", 0600);
	ck_assert_int_eq(llm_key_read(keyfile, &key, &err), -EINVAL);
	ck_assert_ptr_null(strstr(err.msg, "SECRET"));
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_key(big, 0600);
	ck_assert_int_eq(llm_key_read(keyfile, &key, &err), -EINVAL);
	ck_assert_int_eq(llm_key_read("/nonexistent/key", &key, &err), -ENOENT);
	ck_assert_int_eq(llm_key_read(dir, &key, &err), -EINVAL);
	ck_assert_ptr_null(key);
}
END_TEST

START_TEST(test_config_example)
{
	char text[2048];
	struct orch_error err = {0};
	struct llm_config c;
	const struct llm_model *m;
	json_t *j;

	snprintf(text, sizeof(text),
		 "{\"upstreams\":{\"anthropic\":{\"kind\":\"anthropic\",\"base_url\":"
		 "\"https://api.anthropic.com/\",\"key_file\":\"%s\"},"
		 "\"openai\":{\"kind\":\"openai\",\"key_file\":\"%s\"}},"
		 "\"models\":{\"claude-sonnet-4-5\":{\"upstream\":\"anthropic\","
		 "\"input_usd_per_mtok\":3.0,\"output_usd_per_mtok\":15.0},"
		 "\"gpt-4.1\":{\"upstream\":\"openai\",\"input_usd_per_mtok\":2,"
		 "\"output_usd_per_mtok\":8,\"context_window\":1047576}},"
		 "\"anthropic_betas\":[\"interleaved-thinking-2025-05-14\"],"
		 "\"allow_remote_input\":true,"
		 "\"max_tokens_cap\":32000,\"max_request_bytes\":4194304,"
		 "\"strip_tools\":[\"web_search\",\"web_fetch\",\"code_execution\"],"
		 "\"timeout_ms\":600000,\"rate_limits\":{\"agent_rpm\":60,\"task_rpm\":30,"
		 "\"agent_inflight\":4,\"vm_inflight\":0},"
		 "\"budgets\":{\"agent_usd\":20.0,\"task_usd\":5.0,\"agent_tokens\":0,"
		 "\"task_tokens\":1000000}}",
		 keyfile, keyfile);
	j = json_loads(text, 0, NULL);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(orchd_config_llm_parse(j, &c, &err), 0);
	ck_assert_int_eq(c.n_upstreams, 2);
	ck_assert_str_eq(c.upstreams[0].base_url, "https://api.anthropic.com");
	ck_assert_str_eq(c.upstreams[1].base_url, "https://api.openai.com");
	m = llm_config_model(&c, "claude-sonnet-4-5");
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(m->price.out_micro_per_mtok, 15000000);
	ck_assert_int_eq(m->upstream, 0);
	ck_assert_ptr_null(llm_config_model(&c, "claude-opus-4"));
	ck_assert_int_eq(c.agent_rpm, 60);
	ck_assert_int_eq(c.task_rpm, 30);
	ck_assert_int_eq(c.agent_inflight, 4);
	ck_assert_int_eq(c.vm_inflight, 0);
	ck_assert_int_eq(c.max_inflight, 256);
	ck_assert_int_eq(c.limits.agent_micro, 20000000);
	ck_assert_int_eq(c.limits.task_micro, 5000000);
	ck_assert_int_eq(c.limits.task_tokens, 1000000);
	ck_assert_int_eq(c.policy.n_strip, 3);
	ck_assert_int_eq(llm_config_model(&c, "gpt-4.1")->context_window, 1047576);
	ck_assert_int_eq(m->context_window, 0);
	ck_assert(c.allow_remote_input);
	ck_assert_int_eq(c.n_betas, 1);
	ck_assert(llm_config_beta_allowed(&c, "interleaved-thinking-2025-05-14"));
	ck_assert(!llm_config_beta_allowed(&c, "claude-code-20250219"));
	write_key(SECRET "\n", 0600);
	ck_assert_int_eq(llm_config_load_keys(&c, &err), 0);
	ck_assert_str_eq(c.upstreams[1].key, SECRET);
	chmod(keyfile, 0644);
	ck_assert_int_eq(llm_config_load_keys(&c, &err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err.msg, "llm.upstreams.anthropic"));
	llm_config_done(&c);
	json_decref(j);
}
END_TEST

START_TEST(test_config_errors)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{"{\"upstream\":{}}", "llm.upstream: unknown key"},
		{"{\"upstreams\":{\"a\":{\"kind\":\"mistral\",\"key_file\":\"/k\"}}}",
		 "llm.upstreams.a.kind"},
		{"{\"upstreams\":{\"a\":{\"kind\":\"openai\",\"key_file\":\"k\"}}}", "key_file"},
		{"{\"upstreams\":{\"a\":{\"kind\":\"openai\",\"key_file\":\"/k\",\"base_url\":"
		 "\"ftp://x\"}}}",
		 "base_url"},
		{"{\"models\":{\"m\":{\"upstream\":\"nope\",\"input_usd_per_mtok\":1,"
		 "\"output_usd_per_mtok\":1}}}",
		 "no upstream named \"nope\""},
		{"{\"upstreams\":{\"a\":{\"kind\":\"openai\",\"key_file\":\"/"
		 "k\"}},\"models\":{\"m\":"
		 "{\"upstream\":\"a\",\"input_usd_per_mtok\":-1,\"output_usd_per_mtok\":1}}}",
		 "input_usd_per_mtok"},
		{"{\"upstreams\":{\"a\":{\"kind\":\"openai\",\"key_file\":\"/"
		 "k\"}},\"models\":{\"m\":"
		 "{\"upstream\":\"a\",\"input_usd_per_mtok\":1}}}",
		 "required"},
		{"{\"max_tokens_cap\":0}", "llm.max_tokens_cap"},
		{"{\"max_request_bytes\":\"4\"}", "llm.max_request_bytes"},
		{"{\"strip_tools\":[\"web_search\",3]}", "strip_tools[1]"},
		{"{\"rate_limits\":{\"agent_rpm\":-1}}", "agent_rpm"},
		{"{\"rate_limits\":{\"vm_inflight\":257}}",
		 "llm.rate_limits.vm_inflight: expected"},
		{"{\"rate_limits\":{\"agent_inflight\":\"8\"}}",
		 "llm.rate_limits.agent_inflight: expected"},
		{"{\"budgets\":{\"agent_usd\":\"x\"}}", "agent_usd"},
		{"{\"budgets\":{\"vm_usd\":1}}", "vm_usd: unknown key"},
		{"{\"anthropic_betas\":[\"Files-API\"]}", "llm.anthropic_betas: entries are"},
		{"{\"anthropic_betas\":\"x\"}", "llm.anthropic_betas: expected an array"},
		{"{\"allow_remote_input\":1}", "llm.allow_remote_input: expected true or false"},
		{"{\"upstreams\":{\"a\":{\"kind\":\"openai\",\"key_file\":\"/"
		 "k\"}},\"models\":{\"m\":"
		 "{\"upstream\":\"a\",\"input_usd_per_mtok\":1,\"output_usd_per_mtok\":1,"
		 "\"context_window\":0}}}",
		 "llm.models.m.context_window: expected"},
	};
	struct llm_config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct orch_error err = {0};
		json_t *j = json_loads(cases[i].json, 0, NULL);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_lt(orchd_config_llm_parse(j, &c, &err), 0);
		ck_assert_msg(strstr(err.msg, cases[i].needle), "case %zu: %s", i, err.msg);
		json_decref(j);
	}
	ck_assert_int_eq(orchd_config_llm_parse(NULL, &c, NULL), 0);
	ck_assert_int_eq(c.n_models, 0);
	ck_assert_int_eq(c.policy.max_tokens_cap, 32000);
	ck_assert_int_eq(c.agent_inflight, 16);
	ck_assert_int_eq(c.vm_inflight, 64);
	/* the defaults: no remote input, the shipped agents' betas, not the MCP one */
	ck_assert(!c.allow_remote_input);
	ck_assert(llm_config_beta_allowed(&c, "claude-code-20250219"));
	ck_assert(!llm_config_beta_allowed(&c, "mcp-client-2025-04-04"));
	ck_assert(!llm_config_beta_allowed(&c, "files-api-2025-04-14"));
	llm_config_done(&c);
}
END_TEST

START_TEST(test_ratelimit)
{
	struct llm_ratelimit *rl;
	uint64_t retry = 0, t = 1000000;

	ck_assert_int_eq(llm_ratelimit_new(60, 3, 2, &rl), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(llm_ratelimit_take(rl, "a", t, &retry), 0);
	ck_assert_int_eq(llm_ratelimit_take(rl, "a", t, &retry), -EAGAIN);
	ck_assert_int_eq(retry, 1000);				     /* one per second */
	ck_assert_int_eq(llm_ratelimit_take(rl, "b", t, &retry), 0); /* separate bucket */
	ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 999, &retry), -EAGAIN);
	ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 1000, &retry), 0);
	ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 1001, &retry), -EAGAIN);
	/* Refill never exceeds the burst. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 3600000, &retry), 0);
	ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 3600000, &retry), -EAGAIN);
	/* Small steps add up (no refill lost to rounding). */
	for (uint64_t ms = 1; ms < 1000; ms++)
		ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 3600000 + ms, NULL), -EAGAIN);
	ck_assert_int_eq(llm_ratelimit_take(rl, "a", t + 3601000, NULL), 0);
	/* max_keys 2: a third key evicts the idlest, never fails. */
	ck_assert_int_eq(llm_ratelimit_take(rl, "c", t + 3600000, &retry), 0);
	ck_assert_int_eq(llm_ratelimit_take(rl, NULL, t, &retry), -EINVAL);
	llm_ratelimit_free(rl);

	ck_assert_int_eq(llm_ratelimit_new(0, 0, 4, &rl), 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(llm_ratelimit_take(rl, "a", t, NULL), 0);
	llm_ratelimit_free(rl);

	ck_assert_int_eq(llm_ratelimit_new(1, 1, 4, &rl), 0);
	ck_assert_int_eq(llm_ratelimit_take(rl, "slow", t, NULL), 0);
	for (uint64_t ms = 1; ms < 60000; ms++)
		ck_assert_int_eq(llm_ratelimit_take(rl, "slow", t + ms, NULL), -EAGAIN);
	ck_assert_int_eq(llm_ratelimit_take(rl, "slow", t + 60000, NULL), 0);
	llm_ratelimit_free(rl);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("llm_config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_key_modes);
	tcase_add_test(tc, test_key_contents);
	tcase_add_test(tc, test_config_example);
	tcase_add_test(tc, test_config_errors);
	tcase_add_test(tc, test_ratelimit);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
