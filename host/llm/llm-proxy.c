/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "llm-errors.h"
#include "llm-http.h"
#include "llm-ledger.h"
#include "llm-proxy.h"
#include "llm-ratelimit.h"
#include "llm-usage.h"
#include "llm-book.h"

#define ID_MAX 255
#define RATELIMIT_KEYS 4096

struct llm_proxy {
	struct orch_loop *loop;
	sqlite3 *db;
	struct store *store; /* when set, the ledger's operations go through it */
	const struct llm_config *cfg;
	struct llm_curl *curl;
	struct llm_ratelimit *rl_agent, *rl_task;
	unsigned inflight;
	struct llm_exchange *list;
};

struct llm_exchange {
	struct llm_proxy *p;
	const struct llm_sink *sink;
	void *data;
	char agent[ID_MAX + 1], vm[ID_MAX + 1]; /* "" until admitted that far */
	bool detached, head_sent, paused;
	struct llm_request_info info;
	const struct llm_model *model;
	bool reserved;
	int64_t reservation, reserved_micro;
	struct llm_http *http;
	int status;	  /* the upstream's */
	int agent_status; /* what the agent was given */
	bool sse_mode;
	struct llm_sse *sse;
	char *resp;
	size_t resp_len;
	bool resp_overflow;
	size_t drained;
	struct llm_exchange *next, *prev;
};

static void ex_free(struct llm_exchange *ex)
{
	if (!ex)
		return;
	if (ex->prev)
		ex->prev->next = ex->next;
	else if (ex->p->list == ex)
		ex->p->list = ex->next;
	if (ex->next)
		ex->next->prev = ex->prev;
	llm_sse_free(ex->sse);
	free(ex->resp);
	ex->p->inflight--;
	free(ex);
}

int llm_proxy_new(struct orch_loop *loop, sqlite3 *db, const struct llm_config *cfg,
		  struct llm_proxy **ret, struct orch_error *err)
{
	_cleanup_free_ struct llm_proxy *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	p->loop = loop;
	p->db = db;
	p->cfg = cfg;
	r = llm_ratelimit_new(cfg->agent_rpm, 0, RATELIMIT_KEYS, &p->rl_agent);
	if (r >= 0)
		r = llm_ratelimit_new(cfg->task_rpm, 0, RATELIMIT_KEYS, &p->rl_task);
	if (r < 0) {
		llm_ratelimit_free(p->rl_agent);
		return orch_err(err, r, "out of memory");
	}
	r = llm_curl_new(loop, &p->curl, err);
	if (r < 0) {
		llm_ratelimit_free(p->rl_agent);
		llm_ratelimit_free(p->rl_task);
		return r;
	}
	*ret = TAKE_PTR(p);
	return 0;
}

void llm_proxy_use_store(struct llm_proxy *p, struct store *store)
{
	p->store = store;
}

void llm_proxy_free(struct llm_proxy *p)
{
	if (!p)
		return;
	/* Exchanges still running are not called back; their reservations stay in the ledger
	 * (llm_ledger_settle_stale charges them at the next start). */
	while (p->list) {
		struct llm_exchange *ex = p->list;
		llm_http_abort(ex->http);
		ex_free(ex);
	}
	llm_curl_free(p->curl);
	llm_ratelimit_free(p->rl_agent);
	llm_ratelimit_free(p->rl_task);
	free(p);
}

unsigned llm_proxy_inflight(const struct llm_proxy *p)
{
	return p->inflight;
}

/* ---- answering the agent ---- */

static void sink_head(struct llm_exchange *ex, int status, json_t *headers)
{
	if (ex->head_sent)
		return;
	ex->head_sent = true;
	ex->agent_status = status;
	if (!ex->detached && ex->sink->head)
		ex->sink->head(ex->data, status, headers);
}

static void sink_done(struct llm_exchange *ex, const struct llm_outcome *o)
{
	if (!ex->detached && ex->sink->done)
		ex->sink->done(ex->data, o);
}

