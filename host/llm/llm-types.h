/* SPDX-License-Identifier: Apache-2.0 */
/* Small shared types of the host LLM proxy: API dialects, routes and token usage. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "llm-ledger.h"

enum llm_api {
	LLM_API_ANTHROPIC = 1, /* Anthropic Messages */
	LLM_API_OPENAI,	       /* OpenAI Chat Completions and Responses */
	LLM_API_GEMINI,	       /* Google Gemini API (generateContent) */
};

enum llm_route {
	LLM_ROUTE_MESSAGES = 1, /* POST /v1/messages */
	LLM_ROUTE_COUNT_TOKENS, /* POST /v1/messages/count_tokens */
	LLM_ROUTE_MODELS,	/* GET /v1/models */
	LLM_ROUTE_CHAT,		/* POST /v1/chat/completions */
	LLM_ROUTE_RESPONSES,	/* POST /v1/responses (OpenAI Responses API) */
	/* Gemini: POST /v1beta/models/MODEL:ACTION (or /v1/...); the model is in the path */
	LLM_ROUTE_GEMINI_GENERATE, /* :generateContent */
	LLM_ROUTE_GEMINI_STREAM,   /* :streamGenerateContent (forwarded with ?alt=sse) */
	LLM_ROUTE_GEMINI_COUNT,	   /* :countTokens */
	LLM_ROUTE_GEMINI_MODELS,   /* GET /v1beta/models: answered from the allowlist */
};

/* struct llm_usage (tokens as the upstream reports them) is the ledger's, in the store:
 * host/store/llm-ledger.h. */

/* Maps method + path to a route; -ENOENT for anything else (path without query string). */
int llm_route_parse(const char *method, const char *path, enum llm_route *ret);
enum llm_api llm_route_api(enum llm_route r);
const char *llm_api_name(enum llm_api api);
