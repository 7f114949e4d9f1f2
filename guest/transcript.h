/* SPDX-License-Identifier: Apache-2.0 */
/* transcript.jsonl in an agent's workspace: one JSON object per line per event (task
 * start, output chunk summary, exit), each written with one append so that a crash leaves
 * every completed line valid. The workspace belongs to the (hostile) agent: the file is
 * opened without following symlinks, must be a regular file with one link, and is never
 * waited on (O_NONBLOCK: a FIFO planted there is refused, not blocked on). */
#pragma once

#include <sys/types.h>
#include <jansson.h>

#include "error.h"

/* Opens (creating, mode 0600, owned by uid:gid) <workspace>/transcript.jsonl. */
int sv_transcript_open(const char *workspace, uid_t uid, gid_t gid, struct orch_error *err);

/* Appends obj (stolen) with "ts" (ms since the epoch) added. Errors are returned, not
 * fatal: the transcript is a record, not a channel. */
int sv_transcript_write(int fd, const char *event, json_t *obj_new);
