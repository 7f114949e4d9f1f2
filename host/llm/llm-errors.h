/* SPDX-License-Identifier: Apache-2.0 */
/* Error answers in each provider's own JSON shape, so the official SDKs raise their
 * usual exceptions with our message:
 *   Anthropic: {"type":"error","error":{"type":"rate_limit_error","message":"..."}}
 *   OpenAI:    {"error":{"message":"...","type":"...","param":null,"code":"..."}} */
#pragma once

#include <jansson.h>

#include "llm-types.h"

/* Anthropic error type for an HTTP status (403 permission_error, 429 rate_limit_error...). */
const char *llm_anthropic_error_type(int status);

/* New reference. code is OpenAI's "code" (NULL: derived from the status); Anthropic
 * ignores it. */
json_t *llm_error_json(enum llm_api api, int status, const char *code, const char *msg);
/* The same, serialised (malloc'ed, compact), NULL on allocation failure. */
char *llm_error_body(enum llm_api api, int status, const char *code, const char *msg);
