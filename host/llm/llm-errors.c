/* SPDX-License-Identifier: Apache-2.0 */
#include "llm-errors.h"

const char *llm_anthropic_error_type(int status)
{
	switch (status) {
	case 400:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 529:
		return "overloaded_error";
	default:
		return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

static const char *openai_type(int status)
{
	switch (status) {
	case 401:
		return "authentication_error";
	case 403:
		return "permission_error";
	case 429:
		return "rate_limit_error";
	default:
		return status >= 500 ? "server_error" : "invalid_request_error";
	}
}

/* google.rpc.Code names, as the Gemini API reports them. */
static const char *gemini_status(int status)
{
	switch (status) {
	case 400:
	case 413:
		return "INVALID_ARGUMENT";
	case 401:
		return "UNAUTHENTICATED";
	case 403:
		return "PERMISSION_DENIED";
	case 404:
		return "NOT_FOUND";
	case 429:
		return "RESOURCE_EXHAUSTED";
	case 503:
		return "UNAVAILABLE";
	case 504:
		return "DEADLINE_EXCEEDED";
	default:
		return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
	}
}

json_t *llm_error_json(enum llm_api api, int status, const char *code, const char *msg)
{
	if (api == LLM_API_GEMINI)
		return json_pack("{s:{s:i, s:s, s:s}}", "error", "code", status, "message", msg,
				 "status", gemini_status(status));
	if (api == LLM_API_OPENAI)
		return json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type",
				 openai_type(status), "param", "code",
				 code ? code : llm_anthropic_error_type(status));
	return json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error", "type",
			 llm_anthropic_error_type(status), "message", msg);
}

char *llm_error_body(enum llm_api api, int status, const char *code, const char *msg)
{
	json_t *j = llm_error_json(api, status, code, msg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}