/* A refusal or local error before anything came from the upstream. */
static void answer_error(struct llm_exchange *ex, int status, const char *code, int err_code,
			 const char *msg, const char *retry_after)
{
	_cleanup_free_ char *body = llm_error_body(ex->info.api, status, code, msg);
	_cleanup_json_ json_t *h = json_pack("{s:s}", "content-type", "application/json");
	struct llm_outcome o = {
		.code = err_code,
		.msg = msg,
		.status = status,
		.model = ex->info.model,
		.settled = "refused",
	};

	if (h && retry_after)
		json_object_set_new(h, "retry-after", json_string(retry_after));
	sink_head(ex, status, h);
	if (body && !ex->detached && ex->sink->body)
		ex->sink->body(ex->data, body, strlen(body), false);
	sink_done(ex, &o);
}

/* ---- settling ---- */

static void settle(struct llm_exchange *ex, int code, const char *msg)
{
	struct llm_proxy *p = ex->p;
	struct llm_outcome o = {
		.code = code,
		.msg = msg ? msg : "",
		.status = ex->agent_status,
		.model = ex->info.model,
		.settled = "ok",
	};
	struct orch_error lerr = {0};
	bool complete;

	if (ex->sse_mode) {
		llm_sse_usage(ex->sse, &o.usage);
		complete = code == 0 && llm_sse_complete(ex->sse);
	} else {
		complete =
			code == 0 && !ex->resp_overflow &&
			llm_usage_parse_json(ex->info.api, ex->resp, ex->resp_len, &o.usage) >= 0;
	}
	if (!ex->reserved) {
		o.settled = "free";
	} else if (code == -ECONNREFUSED || (ex->status >= 400 && !o.usage.seen)) {
		/* Never reached the upstream, or it refused without billing. */
		llm_book_release(p->store, p->db, ex->reservation, &lerr);
		o.settled = "released";
	} else if (complete && o.usage.seen) {
		o.cost_micro = llm_cost_micro(&ex->model->price, &o.usage);
		o.settled = ex->detached ? "disconnected" : "ok";
		llm_book_settle(p->store, p->db, ex->reservation, ex->info.model, &o.usage,
				o.cost_micro, o.settled, &lerr);
	} else {
		/* Cut short or without usage: the upstream may have billed everything. */
		struct llm_usage u = o.usage;
		if (u.output < ex->info.max_tokens)
			u.output = ex->info.max_tokens;
		if (u.input + u.cache_write + u.cache_read == 0)
			u.cache_write = ex->info.input_estimate;
		o.usage = u;
		o.usage.seen = true;
		o.cost_micro = ex->reserved_micro;
		o.settled = "incomplete";
		llm_book_settle(p->store, p->db, ex->reservation, ex->info.model, &u, o.cost_micro,
				"incomplete", &lerr);
	}
	if (lerr.code < 0 && code == 0) {
		o.code = lerr.code;
		o.msg = lerr.msg;
	}
	sink_done(ex, &o);
}

/* ---- upstream callbacks ---- */

static void up_head(void *data, int status, json_t *headers)
{
	struct llm_exchange *ex = data;
	const char *ct = json_string_value(json_object_get(headers, "content-type"));

	ex->status = status;
	ex->sse_mode = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
	if (ex->sse_mode && llm_sse_new(ex->info.api, 0, &ex->sse) < 0)
		ex->sse_mode = false; /* no usage then: charged at worst case */
	sink_head(ex, status, headers);
}

static bool up_body(void *data, const char *buf, size_t len)
{
	struct llm_exchange *ex = data;

	if (!ex->detached && ex->sink->body && ex->sink->body(ex->data, buf, len, true)) {
		if (!ex->detached) {
			ex->paused = true;
			return true; /* not taken: comes again after llm_exchange_resume */
		}
	}
	if (ex->sse_mode) {
		llm_sse_feed(ex->sse, buf, len);
	} else if (!ex->resp_overflow) {
		if (ex->resp_len + len > ex->p->cfg->max_response_bytes) {
			ex->resp_overflow = true;
		} else {
			char *n = realloc(ex->resp, ex->resp_len + len + 1);
			if (!n) {
				ex->resp_overflow = true;
			} else {
				memcpy(n + ex->resp_len, buf, len);
				ex->resp = n;
				ex->resp_len += len;
			}
		}
	}
	if (!ex->detached)
		return false;
	ex->drained += len;
	if (ex->drained > ex->p->cfg->drain_max_bytes) {
		llm_http_abort(ex->http);
		ex->http = NULL;
		settle(ex, -EFBIG,
		       "the agent left and the rest of the answer was too long to read");
		ex_free(ex);
	}
	return false;
}

