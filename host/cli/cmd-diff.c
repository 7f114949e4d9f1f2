/* SPDX-License-Identifier: Apache-2.0 */
/* orch diff ID: the patch of a repository task's result (its branch over its base). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "schema.h"
#include "visible.h"

struct sink {
	bool tty;
	char *buf; /* --json: everything */
	size_t len, cap;
	bool json;
};

static int put(const void *data, size_t len, void *arg)
{
	struct sink *s = arg;
	if (s->json) {
		if (s->len + len + 1 > s->cap) {
			size_t cap = (s->len + len + 1) * 2;
			char *b = realloc(s->buf, cap);
			if (!b)
				return -1;
			s->buf = b;
			s->cap = cap;
		}
		memcpy(s->buf + s->len, data, len);
		s->len += len;
		return 0;
	}
	if (s->tty) { /* the agent's bytes on a terminal: control bytes made visible */
		cli_write_visible(1, data, len, CLI_VISIBLE_LINES | CLI_VISIBLE_SGR);
		return 0;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = write(1, (const char *)data + off, len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int run(struct cli *c, int argc, char **argv)
{
	struct sink s = {0};
	bool truncated = false;
	int64_t id;
	int r = cli_id_args(c, argc, argv,
			    "Prints the patch of a repository task's result: what its branch\n"
			    "orch/task-ID changes over the commit its workspace was made from.\n"
			    "Nothing when the task changed nothing. Exit code 1 while its result\n"
			    "is not recorded.\n",
			    &id);
	if (r != CLI_GO_ON)
		return r;
	s.json = c->json;
	s.tty = isatty(1);
	fflush(stdout);
	r = cli_result_file(c, "task.diff", id, put, &s, &truncated);
	if (r == 0 && c->json) {
		json_t *o = json_pack("{sIsb}", "id", (json_int_t)id, "truncated", truncated);
		json_t *text = json_stringn(s.buf ? s.buf : "", s.len);
		if (o && text)
			json_object_set_new(o, "diff", text);
		else if (o) {
			_cleanup_free_ char *b64 = NULL;
			json_object_set_new(o, "diff", json_null());
			b64 = orch_b64_encode(s.buf ? s.buf : "", s.len);
			json_object_set_new(o, "diff_b64", json_string(b64 ? b64 : ""));
		}
		cli_print_json(o);
		json_decref(o);
	}
	if (r == 0 && truncated)
		fprintf(stderr, "orch: the diff was cut at orchd's git.max_diff_mib\n");
	free(s.buf);
	return r;
}

const struct cli_cmd cmd_diff = {
	.name = "diff",
	.summary = "show the patch of a repository task's result",
	.run = run,
};
