/* SPDX-License-Identifier: Apache-2.0 */
/* orch-supervisor configuration: flags, the strict JSON file, limits merging. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check-run.h"
#include "config.h"

#define ARGS(...) ((char *[]){"orch-supervisor", __VA_ARGS__, NULL})
#define NARGS(...) ((int)(sizeof((char *[]){"x", __VA_ARGS__}) / sizeof(char *)))

START_TEST(test_defaults)
{
	struct sv_config c;
	sv_config_init(&c);
	ck_assert_str_eq(c.connect, "vsock:2:700");
	ck_assert_uint_eq(c.slots, 1);
	ck_assert_uint_eq(c.uid_base, 10000);
	ck_assert_uint_gt(c.n_ro_paths, 0);
	sv_config_done(&c);
}
END_TEST

START_TEST(test_flags)
{
	struct sv_config c;
	struct orch_error err = {0};
	sv_config_init(&c);
	char **argv = ARGS("--connect", "fd:3", "--slots", "4", "--uid-base", "20000",
			   "--workspace-root", "/srv/ws", "--memory", "512M", "--pids", "100",
			   "--cpu", "150", "--ro-path", "/usr", "--ro-path", "/opt/tools");
	int argc = NARGS("--connect", "fd:3", "--slots", "4", "--uid-base", "20000",
			 "--workspace-root", "/srv/ws", "--memory", "512M", "--pids", "100",
			 "--cpu", "150", "--ro-path", "/usr", "--ro-path", "/opt/tools");
	ck_assert_msg(sv_config_parse_args(&c, argc, argv, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(c.connect, "fd:3");
	ck_assert_uint_eq(c.slots, 4);
	ck_assert_uint_eq(c.uid_base, 20000);
	ck_assert_str_eq(c.workspace_root, "/srv/ws");
	ck_assert_int_eq(c.limits.memory_bytes, 512LL << 20);
	ck_assert_int_eq(c.limits.pids, 100);
	ck_assert_int_eq(c.limits.cpu_percent, 150);
	ck_assert_uint_eq(c.n_ro_paths, 2); /* the first --ro-path replaces the defaults */
	ck_assert_str_eq(c.ro_paths[1], "/opt/tools");
	ck_assert(!c.template);
	sv_config_done(&c);
	sv_config_init(&c);
	ck_assert_int_eq(sv_config_parse_args(&c, NARGS("--template"), ARGS("--template"), &err),
			 0);
	ck_assert(c.template);
	sv_config_done(&c);
}
END_TEST