static void up_done(void *data, int code, const char *msg)
{
	struct llm_exchange *ex = data;
	char buf[ORCH_ERROR_MSG_MAX];

	ex->http = NULL;
	if (code < 0 && !ex->head_sent) {
		/* Nothing came back: the agent gets a 502 in its provider's shape; the ledger
		 * still settles (a timeout after sending may have been billed). */
		_cleanup_free_ char *body = NULL;
		_cleanup_json_ json_t *h = json_pack("{s:s}", "content-type", "application/json");
		snprintf(buf, sizeof(buf), "the LLM upstream did not answer: %s", msg);
		body = llm_error_body(ex->info.api, 502, "upstream_error", buf);
		sink_head(ex, 502, h);
		if (body && !ex->detached && ex->sink->body)
			ex->sink->body(ex->data, body, strlen(body), false);
		settle(ex, code, buf);
	} else {
		settle(ex, code, msg);
	}
	ex_free(ex);
}

static const struct llm_http_ops http_ops = {
	.head = up_head,
	.body = up_body,
	.done = up_done,
};

/* ---- starting ---- */

static const char *header_get(json_t *headers, const char *name)
{
	const char *k;
	json_t *v;

	json_object_foreach(headers, k,
			    v) if (strcasecmp(k, name) == 0) return json_string_value(v);
	return NULL;
}

static bool token_list_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s && s[n]; n++)
		if (n >= max || !(isalnum((unsigned char)s[n]) || strchr("._,-: ", s[n])))
			return false;
	return s && n > 0;
}

/* The agent's anthropic-beta values that the configuration allows, comma-separated
 * ("" when none): a beta can turn on what reaches beyond the request (the MCP connector,
 * the Files API), so unknown ones are dropped, not passed. */
static void betas_allowed(const struct llm_config *c, const char *beta, char *out, size_t len)
{
	char tok[65];
	size_t o = 0;

	out[0] = '\0';
	while (beta && *beta) {
		size_t n = strcspn(beta, ",");
		const char *t = beta;
		size_t tn = n;
		while (tn && (*t == ' ' || *t == '\t'))
			t++, tn--;
		while (tn && (t[tn - 1] == ' ' || t[tn - 1] == '\t'))
			tn--;
		if (tn && tn < sizeof(tok)) {
			memcpy(tok, t, tn);
			tok[tn] = '\0';
			if (llm_config_beta_allowed(c, tok) && o + tn + 2 < len) {
				o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "", tok);
			}
		}
		beta += n + (beta[n] == ',');
	}
}

/* Upstream headers with the real key. Everything is wiped afterwards by the caller. */
static int build_headers(const struct llm_config *c, const struct llm_upstream *u,
			 json_t *agent_headers, char **h, size_t max)
{
	const char *version = header_get(agent_headers, "anthropic-version");
	const char *beta = header_get(agent_headers, "anthropic-beta");
	char betas[1024];
	size_t n = 0;

	if (u->kind == LLM_API_OPENAI) {
		if (asprintf(&h[n++], "Authorization: Bearer %s", u->key) < 0)
			return -ENOMEM;
	} else if (u->kind == LLM_API_GEMINI) {
		if (asprintf(&h[n++], "x-goog-api-key: %s", u->key) < 0)
			return -ENOMEM;
	} else {
		if (asprintf(&h[n++], "x-api-key: %s", u->key) < 0)
			return -ENOMEM;
		if (asprintf(&h[n++], "anthropic-version: %s",
			     token_list_ok(version, 64) ? version : "2023-06-01") < 0)
			return -ENOMEM;
		betas_allowed(c, token_list_ok(beta, 1024) ? beta : NULL, betas, sizeof(betas));
		if (betas[0] && asprintf(&h[n++], "anthropic-beta: %s", betas) < 0)
			return -ENOMEM;
	}
	if (asprintf(&h[n++], "content-type: application/json") < 0)
		return -ENOMEM;
	h[n] = NULL;
	return n < max ? 0 : -E2BIG;
}

static void wipe_headers(char **h, size_t max)
{
	for (size_t i = 0; i < max && h[i]; i++) {
		explicit_bzero(h[i], strlen(h[i]));
		free(h[i]);
		h[i] = NULL;
	}
}

