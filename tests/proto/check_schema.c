/* SPDX-License-Identifier: Apache-2.0 */
/* Schema tests. Data-driven cases under tests/proto/{valid,invalid}/<case>/ hold
 * `method` (which parser) and `input.json`; invalid cases also `error`, a text the error
 * message must contain (it names the field). Valid cases must survive parse -> build ->
 * parse -> build with equal output. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "cleanup.h"
#include "rpc.h"
#include "schema-vm.h"
#include "schema.h"

/* Parses params with the parser for method; on success *ret_built is the builder's output. */
static int parse_build(const char *method, json_t *in, json_t **ret_built, struct orch_error *err)
{
	int r = -ENOENT;

	*ret_built = NULL;
	if (strcmp(method, "hello") == 0) {
		struct orch_hello h;
		if ((r = orch_hello_parse(in, &h, err)) >= 0) {
			*ret_built = orch_hello_build(&h);
			orch_hello_done(&h);
		}
	} else if (strcmp(method, "hello.result") == 0) {
		struct orch_hello_reply h;
		if ((r = orch_hello_reply_parse(in, &h, err)) >= 0)
			*ret_built = orch_hello_reply_build(&h);
	} else if (strcmp(method, "heartbeat") == 0) {
		struct orch_heartbeat h;
		if ((r = orch_heartbeat_parse(in, &h, err)) >= 0)
			*ret_built = orch_heartbeat_build(&h);
	} else if (strcmp(method, "task.run") == 0) {
		struct orch_task_run t;
		if ((r = orch_task_run_parse(in, &t, err)) >= 0) {
			ck_assert_ptr_null(t.argv[t.argc]);
			ck_assert_ptr_null(t.env[t.n_env]);
			*ret_built = orch_task_run_build(&t);
			orch_task_run_done(&t);
		}
	} else if (strcmp(method, "task.output") == 0) {
		struct orch_task_output o;
		if ((r = orch_task_output_parse(in, &o, err)) >= 0) {
			*ret_built = orch_task_output_build(o.task, o.seq, o.stream, o.data, o.len);
			orch_task_output_done(&o);
		}
	} else if (strcmp(method, "task.exit") == 0) {
		struct orch_task_exit e;
		if ((r = orch_task_exit_parse(in, &e, err)) >= 0)
			*ret_built = orch_task_exit_build(&e);
	} else if (strcmp(method, "task.cancel") == 0) {
		struct orch_task_cancel c;
		if ((r = orch_task_cancel_parse(in, &c, err)) >= 0)
			*ret_built = orch_task_cancel_build(&c);
	} else if (strcmp(method, "llm.request") == 0) {
		struct orch_llm_request q;
		if ((r = orch_llm_request_parse(in, &q, err)) >= 0) {
			*ret_built = orch_llm_request_build(&q);
			orch_llm_request_done(&q);
		}
	} else if (strcmp(method, "llm.request.result") == 0) {
		struct orch_llm_response q;
		if ((r = orch_llm_response_parse(in, &q, err)) >= 0)
			*ret_built = orch_llm_response_build(&q);
	} else if (strcmp(method, "llm.chunk") == 0) {
		struct orch_llm_chunk c;
		if ((r = orch_llm_chunk_parse(in, &c, err)) >= 0) {
			*ret_built = orch_llm_chunk_build(c.req, c.seq, c.data, c.len);
			orch_llm_chunk_done(&c);
		}
	} else if (strcmp(method, "llm.done") == 0) {
		struct orch_llm_done d;
		if ((r = orch_llm_done_parse(in, &d, err)) >= 0)
			*ret_built = orch_llm_done_build(&d);
	} else if (strcmp(method, "vm.freeze") == 0) {
		if ((r = orch_vm_freeze_parse(in, err)) >= 0)
			*ret_built = json_object();
	} else if (strcmp(method, "vm.thaw") == 0) {
		struct orch_vm_thaw t;
		if ((r = orch_vm_thaw_parse(in, &t, err)) >= 0) {
			ck_assert_uint_ge(t.seed_len, ORCH_THAW_SEED_MIN);
			*ret_built = orch_vm_thaw_build(&t);
			orch_vm_thaw_done(&t);
			ck_assert_ptr_null(t.seed);
		}
	} else if (strcmp(method, "vm.thaw.result") == 0) {
		struct orch_vm_thaw_result res;
		if ((r = orch_vm_thaw_result_parse(in, &res, err)) >= 0)
			*ret_built = orch_vm_thaw_result_build(&res);
	} else if (strcmp(method, "llm.cancel") == 0) {
		struct orch_llm_cancel c;
		if ((r = orch_llm_cancel_parse(in, &c, err)) >= 0)
			*ret_built = orch_llm_cancel_build(&c);
	} else {
		ck_abort_msg("unknown method %s in a test case", method);
	}
	if (r >= 0)
		ck_assert_msg(*ret_built != NULL, "%s: builder failed", method);
	return r;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0;

	if (!f)
		return NULL;
	ck_assert_int_ge(getdelim(&buf, &n, '\0', f), 0);
	fclose(f);
	return buf;
}

