/* SPDX-License-Identifier: Apache-2.0 */
/* Which API an agent's request is for (llm-types.h: its route from method and path) and
 * the model a path names (llm-policy.h). */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "cleanup.h"
#include "llm-policy.h"

/* "/v1beta/models/MODEL:ACTION" (or /v1/): the action, and where the model is. */
static const char *gemini_action(const char *path, const char **model, size_t *model_len)
{
	static const char *const prefixes[] = {"/v1beta/models/", "/v1/models/"};

	for (size_t i = 0; path && i < ELEMENTSOF(prefixes); i++) {
		size_t n = strlen(prefixes[i]);
		const char *rest, *colon;
		if (strncmp(path, prefixes[i], n) != 0)
			continue;
		rest = path + n;
		colon = strrchr(rest, ':');
		if (!colon)
			return NULL;
		*model = rest;
		*model_len = (size_t)(colon - rest);
		return colon + 1;
	}
	return NULL;
}

int llm_route_path_model(const char *path, char *ret)
{
	const char *m = NULL;
	size_t n = 0;

	if (!gemini_action(path, &m, &n) || n == 0 || n > LLM_MODEL_MAX)
		return -EINVAL;
	memcpy(ret, m, n);
	ret[n] = '\0';
	/* One path segment: no '/', and no ':' besides the action's. */
	if (!llm_model_name_valid(ret) || strpbrk(ret, "/:")) {
		ret[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

int llm_route_parse(const char *method, const char *path, enum llm_route *ret)
{
	static const struct {
		const char *method, *path;
		enum llm_route route;
	} routes[] = {
		{"POST", "/v1/messages", LLM_ROUTE_MESSAGES},
		{"POST", "/v1/messages/count_tokens", LLM_ROUTE_COUNT_TOKENS},
		{"GET", "/v1/models", LLM_ROUTE_MODELS},
		{"POST", "/v1/chat/completions", LLM_ROUTE_CHAT},
		{"POST", "/v1/responses", LLM_ROUTE_RESPONSES},
		{"GET", "/v1beta/models", LLM_ROUTE_GEMINI_MODELS},
	};

	static const struct {
		const char *action;
		enum llm_route route;
	} gemini[] = {
		{"generateContent", LLM_ROUTE_GEMINI_GENERATE},
		{"streamGenerateContent", LLM_ROUTE_GEMINI_STREAM},
		{"countTokens", LLM_ROUTE_GEMINI_COUNT},
	};
	char model[LLM_MODEL_MAX + 1];
	const char *action, *m;
	size_t n;

	if (!method || !path)
		return -EINVAL;
	for (size_t i = 0; i < ELEMENTSOF(routes); i++)
		if (strcmp(method, routes[i].method) == 0 && strcmp(path, routes[i].path) == 0) {
			*ret = routes[i].route;
			return 0;
		}
	action = gemini_action(path, &m, &n);
	if (!action || strcmp(method, "POST") != 0 || llm_route_path_model(path, model) < 0)
		return -ENOENT;
	for (size_t i = 0; i < ELEMENTSOF(gemini); i++)
		if (strcmp(action, gemini[i].action) == 0) {
			*ret = gemini[i].route;
			return 0;
		}
	return -ENOENT;
}

enum llm_api llm_route_api(enum llm_route r)
{
	switch (r) {
	case LLM_ROUTE_CHAT:
	case LLM_ROUTE_RESPONSES:
		return LLM_API_OPENAI;
	case LLM_ROUTE_GEMINI_GENERATE:
	case LLM_ROUTE_GEMINI_STREAM:
	case LLM_ROUTE_GEMINI_COUNT:
	case LLM_ROUTE_GEMINI_MODELS:
		return LLM_API_GEMINI;
	case LLM_ROUTE_MESSAGES:
	case LLM_ROUTE_COUNT_TOKENS:
	case LLM_ROUTE_MODELS:
	default:
		return LLM_API_ANTHROPIC;
	}
}

const char *llm_api_name(enum llm_api api)
{
	return api == LLM_API_OPENAI ? "openai" : api == LLM_API_GEMINI ? "gemini" : "anthropic";
}

bool llm_model_name_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];
		if (n >= LLM_MODEL_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._:/@-", c)))
			return false;
	}
	return n > 0;
}