/* GET /v1/models is answered from the allowlist, in a shape both SDKs read: Anthropic's
 * list (type, display_name, has_more, first_id/last_id) and OpenAI's (object, owned_by,
 * created). */
static void answer_models(struct llm_exchange *ex)
{
	_cleanup_json_ json_t *list = json_array(), *h = NULL;
	_cleanup_json_ json_t *j = NULL;
	_cleanup_free_ char *s = NULL;
	const struct llm_config *c = ex->p->cfg;
	struct llm_outcome o = {.status = 200, .settled = "free", .msg = "", .model = ""};

	if (ex->info.route == LLM_ROUTE_GEMINI_MODELS) {
		/* Gemini's shape, its models only ("models/NAME"). */
		for (size_t i = 0; list && i < c->n_models; i++) {
			char name[LLM_MODEL_MAX + 16];
			if (c->upstreams[c->models[i].upstream].kind != LLM_API_GEMINI)
				continue;
			snprintf(name, sizeof(name), "models/%s", c->models[i].name);
			json_array_append_new(
				list, json_pack("{s:s, s:s, s:[s, s, s]}", "name", name,
						"displayName", c->models[i].name,
						"supportedGenerationMethods", "generateContent",
						"streamGenerateContent", "countTokens"));
		}
		j = json_pack("{s:O}", "models", list);
	} else {
		for (size_t i = 0; list && i < c->n_models; i++)
			json_array_append_new(
				list,
				json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "type", "model",
					  "id", c->models[i].name, "display_name",
					  c->models[i].name, "created_at", "1970-01-01T00:00:00Z",
					  "object", "model", "created", 0, "owned_by", "orch"));
		j = json_pack("{s:s, s:O, s:b, s:s?, s:s?}", "object", "list", "data", list,
			      "has_more", 0, "first_id", c->n_models ? c->models[0].name : NULL,
			      "last_id", c->n_models ? c->models[c->n_models - 1].name : NULL);
	}
	s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	h = json_pack("{s:s}", "content-type", "application/json");
	sink_head(ex, 200, h);
	if (s && ex->sink->body)
		ex->sink->body(ex->data, s, strlen(s), false);
	sink_done(ex, &o);
}

static bool id_ok(const char *s)
{
	return s && *s && strlen(s) <= ID_MAX;
}

/* The error shape until the route is known: by the path's look. */
static enum llm_api api_by_look(const char *path)
{
	if (!path)
		return LLM_API_ANTHROPIC;
	if (strncmp(path, "/v1/chat/", 9) == 0 || strncmp(path, "/v1/responses", 13) == 0)
		return LLM_API_OPENAI;
	if (strncmp(path, "/v1beta/", 8) == 0 ||
	    (strncmp(path, "/v1/models/", 11) == 0 && strchr(path, ':')))
		return LLM_API_GEMINI;
	return LLM_API_ANTHROPIC;
}

/* The VM's and the agent's caps on exchanges in flight (ex itself not counted): true with
 * the refusal's text in msg when one is reached. */
static bool inflight_over(const struct llm_exchange *ex, char *msg, size_t len)
{
	const struct llm_config *c = ex->p->cfg;
	unsigned agent = 0, vm = 0;

	if (!c->agent_inflight && !(c->vm_inflight && ex->vm[0]))
		return false;
	for (const struct llm_exchange *o = ex->p->list; o; o = o->next) {
		if (o == ex)
			continue;
		if (strcmp(o->agent, ex->agent) == 0)
			agent++;
		if (ex->vm[0] && strcmp(o->vm, ex->vm) == 0)
			vm++;
	}
	if (c->agent_inflight && agent >= c->agent_inflight) {
		snprintf(msg, len,
			 "too many LLM requests in flight from this agent slot (at most %u); "
			 "retry when one has finished",
			 c->agent_inflight);
		return true;
	}
	if (c->vm_inflight && ex->vm[0] && vm >= c->vm_inflight) {
		snprintf(msg, len,
			 "too many LLM requests in flight from this VM (at most %u); retry when "
			 "one has finished",
			 c->vm_inflight);
		return true;
	}
	return false;
}

/* Everything before the upstream: returns 0 when the upstream request was started, 1 when
 * the call was answered already. */