static void chomp(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

static unsigned run_cases(const char *kind)
{
	char dirpath[4096];
	const char *src = getenv("ORCH_SOURCEDIR");
	unsigned count = 0;
	struct dirent *de;
	DIR *d;

	ck_assert_msg(src != NULL, "ORCH_SOURCEDIR not set (run through meson test)");
	snprintf(dirpath, sizeof(dirpath), "%s/tests/proto/%s", src, kind);
	d = opendir(dirpath);
	ck_assert_msg(d != NULL, "cannot open %s", dirpath);
	while ((de = readdir(d))) {
		char p[4600];
		_cleanup_free_ char *method = NULL, *input = NULL, *expect = NULL;
		_cleanup_json_ json_t *in = NULL, *built = NULL, *in2 = NULL, *built2 = NULL;
		struct orch_error err = {0};
		json_error_t jerr;
		int r;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/method", dirpath, de->d_name);
		method = slurp(p);
		ck_assert_msg(method != NULL, "%s missing", p);
		chomp(method);
		snprintf(p, sizeof(p), "%s/%s/input.json", dirpath, de->d_name);
		input = slurp(p);
		ck_assert_msg(input != NULL, "%s missing", p);
		in = json_loads(input, JSON_REJECT_DUPLICATES, &jerr);
		ck_assert_msg(in != NULL, "%s: %s", p, jerr.text);

		r = parse_build(method, in, &built, &err);
		if (strcmp(kind, "valid") == 0) {
			ck_assert_msg(r == 0, "valid/%s rejected: %s", de->d_name, err.msg);
			/* round trip: build(parse(build(x))) == build(x) */
			char *s = json_dumps(built, JSON_COMPACT);
			in2 = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
			free(s);
			ck_assert_ptr_nonnull(in2);
			ck_assert_int_eq(parse_build(method, in2, &built2, &err), 0);
			ck_assert_msg(json_equal(built, built2), "valid/%s: round trip differs",
				      de->d_name);
		} else {
			snprintf(p, sizeof(p), "%s/%s/error", dirpath, de->d_name);
			expect = slurp(p);
			ck_assert_msg(expect != NULL, "%s missing", p);
			chomp(expect);
			ck_assert_msg(r == ORCH_RPC_INVALID_PARAMS,
				      "invalid/%s accepted or wrong code (%d)", de->d_name, r);
			ck_assert_int_eq(err.code, ORCH_RPC_INVALID_PARAMS);
			ck_assert_msg(strstr(err.msg, expect) != NULL,
				      "invalid/%s: message \"%s\" lacks \"%s\"", de->d_name,
				      err.msg, expect);
		}
		count++;
	}
	closedir(d);
	return count;
}

START_TEST(test_valid_cases)
{
	ck_assert_uint_ge(run_cases("valid"), 20);
}
END_TEST

START_TEST(test_invalid_cases)
{
	ck_assert_uint_ge(run_cases("invalid"), 50);
}
END_TEST

START_TEST(test_parsed_values)
{
	_cleanup_json_ json_t *in = json_loads(
		"{\"task\":\"t-1\",\"slot\":3,\"argv\":[\"sh\",\"-c\",\"true\"],"
		"\"env\":{\"A\":\"1\",\"B\":\"x=y\"},\"timeout_ms\":5,\"limits\":{\"pids\":7}}",
		0, NULL);
	struct orch_task_run t;
	struct orch_error err;

	ck_assert_int_eq(orch_task_run_parse(in, &t, &err), 0);
	ck_assert_str_eq(t.task, "t-1");
	ck_assert_int_eq(t.slot, 3);
	ck_assert_uint_eq(t.argc, 3);
	ck_assert_str_eq(t.argv[2], "true");
	ck_assert_uint_eq(t.n_env, 2);
	ck_assert_str_eq(t.env[0], "A=1");
	ck_assert_str_eq(t.env[1], "B=x=y");
	ck_assert_ptr_null(t.cwd);
	ck_assert_int_eq(t.timeout_ms, 5);
	ck_assert_int_eq(t.limits.pids, 7);
	ck_assert_int_eq(t.limits.memory_bytes, 0);
	orch_task_run_done(&t);
	orch_task_run_done(NULL);

	/* NUL inside strings (possible when built in process, never from the wire) */
	json_decref(in);
	in = json_pack("{s:s,s:i,s:[o]}", "task", "t", "slot", 0, "argv", json_stringn("a\0b", 3));
	ck_assert_int_eq(orch_task_run_parse(in, &t, &err), ORCH_RPC_INVALID_PARAMS);
	ck_assert_ptr_nonnull(strstr(err.msg, "NUL"));
	json_decref(in);
	in = json_pack("{s:s,s:i,s:[s],s:{s:o}}", "task", "t", "slot", 0, "argv", "a", "env", "K",
		       json_stringn("v\0", 2));
	ck_assert_int_eq(orch_task_run_parse(in, &t, &err), ORCH_RPC_INVALID_PARAMS);
}
END_TEST

START_TEST(test_ro_paths)
{
	static const char *const good[] = {"/opt", "/opt/claude-code", "/a/.b/c..", "/x/y.z"};
	static const char *const bad[] = {"",	   "/",	     "opt",	"/opt/", "//opt",
					  "/a//b", "/a/./b", "/a/../b", "/a/..", "/.",
					  "/..",   "./a",    NULL};
	for (size_t i = 0; i < ELEMENTSOF(good); i++)
		ck_assert_msg(orch_path_normalised(good[i]), "%s refused", good[i]);
	for (size_t i = 0; bad[i]; i++)
		ck_assert_msg(!orch_path_normalised(bad[i]), "%s accepted", bad[i]);
	ck_assert(!orch_path_normalised(NULL));

	_cleanup_json_ json_t *in = json_loads("{\"task\":\"t\",\"slot\":0,\"argv\":[\"a\"],"
					       "\"ro_paths\":[\"/opt/a\",\"/srv\"]}",
					       0, NULL);
	struct orch_task_run t;
	struct orch_error err;
	ck_assert_int_eq(orch_task_run_parse(in, &t, &err), 0);
	ck_assert_uint_eq(t.n_ro_paths, 2);
	ck_assert_str_eq(t.ro_paths[1], "/srv");
	ck_assert_ptr_null(t.ro_paths[2]);
	_cleanup_json_ json_t *out = orch_task_run_build(&t);
	ck_assert(json_equal(json_object_get(out, "ro_paths"), json_object_get(in, "ro_paths")));
	orch_task_run_done(&t);

	/* none: no member on the wire */
	json_decref(in);
	in = json_loads("{\"task\":\"t\",\"slot\":0,\"argv\":[\"a\"]}", 0, NULL);
	ck_assert_int_eq(orch_task_run_parse(in, &t, &err), 0);
	ck_assert_uint_eq(t.n_ro_paths, 0);
	json_decref(out);
	out = orch_task_run_build(&t);
	ck_assert_ptr_null(json_object_get(out, "ro_paths"));
	orch_task_run_done(&t);
}
END_TEST

START_TEST(test_exit_defaults_and_names)
{
	_cleanup_json_ json_t *in =
		json_loads("{\"task\":\"t\",\"status\":\"cancelled\"}", 0, NULL);
	struct orch_task_exit e;
	struct orch_error err;

	ck_assert_int_eq(orch_task_exit_parse(in, &e, &err), 0);
	ck_assert_int_eq(e.status, ORCH_EXIT_CANCELLED);
	ck_assert_int_eq(e.exit_code, -1);
	ck_assert_str_eq(e.reason, "");
	ck_assert_str_eq(orch_exit_status_name(ORCH_EXIT_TIMED_OUT), "timed_out");
	ck_assert_str_eq(orch_exit_status_name((enum orch_exit_status)99), "unknown");
}
END_TEST

START_TEST(test_binary_output_round_trip)
{
	unsigned char data[300];
	struct orch_task_output o;
	struct orch_error err;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7);
	for (size_t len = 1; len < 10; len++) {
		_cleanup_json_ json_t *j =
			orch_task_output_build("t", (int64_t)len, ORCH_STREAM_STDERR, data, len);
		ck_assert_int_eq(orch_task_output_parse(j, &o, &err), 0);
		ck_assert_uint_eq(o.len, len);
		ck_assert_int_eq(o.stream, ORCH_STREAM_STDERR);
		ck_assert(memcmp(o.data, data, len) == 0);
		orch_task_output_done(&o);
	}
	{ /* an empty chunk is refused: it would cost a store row and say nothing */
		_cleanup_json_ json_t *j =
			orch_task_output_build("t", 0, ORCH_STREAM_STDOUT, data, 0);
		ck_assert_int_eq(orch_task_output_parse(j, &o, &err), ORCH_RPC_INVALID_PARAMS);
		ck_assert_ptr_nonnull(strstr(err.msg, "must not be empty"));
	}
	struct orch_llm_chunk c;
	_cleanup_json_ json_t *j = orch_llm_chunk_build("r", 5, data, sizeof(data));
	ck_assert_int_eq(orch_llm_chunk_parse(j, &c, &err), 0);
	ck_assert_uint_eq(c.len, sizeof(data));
	ck_assert_int_eq(memcmp(c.data, data, sizeof(data)), 0);
	orch_llm_chunk_done(&c);
}
END_TEST

