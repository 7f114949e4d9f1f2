/* SPDX-License-Identifier: Apache-2.0 */
/* The upstream API key, read from a file that only its owner may read. The key's bytes
 * never appear in an error message; llm_key_free wipes them. */
#pragma once

#include "error.h"

#define LLM_KEY_MAX 4096

/* Reads the first line of path. Refused: not a regular file, readable or writable by
 * group or others (-EPERM: "chmod 600 <path>"), empty, longer than LLM_KEY_MAX, or
 * containing control characters or spaces. */
int llm_key_read(const char *path, char **ret_key, struct orch_error *err);
/* The checks of llm_key_read (a regular file, not a link, owned by root or orchd's user,
 * mode 0600 or stricter): an fd open for reading, or -errno with err set. For key files
 * of other shapes (a git token, an ssh key). */
int llm_key_file_open(const char *path, struct orch_error *err);
void llm_key_free(char *key);
