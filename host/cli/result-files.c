/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a repository task's result files from orchd (task.diff, task.bundle): chunks
 * of at most 1 MiB, base64 in each reply, until eof. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "schema.h"

int cli_result_file(struct cli *c, const char *method, int64_t id, cli_chunk_cb cb, void *data,
		    bool *ret_truncated)
{
	int64_t off = 0;
	for (;;) {
		json_t *res = NULL;
		int r = cli_call(
			c, method,
			json_pack("{sIsI}", "id", (json_int_t)id, "offset", (json_int_t)off), 0,
			&res);
		if (r)
			return r;
		const char *b64 = json_string_value(json_object_get(res, "data"));
		bool eof = json_is_true(json_object_get(res, "eof"));
		if (ret_truncated)
			*ret_truncated = json_is_true(json_object_get(res, "truncated"));
		_cleanup_free_ unsigned char *buf = NULL;
		size_t len = 0;
		if (!b64 || orch_b64_decode(b64, strlen(b64), &buf, &len) < 0) {
			json_decref(res);
			fprintf(stderr, "orch: a bad reply from orchd to %s\n", method);
			return CLI_EXIT_ERROR;
		}
		json_decref(res);
		if (len && cb(buf, len, data) < 0)
			return CLI_EXIT_ERROR;
		off += (int64_t)len;
		if (eof || len == 0)
			return 0;
	}
}

void cli_print_git_result(FILE *f, int64_t id, json_t *g)
{
	const char *state = json_string_value(json_object_get(g, "state"));
	const char *branch = json_string_value(json_object_get(g, "branch"));
	const char *commit = json_string_value(json_object_get(g, "commit"));
	const char *error = json_string_value(json_object_get(g, "error"));
	if (!state)
		return;
	if (strcmp(state, "recorded") == 0 && branch && commit)
		fprintf(f,
			"task %lld: %lld file(s) changed, +%lld -%lld, on branch %s (%.12s); orch "
			"diff %lld, orch checkout %lld, orch push %lld\n",
			(long long)id,
			(long long)json_integer_value(json_object_get(g, "files_changed")),
			(long long)json_integer_value(json_object_get(g, "insertions")),
			(long long)json_integer_value(json_object_get(g, "deletions")), branch,
			commit, (long long)id, (long long)id, (long long)id);
	else if (strcmp(state, "recorded") == 0)
		fprintf(f, "task %lld: no changes\n", (long long)id);
	else
		fprintf(f, "task %lld: result %s%s%s\n", (long long)id, state, error ? ": " : "",
			error ? error : "");
}
