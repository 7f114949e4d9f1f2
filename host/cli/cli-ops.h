/* SPDX-License-Identifier: Apache-2.0 */
/* What the operator verbs share (cmd-{doctor,profiles}.c, with the operator library,
 * host/ops/). */
#pragma once

#include <stdio.h>

#include "cli.h"
#include "config.h"

/* Loads orchd's config FILE (path NULL or "": none, *ret NULL). On an error prints
 * "orch <verb>: <why>" and returns CLI_EXIT_ERROR; else CLI_GO_ON. */
static inline int cli_load_config(const char *verb, const char *path, struct orchd_config **ret)
{
	struct orch_error err = {0};

	*ret = NULL;
	if (path && *path && orchd_config_load(path, NULL, ret, &err) < 0) {
		fprintf(stderr, "orch %s: %s\n", verb, err.msg);
		return CLI_EXIT_ERROR;
	}
	return CLI_GO_ON;
}
