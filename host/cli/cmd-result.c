/* SPDX-License-Identifier: Apache-2.0 */
/* orch result ID: a task's state, exit status, rusage, reason and spend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "visible.h"

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

static int run(struct cli *c, int argc, char **argv)
{
	json_t *t = NULL;
	int64_t id;
	int r;

	r = cli_id_args(c, argc, argv,
			"Shows a task's state, exit status, timing, rusage, reason and spend.\n"
			"Exit code: the task's (as dispatch --wait) once it is final, 0 while it\n"
			"is queued or running.\n",
			&id);
	if (r != CLI_GO_ON)
		return r;
	r = cli_call(c, "task.get", json_pack("{sI}", "id", (json_int_t)id), 30000, &t);
	if (r)
		return r;
	if (c->json) {
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
	}
	{
		const char *st = json_string_value(json_object_get(t, "state"));
		bool final =
			st && strcmp(st, "queued") && strcmp(st, "leased") && strcmp(st, "running");
		r = final ? cli_task_exit_code(t) : 0;
	}
	json_decref(t);
	return r;
}

const struct cli_cmd cmd_result = {
	.name = "result",
	.summary = "show a task's result",
	.run = run,
};