START_TEST(test_base64)
{
	static const struct {
		const char *plain, *b64;
	} v[] = {{"", ""},
		 {"f", "Zg=="},
		 {"fo", "Zm8="},
		 {"foo", "Zm9v"},
		 {"foob", "Zm9vYg=="},
		 {"fooba", "Zm9vYmE="},
		 {"foobar", "Zm9vYmFy"}};
	static const char *const bad[] = {
		"Zg=", "Zg", "Z===", "====", "Zm9v=", "Zh==", "Zm9=", "Zm 9", "Zg==Zg==", "Zm9\n"};

	for (size_t i = 0; i < ELEMENTSOF(v); i++) {
		_cleanup_free_ char *e = orch_b64_encode(v[i].plain, strlen(v[i].plain));
		_cleanup_free_ unsigned char *d = NULL;
		size_t n;
		ck_assert_str_eq(e, v[i].b64);
		ck_assert_int_eq(orch_b64_decode(v[i].b64, strlen(v[i].b64), &d, &n), 0);
		ck_assert_uint_eq(n, strlen(v[i].plain));
		ck_assert(memcmp(d, v[i].plain, n) == 0);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		unsigned char *d = NULL;
		size_t n;
		ck_assert_msg(orch_b64_decode(bad[i], strlen(bad[i]), &d, &n) == -EINVAL,
			      "accepted %s", bad[i]);
	}
}
END_TEST

