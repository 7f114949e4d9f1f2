/* SPDX-License-Identifier: Apache-2.0 */
/* orch result ID: a task's state, exit status, rusage, reason and spend, and the agent's
 * final message (render.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "render.h"
#include "schema.h"
#include "visible.h"

/* Chunks of the end of the output read for the final message. */
#define MESSAGE_CHUNKS 64

static void field(const char *name, json_t *v)
{
	char *s;

	if (!v || json_is_null(v))
		return;
	if (json_is_string(v))
		s = cli_visible_str(json_string_value(v)); /* the reason comes from the guest */
	else
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	printf("%-12s %s\n", name, s ? s : "?");
	free(s);
}

static void collect(struct cli *c, json_t *params)
{
	const char *data = NULL, *stream = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	if (json_unpack(params, "{s:s, s:s}", "data", &data, "stream", &stream) < 0 ||
	    strcmp(stream, "stdout") != 0 || orch_b64_decode(data, strlen(data), &buf, &len) < 0)
		return;
	cli_render_feed(c->render, (const char *)buf, len);
	free(buf);
}

/* The final message of a finished task from the end of its stdout; NULL when none. */
static char *final_message(struct cli *c, int64_t id, json_t *t)
{
	json_int_t seq = json_integer_value(json_object_get(t, "output_seq"));
	json_t *t2 = NULL;
	struct cli_render r;
	char *msg = NULL;
	if (json_integer_value(json_object_get(t, "output_bytes")) <= 0)
		return NULL;
	cli_render_init(&r, NULL, false);
	c->render = &r;
	c->on_output = collect;
	int rc = cli_call(c, "task.logs",
			  json_pack("{sIsIsb}", "id", (json_int_t)id, "from_seq",
				    (json_int_t)(seq > MESSAGE_CHUNKS ? seq - MESSAGE_CHUNKS : 0),
				    "follow", 0),
			  30000, &t2);
	c->on_output = NULL;
	c->render = NULL;
	json_decref(t2);
	if (rc == 0) {
		cli_render_flush(&r);
		const char *m = cli_render_message(&r);
		msg = *m ? strdup(m) : NULL;
	}
	cli_render_done(&r);
	return msg;
}

static int run(struct cli *c, int argc, char **argv)
{
	json_t *t = NULL;
	int64_t id;
	int r;

	r = cli_id_args(c, argc, argv,
			"Shows a task's state, exit status, timing, rusage, reason and spend,\n"
			"and the agent's final message (the end of its stdout; Claude Code's\n"
			"stream-json result). For a repository task (dispatch --repo) also its\n"
			"result: repository, ref, base, branch orch/task-ID, commit, the changed\n"
			"files and the pushes made of it.\n"
			"Exit code: the task's (as dispatch --wait) once it is final, 0 while it\n"
			"is queued or running.\n",
			&id);
	if (r != CLI_GO_ON)
		return r;
	r = cli_call(c, "task.get", json_pack("{sI}", "id", (json_int_t)id), 30000, &t);
	if (r)
		return r;
	const char *st = json_string_value(json_object_get(t, "state"));
	bool final = st && strcmp(st, "queued") && strcmp(st, "leased") && strcmp(st, "running");
	char *msg = final ? final_message(c, id, t) : NULL;
	if (c->json) {
		json_object_set_new(t, "message", msg ? json_string(msg) : json_null());
		cli_print_json(t);
	} else {
		const char *k[] = {"id",	  "state",	  "argv",	  "vm",
				   "slot",	  "exit_code",	  "signal",	  "reason",
				   "duration_ms", "rusage",	  "attempts",	  "lost_count",
				   "spend_usd",	  "spend_tokens", "output_bytes", NULL};
		for (size_t i = 0; k[i]; i++)
			field(k[i], json_object_get(t, k[i]));
		json_t *e = json_object_get(t, "egress");
		if (json_is_object(e)) /* docs/EGRESS.md: the task's outbound connections */
			printf("%-12s %lld connection(s): %lld allowed, %lld denied; %lld bytes "
			       "up, "
			       "%lld down (orch egress log --task %lld)\n",
			       "egress",
			       (long long)json_integer_value(json_object_get(e, "connections")),
			       (long long)json_integer_value(json_object_get(e, "allowed")),
			       (long long)json_integer_value(json_object_get(e, "denied")),
			       (long long)json_integer_value(json_object_get(e, "bytes_up")),
			       (long long)json_integer_value(json_object_get(e, "bytes_down")),
			       (long long)id);
		json_t *g = json_object_get(t, "git");
		if (json_is_object(g)) { /* docs/WORKSPACES.md: a repository task's result */
			field("repo", json_object_get(g, "repo"));
			field("ref", json_object_get(g, "ref"));
			field("base", json_object_get(g, "base"));
			field("result", json_object_get(g, "state"));
			field("branch", json_object_get(g, "branch"));
			field("commit", json_object_get(g, "commit"));
			field("error", json_object_get(g, "error"));
			if (json_object_get(g, "branch") &&
			    !json_is_null(json_object_get(g, "branch")))
				printf("%-12s %lld file(s), +%lld -%lld\n", "changes",
				       (long long)json_integer_value(
					       json_object_get(g, "files_changed")),
				       (long long)json_integer_value(
					       json_object_get(g, "insertions")),
				       (long long)json_integer_value(
					       json_object_get(g, "deletions")));
			size_t i;
			json_t *ch;
			json_array_foreach(json_object_get(g, "files"), i, ch)
			{
				char *path = cli_visible_str(
					json_string_value(json_object_get(ch, "path")));
				printf("  %-2s %s\n",
				       json_string_value(json_object_get(ch, "status")),
				       path ? path : "?");
				free(path);
			}
			json_t *pushes = json_object_get(g, "pushes");
			json_t *pu;
			json_array_foreach(pushes, i, pu)
				printf("%-12s %s %s\n", i ? "" : "pushed",
				       json_string_value(json_object_get(pu, "url")),
				       json_string_value(json_object_get(pu, "ref")));
		}
		if (msg) { /* the agent's text: its control bytes made visible */
			printf("message:\n");
			fflush(stdout);
			cli_write_visible(1, msg, strlen(msg), CLI_VISIBLE_LINES);
			printf("\n");
		}
	}
	r = final ? cli_task_exit_code(t) : 0;
	free(msg);
	json_decref(t);
	return r;
}

const struct cli_cmd cmd_result = {
	.name = "result",
	.summary = "show a task's result",
	.run = run,
};
