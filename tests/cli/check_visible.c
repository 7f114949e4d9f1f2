/* SPDX-License-Identifier: Apache-2.0 */
/* Guest text made visible for an operator's terminal (host/cli/visible.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "visible.h"

static char out[4096];

static const char *vis(const char *in, size_t len, unsigned flags)
{
	out[cli_visible(in, len, flags, out)] = '\0';
	return out;
}

START_TEST(test_controls)
{
	/* a title change, a screen clear, a bell, a query the terminal would answer */
	ck_assert_str_eq(vis("\033]0;owned\007\033[2J\033[6n", 18, 0), "^[]0;owned^G^[[2J^[[6n");
	ck_assert_str_eq(vis("a\rb\x7f", 4, CLI_VISIBLE_LINES), "a^Mb^?");
	ck_assert_str_eq(vis("x\r\ny\tz\n", 7, CLI_VISIBLE_LINES), "x\r\ny\tz\n");
	ck_assert_str_eq(vis("x\r\ny\tz\n", 7, 0), "x^M^Jy^Iz^J");
	ck_assert_str_eq(vis("\0a", 2, 0), "^@a");
	/* C1 controls in UTF-8 (U+009B is CSI for some terminals); other UTF-8 stays */
	ck_assert_str_eq(vis("\xc2\x9b"
			     "2J \xc3\xa9",
			     7, 0),
			 "M-^[2J \xc3\xa9");
}
END_TEST

START_TEST(test_colours)
{
	const char *red = "\033[1;31mred\033[0m";

	ck_assert_str_eq(vis(red, strlen(red), CLI_VISIBLE_SGR), red);
	ck_assert_str_eq(vis(red, strlen(red), 0), "^[[1;31mred^[[0m");
	/* only colour: a cursor move or an unfinished sequence is not one */
	ck_assert_str_eq(vis("\033[10;10H", 8, CLI_VISIBLE_SGR), "^[[10;10H");
	ck_assert_str_eq(vis("\033[31", 4, CLI_VISIBLE_SGR), "^[[31");
}
END_TEST

START_TEST(test_str)
{
	char *s = cli_visible_str("lost: \033]2;x\007\n");

	ck_assert_str_eq(s, "lost: ^[]2;x^G^J");
	free(s);
	s = cli_visible_str(NULL);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("visible");
	TCase *tc = tcase_create("visible");

	tcase_add_test(tc, test_controls);
	tcase_add_test(tc, test_colours);
	tcase_add_test(tc, test_str);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
