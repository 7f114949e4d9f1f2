/* SPDX-License-Identifier: Apache-2.0 */
/* orch metrics: orchd's Prometheus exposition, as a scraper would read it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, int argc, char **argv)
{
	json_t *res = NULL;
	int r;

	r = cli_simple_args(
		c, argc, argv, " [--json]",
		"Prints orchd's metrics in Prometheus' text format (the same text its\n"
		"metrics socket serves): queue depth, tasks by state, lease, dispatch\n"
		"and boot latency histograms, VMs, LLM tokens and spend, egress bytes.\n"
		"--json: {\"text\": \"...\"}.\n",
		NULL);
	if (r != CLI_GO_ON)
		return r;
	r = cli_call(c, "metrics", NULL, 30000, &res);
	if (r)
		return r;
	if (c->json)
		cli_print_json(res);
	else
		fputs(json_string_value(json_object_get(res, "text")) ?: "", stdout);
	json_decref(res);
	return 0;
}

const struct cli_cmd cmd_metrics = {
	.name = "metrics",
	.summary = "print orchd's metrics (Prometheus text format)",
	.run = run,
};