START_TEST(test_bad_flags)
{
	const char *bad[][2] = {
		{"--slots", "0"},	  {"--slots", "65"},	     {"--slots", "x"},
		{"--uid-base", "0"},	  {"--memory", "12Q"},	     {"--ro-path", "rel"},
		{"--ro-path", "/a/../b"}, {"--workspace-root", "w"}, {"--log-level", "loud"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sv_config c;
		struct orch_error err = {0};
		sv_config_init(&c);
		char *argv[] = {"orch-supervisor", (char *)bad[i][0], (char *)bad[i][1], NULL};
		ck_assert_msg(sv_config_parse_args(&c, 3, argv, &err) < 0, "%s %s accepted",
			      bad[i][0], bad[i][1]);
		ck_assert_msg(err.msg[0], "no message for %s", bad[i][0]);
		sv_config_done(&c);
	}
}
END_TEST

START_TEST(test_json)
{
	struct sv_config c;
	struct orch_error err = {0};
	sv_config_init(&c);
	const char *ok = "{\"slots\":2,\"uid_base\":30000,\"workspace_root\":\"/w\","
			 "\"ro_paths\":[\"/usr\"],\"limits\":{\"memory_bytes\":1048576,"
			 "\"pids\":10},\"heartbeat_ms\":500,\"connect\":\"unix:/run/h.sock\"}";
	ck_assert_msg(sv_config_load_json(&c, ok, strlen(ok), &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(c.slots, 2);
	ck_assert_uint_eq(c.uid_base, 30000);
	ck_assert_int_eq(c.limits.memory_bytes, 1048576);
	ck_assert_int_eq(c.limits.pids, 10);
	ck_assert_uint_eq(c.n_ro_paths, 1);
	ck_assert_uint_eq(c.heartbeat_ms, 500);
	ck_assert_str_eq(c.connect, "unix:/run/h.sock");

	const char *bad[] = {
		"{\"slots\":2,\"unknown\":1}",
		"{\"slots\":\"2\"}",
		"{\"slots\":1000}",
		"{\"limits\":{\"memory\":1}}",
		"{\"ro_paths\":[1]}",
		"{\"ro_paths\":[\"relative\"]}",
		"{\"slots\":1,\"slots\":2}",
		"[1]",
		"{",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct orch_error e2 = {0};
		ck_assert_msg(sv_config_load_json(&c, bad[i], strlen(bad[i]), &e2) < 0,
			      "accepted %s", bad[i]);
		ck_assert(e2.msg[0]);
	}
	/* Nothing of a rejected file was applied. */
	ck_assert_uint_eq(c.slots, 2);
	sv_config_done(&c);
}
END_TEST

START_TEST(test_file_then_flags)
{
	char path[] = "/tmp/orch-svcfg-XXXXXX";
	int fd = mkstemp(path);
	const char *j = "{\"slots\":3,\"uid_base\":40000}";
	ck_assert_int_eq(write(fd, j, strlen(j)), (ssize_t)strlen(j));
	close(fd);
	struct sv_config c;
	struct orch_error err = {0};
	sv_config_init(&c);
	/* The flag wins although it comes before --config. */
	char *argv[] = {"orch-supervisor", "--slots", "5", "--config", path, NULL};
	ck_assert_msg(sv_config_parse_args(&c, 5, argv, &err) == 0, "%s", err.msg);
	ck_assert_uint_eq(c.slots, 5);
	ck_assert_uint_eq(c.uid_base, 40000);
	sv_config_done(&c);
	unlink(path);
}
END_TEST

START_TEST(test_llm_connect)
{
	struct sv_config c;
	struct orch_error err = {0};
	sv_config_init(&c);
	ck_assert_ptr_null(c.llm_connect); /* default: LLM traffic on the main channel */
	char **argv = ARGS("--llm-connect", "unix:/run/orch/llm.sock");
	ck_assert_int_eq(sv_config_parse_args(&c, NARGS("--llm-connect", "unix:/run/orch/llm.sock"),
					      argv, &err),
			 0);
	ck_assert_str_eq(c.llm_connect, "unix:/run/orch/llm.sock");
	const char js[] = "{\"llm_connect\": \"vsock:2:5001\"}";
	ck_assert_int_eq(sv_config_load_json(&c, js, sizeof(js) - 1, &err), 0);
	ck_assert_str_eq(c.llm_connect, "vsock:2:5001");
	const char bad[] = "{\"llm_connect\": 5001}";
	ck_assert_int_lt(sv_config_load_json(&c, bad, sizeof(bad) - 1, &err), 0);
	ck_assert_str_eq(c.llm_connect, "vsock:2:5001");

	/* checked when the configuration is finished: an address, and an endpoint to serve */
	free(c.llm_connect);
	c.llm_connect = strdup("tcp:1.2.3.4:5");
	ck_assert_int_lt(sv_config_finish(&c, &err), 0);
	ck_assert_msg(strstr(err.msg, "--llm-connect"), "%s", err.msg);
	free(c.llm_connect);
	c.llm_connect = strdup("fd:4");
	c.llm_port = 0;
	memset(&err, 0, sizeof(err));
	ck_assert_int_lt(sv_config_finish(&c, &err), 0);
	ck_assert_msg(strstr(err.msg, "needs the in-jail LLM endpoint"), "%s", err.msg);
	sv_config_done(&c);
}
END_TEST

/* --dlopen-list: parsed as a request to print and exit; the real binary prints the
 * libraries it loads at run time, absolute paths that exist (vm-images/build copies them
 * into the guest). */
START_TEST(test_dlopen_list)
{
	struct sv_config c;
	struct orch_error err = {0};
	sv_config_init(&c);
	char **argv = ARGS("--dlopen-list");
	ck_assert_int_eq(sv_config_parse_args(&c, NARGS("--dlopen-list"), argv, &err), 1);
	ck_assert(c.dlopen_list);
	sv_config_done(&c);

	const char *bd = getenv("ORCH_BUILDDIR");
	if (!bd)
		return; /* run outside meson: the binary's place is unknown */
	char cmd[4096], line[4096];
	snprintf(cmd, sizeof(cmd), "%s/guest/orch-supervisor --dlopen-list", bd);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	int n = 0;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		ck_assert_msg(line[0] == '/', "not an absolute path: %s", line);
		ck_assert_msg(access(line, R_OK) == 0, "%s: %s", line, strerror(errno));
		ck_assert_msg(strstr(line, "libmicrohttpd"), "unexpected library %s", line);
		n++;
	}
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(test_limits_merge)
{
	struct orch_limits cfg = {.memory_bytes = 100, .pids = 0, .cpu_percent = 50};
	struct orch_limits task = {.memory_bytes = 200, .pids = 7, .cpu_percent = 0};
	struct orch_limits out;
	sv_limits_merge(&cfg, &task, &out);
	ck_assert_int_eq(out.memory_bytes, 100); /* capped by the configuration */
	ck_assert_int_eq(out.pids, 7);
	ck_assert_int_eq(out.cpu_percent, 50);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("guest-config");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_flags);
	tcase_add_test(tc, test_bad_flags);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_file_then_flags);
	tcase_add_test(tc, test_limits_merge);
	tcase_add_test(tc, test_llm_connect);
	tcase_add_test(tc, test_dlopen_list);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