static int admit(struct llm_exchange *ex, const struct llm_call *call)
{
	struct llm_proxy *p = ex->p;
	const struct llm_config *c = p->cfg;
	struct orch_error err = {0};
	/* Gemini paths carry the model: "/v1beta/models/" + 128 + ":streamGenerateContent". */
	char path[256], msg[ORCH_ERROR_MSG_MAX], retry[32];
	_cleanup_free_ char *body = NULL;
	size_t body_len = 0, qlen;
	enum llm_route route;
	uint64_t retry_ms = 0, now = orch_now_ms();
	const struct llm_upstream *u;
	char *hdrs[8] = {0};
	_cleanup_free_ char *url = NULL;
	int r;

	qlen = call->path ? strcspn(call->path, "?") : 0;
	ex->info.api = api_by_look(call->path);
	if (qlen >= sizeof(path) || !id_ok(call->agent) || (call->task && !id_ok(call->task)) ||
	    (call->vm && !id_ok(call->vm))) {
		answer_error(ex, 404, "not_found", -ENOENT, "no such endpoint", NULL);
		return 1;
	}
	snprintf(ex->agent, sizeof(ex->agent), "%s", call->agent);
	snprintf(ex->vm, sizeof(ex->vm), "%s", call->vm ? call->vm : "");
	memcpy(path, call->path, qlen);
	path[qlen] = '\0';
	if (llm_route_parse(call->method, path, &route) < 0) {
		snprintf(msg, sizeof(msg), "orch's LLM endpoint does not serve %.16s %.63s",
			 call->method ? call->method : "?", path);
		answer_error(ex, 404, "not_found", -ENOENT, msg, NULL);
		return 1;
	}
	ex->info.route = route;
	ex->info.api = llm_route_api(route);
	if (p->inflight > c->max_inflight) {
		answer_error(ex, 429, "rate_limit_exceeded", -EBUSY,
			     "too many LLM requests in flight on this host; retry shortly", "1");
		return 1;
	}
	if (inflight_over(ex, msg, sizeof(msg))) {
		answer_error(ex, 429, "rate_limit_exceeded", -EBUSY, msg, "1");
		return 1;
	}
	if (llm_ratelimit_take(p->rl_agent, call->agent, now, &retry_ms) < 0 ||
	    (call->task && llm_ratelimit_take(p->rl_task, call->task, now, &retry_ms) < 0)) {
		snprintf(retry, sizeof(retry), "%llu", (unsigned long long)(retry_ms + 999) / 1000);
		snprintf(msg, sizeof(msg),
			 "orch rate limit: too many LLM requests from this agent or task; retry "
			 "in %s s",
			 retry);
		answer_error(ex, 429, "rate_limit_exceeded", -EAGAIN, msg, retry);
		return 1;
	}
	if (route == LLM_ROUTE_MODELS || route == LLM_ROUTE_GEMINI_MODELS) {
		answer_models(ex);
		return 1;
	}
	r = llm_policy_apply_path(&c->policy, route, path, call->body, call->body_len, &body,
				  &body_len, &ex->info, &err);
	if (r < 0) {
		answer_error(ex, r == -EMSGSIZE ? 413 : 400,
			     r == -EMSGSIZE ? "request_too_large" : "invalid_request", r, err.msg,
			     NULL);
		return 1;
	}
	ex->model = llm_config_model(c, ex->info.model);
	if (!ex->model) {
		snprintf(msg, sizeof(msg),
			 "model '%s' is not allowed by orch's LLM policy; to allow it, add "
			 "\"%s\" with its upstream and prices to llm.models in orchd's config",
			 ex->info.model, ex->info.model);
		answer_error(ex, 403, "model_not_allowed", -EACCES, msg, NULL);
		return 1;
	}
	u = &c->upstreams[ex->model->upstream];
	if (u->kind != ex->info.api || !u->key) {
		snprintf(msg, sizeof(msg), "model '%s' is not served on %s", ex->info.model, path);
		answer_error(ex, 400, "invalid_request", -EINVAL, msg, NULL);
		return 1;
	}
	if (ex->info.remote_input) {
		/* The body is no bound of such a request's input: refused, or (when allowed)
		 * reserved at the model's whole context window. */
		if (!c->allow_remote_input) {
			snprintf(msg, sizeof(msg),
				 "orch refuses input the request does not carry itself (%s): its "
				 "cost cannot be bounded before the call (llm.allow_remote_input "
				 "allows it)",
				 ex->info.remote_what);
			answer_error(ex, 400, "invalid_request", -EPERM, msg, NULL);
			return 1;
		}
		int64_t window = ex->model->context_window ? ex->model->context_window
							   : LLM_DEFAULT_CONTEXT_WINDOW;
		if (ex->info.input_estimate < window)
			ex->info.input_estimate = window;
	}
	if (route != LLM_ROUTE_COUNT_TOKENS && route != LLM_ROUTE_GEMINI_COUNT) {
		int64_t tokens = ex->info.input_estimate + ex->info.max_tokens;
		ex->reserved_micro = llm_cost_worst_micro(
			&ex->model->price, ex->info.input_estimate, ex->info.max_tokens);
		r = llm_book_reserve(p->store, p->db, &c->limits, call->agent, call->task,
				     ex->reserved_micro, tokens, &ex->reservation, &err);
		if (r == -EDQUOT) {
			answer_error(ex, 403, "insufficient_quota", r, err.msg, NULL);
			return 1;
		}
		if (r < 0) {
			answer_error(ex, 429, "rate_limit_exceeded", r, err.msg, "5");
			return 1;
		}
		ex->reserved = true;
	}
	/* Gemini streams Server-Sent Events only when asked (the agent's query string is not
	 * forwarded). */
	if (asprintf(&url, "%s%s%s", u->base_url, path,
		     route == LLM_ROUTE_GEMINI_STREAM ? "?alt=sse" : "") < 0 ||
	    build_headers(c, u, call->headers, hdrs, ELEMENTSOF(hdrs)) < 0) {
		wipe_headers(hdrs, ELEMENTSOF(hdrs));
		r = -ENOMEM;
		snprintf(msg, sizeof(msg), "out of memory");
	} else {
		struct llm_http_req req = {
			.url = url,
			.method = "POST",
			.headers = (const char *const *)hdrs,
			.body = body,
			.body_len = body_len,
			.connect_timeout_ms = c->connect_timeout_ms,
			.timeout_ms = c->timeout_ms,
			.ca_file = u->ca_file,
		};
		r = llm_http_start(p->curl, &req, &http_ops, ex, &ex->http, &err);
		wipe_headers(hdrs, ELEMENTSOF(hdrs));
		snprintf(msg, sizeof(msg), "%s", err.msg);
	}
	if (r < 0) {
		if (ex->reserved)
			llm_book_release(p->store, p->db, ex->reservation, NULL);
		ex->reserved = false;
		answer_error(ex, 502, "upstream_error", r, msg, NULL);
		return 1;
	}
	return 0;
}

