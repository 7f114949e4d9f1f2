/* SPDX-License-Identifier: Apache-2.0 */
/* host/cli/render.c: Claude Code's stream-json as readable lines, everything else as it
 * was, fed in any split; the final message. */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "render.h"

static const char stream[] =
	"{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"s\",\"cwd\":\"/workspace\","
	"\"model\":\"claude-sonnet-4-6\",\"claude_code_version\":\"2.1.0\"}\n"
	"plain line\n"
	"{\"type\":\"assistant\",\"session_id\":\"s\",\"message\":{\"content\":[{\"type\":"
	"\"text\",\"text\":\"I will run it.\"},{\"type\":\"tool_use\",\"name\":\"Bash\","
	"\"input\":{\"command\":\"make\\ntest\"}}]}}\n"
	"{\"type\":\"user\",\"session_id\":\"s\",\"message\":{\"content\":[{\"type\":"
	"\"tool_result\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}]}}\n"
	"{\"type\":\"stream_event\",\"session_id\":\"s\"}\n"
	"{\"not\":\"stream-json\"}\n"
	"{\"type\":\"result\",\"session_id\":\"s\",\"result\":\"All done.\",\"duration_ms\":"
	"1500,\"num_turns\":2,\"is_error\":false}\n";

static const char expected[] = "● Claude Code 2.1.0, model claude-sonnet-4-6, in /workspace\n"
			       "plain line\n"
			       "I will run it.\n"
			       "→ Bash: make test\n"
			       "  ← ok\n"
			       "{\"not\":\"stream-json\"}\n"
			       "● done after 1.5 s, 2 turn(s)\n";

static char *render_v(const char *in, size_t step, bool visible, char **ret_msg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct cli_render r;
	cli_render_init(&r, f, visible);
	for (size_t i = 0; i < strlen(in); i += step)
		cli_render_feed(&r, in + i, strlen(in) - i < step ? strlen(in) - i : step);
	cli_render_flush(&r);
	*ret_msg = strdup(cli_render_message(&r));
	cli_render_done(&r);
	fclose(f);
	return buf;
}

static char *render(const char *in, size_t step, char **ret_msg)
{
	return render_v(in, step, false, ret_msg);
}

START_TEST(test_stream_json)
{
	size_t steps[] = {1, 7, 64, 100000};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *msg, *out = render(stream, steps[i], &msg);
		ck_assert_str_eq(out, expected);
		ck_assert_str_eq(msg, "All done.");
		free(out);
		free(msg);
	}
}
END_TEST

START_TEST(test_plain)
{
	char *msg, *out = render("progress\n\033[1mdone\033[0m\n\n", 3, &msg);
	ck_assert_str_eq(out, "progress\n\033[1mdone\033[0m\n\n");
	ck_assert_str_eq(msg, "progress\ndone");
	free(out);
	free(msg);
	/* no newline at the end */
	out = render("last", 1, &msg);
	ck_assert_str_eq(out, "last");
	ck_assert_str_eq(msg, "last");
	free(out);
	free(msg);
}
END_TEST

/* On a terminal the agent's text cannot drive it: its control bytes are made visible in
 * passed-through lines and in rendered text alike; colours stay. */
START_TEST(test_visible)
{
	static const char in[] =
		"\033]0;owned\007plain \033[1mbold\033[0m\n"
		"{\"type\":\"assistant\",\"session_id\":\"s\",\"message\":{\"content\":[{\"type\":"
		"\"text\",\"text\":\"x\\u001b[2Jy\"}]}}\n";
	char *msg, *out = render_v(in, 5, true, &msg);
	ck_assert_str_eq(out, "^[]0;owned^Gplain \033[1mbold\033[0m\nx^[[2Jy\n");
	free(out);
	free(msg);
}
END_TEST

/* A line longer than the limit passes through raw, and the next one is rendered again. */
START_TEST(test_overlong)
{
	size_t n = CLI_RENDER_LINE_MAX + 10;
	char *in = malloc(n + 200);
	memset(in, '{', n);
	strcpy(in + n, "\n{\"type\":\"result\",\"session_id\":\"s\",\"result\":\"r\"}\n");
	char *msg, *out = render(in, 4096, &msg);
	ck_assert_uint_eq(strlen(out), n + 1 + strlen("● done after 0.0 s, 0 turn(s)\n"));
	ck_assert(strstr(out, "● done"));
	ck_assert_str_eq(msg, "r");
	free(out);
	free(msg);
	free(in);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("render");
	tcase_add_test(tc, test_stream_json);
	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_overlong);
	tcase_add_test(tc, test_visible);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