START_TEST(test_ids)
{
	ck_assert(orch_id_valid("t-1"));
	ck_assert(orch_id_valid("A.b_c:d-9"));
	ck_assert(!orch_id_valid(""));
	ck_assert(!orch_id_valid(NULL));
	ck_assert(!orch_id_valid("a/b"));
	ck_assert(!orch_id_valid("a b"));
	ck_assert(!orch_id_valid("\xc3\xa9"));
	char s[ORCH_MAX_ID_LEN + 2];
	memset(s, 'a', sizeof(s));
	s[ORCH_MAX_ID_LEN] = '\0';
	ck_assert(orch_id_valid(s));
	s[ORCH_MAX_ID_LEN] = 'a';
	s[ORCH_MAX_ID_LEN + 1] = '\0';
	ck_assert(!orch_id_valid(s));
}
END_TEST

START_TEST(test_hello_running_and_build)
{
	_cleanup_json_ json_t *in =
		json_loads("{\"protocol\":1,\"supervisor\":\"v\",\"slots\":2,\"boot_id\":\"b\","
			   "\"running\":[{\"task\":\"t-9\",\"slot\":1}]}",
			   0, NULL);
	struct orch_hello h;
	struct orch_error err;

	ck_assert_int_eq(orch_hello_parse(in, &h, &err), 0);
	ck_assert_uint_eq(h.n_running, 1);
	ck_assert_str_eq(h.running[0].task, "t-9");
	ck_assert_int_eq(h.running[0].slot, 1);
	ck_assert_ptr_null(h.capabilities);
	orch_hello_done(&h);
	orch_hello_done(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("schema");
	TCase *tc = tcase_create("schema");

	tcase_add_test(tc, test_valid_cases);
	tcase_add_test(tc, test_invalid_cases);
	tcase_add_test(tc, test_parsed_values);
	tcase_add_test(tc, test_ro_paths);
	tcase_add_test(tc, test_exit_defaults_and_names);
	tcase_add_test(tc, test_binary_output_round_trip);
	tcase_add_test(tc, test_base64);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_hello_running_and_build);
	suite_add_tcase(s, tc);
	return orch_check_run(s);
}
