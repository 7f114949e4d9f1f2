/* SPDX-License-Identifier: Apache-2.0 */
/* A task's stdout for humans: lines of Claude Code's stream-json (`--output-format
 * stream-json`: JSON objects with a "type" and a "session_id") become readable progress
 * (the assistant's text, "→ Bash: make test" for a tool call, "← ..." for its result, a
 * closing summary); every other line passes through unchanged. Also keeps what
 * `orch result` shows as the agent's final message: the stream-json result, else the end
 * of stdout. On a terminal, all of it has its control bytes made visible. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CLI_RENDER_LINE_MAX (1024 * 1024) /* a longer line passes through raw */
#define CLI_RENDER_TAIL_MAX 8192	  /* stdout kept for the final message */

struct cli_render {
	FILE *out;    /* NULL: collect only (orch result) */
	bool visible; /* out is a terminal: control bytes made visible (visible.h) */
	char *line;
	size_t len;
	bool overflow; /* the current line is longer than CLI_RENDER_LINE_MAX */
	char *result;  /* stream-json's final result text */
	char tail[CLI_RENDER_TAIL_MAX];
	size_t tail_len;
};

/* visible: out is a terminal, where a guest's control bytes must not act (visible.h). */
void cli_render_init(struct cli_render *r, FILE *out, bool visible);
/* Feeds stdout bytes. */
void cli_render_feed(struct cli_render *r, const char *buf, size_t len);
/* The last, unterminated line. */
void cli_render_flush(struct cli_render *r);
/* The agent's final message (owned by r; "" when there is none), after flush. */
const char *cli_render_message(struct cli_render *r);
void cli_render_done(struct cli_render *r);