static struct llm_exchange *ex_new(struct llm_proxy *p, const struct llm_sink *sink, void *data)
{
	struct llm_exchange *ex = calloc(1, sizeof(*ex));

	if (!ex)
		return NULL;
	ex->p = p;
	ex->sink = sink;
	ex->data = data;
	p->inflight++;
	ex->next = p->list;
	if (p->list)
		p->list->prev = ex;
	p->list = ex;
	return ex;
}

int llm_proxy_start(struct llm_proxy *p, const struct llm_call *call, const struct llm_sink *sink,
		    void *data, struct llm_exchange **ret)
{
	struct llm_exchange *ex = ex_new(p, sink, data);

	*ret = NULL;
	if (!ex)
		return -ENOMEM;
	if (admit(ex, call) > 0) {
		ex_free(ex);
		return 0;
	}
	*ret = ex;
	return 0;
}

int llm_proxy_refuse(struct llm_proxy *p, const struct llm_call *call, int status, const char *code,
		     const char *msg, const struct llm_sink *sink, void *data)
{
	struct llm_exchange *ex = ex_new(p, sink, data);

	if (!ex)
		return -ENOMEM;
	ex->info.api = api_by_look(call->path);
	answer_error(ex, status, code, -EACCES, msg, NULL);
	ex_free(ex);
	return 0;
}

void llm_exchange_detach(struct llm_exchange *ex)
{
	if (!ex)
		return;
	ex->detached = true;
	/* A paused transfer must go on so that it is drained and billed. */
	llm_exchange_resume(ex);
}

void llm_exchange_resume(struct llm_exchange *ex)
{
	if (!ex || !ex->paused)
		return;
	ex->paused = false;
	llm_http_resume(ex->http); /* may deliver, finish and free ex */
}
