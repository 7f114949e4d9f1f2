/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP client for the upstreams: libcurl's multi interface driven by orch_loop
 * (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION + curl_multi_socket_action). TLS is verified,
 * HTTP/2 is used where the server offers it (and multiplexed), redirects are not followed,
 * only http and https are allowed, and every transfer has a connect and a total timeout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"

struct llm_curl;
struct llm_http;

int llm_curl_new(struct orch_loop *loop, struct llm_curl **ret, struct orch_error *err);
/* Aborts every transfer still running (their callbacks are not called). */
void llm_curl_free(struct llm_curl *c);

struct llm_http_req {
	const char *url;
	const char *method;	    /* "GET" or "POST" */
	const char *const *headers; /* "Name: value" strings, NULL-terminated */
	const void *body;	    /* copied; may be NULL */
	size_t body_len;
	long connect_timeout_ms; /* 0: 10000 */
	long timeout_ms;	 /* 0: 600000 */
	const char *ca_file;	 /* NULL: the system's trust store */
};

struct llm_http_ops {
	/* The response head (status and the allowlisted headers, lowercase names; borrowed).
	 * Called once, before the first body bytes or before done. */
	void (*head)(void *data, int status, json_t *headers);
	/* Body bytes. Returning true pauses the transfer: the bytes were NOT taken and are
	 * delivered again after llm_http_resume (the upstream is not read meanwhile). */
	bool (*body)(void *data, const char *buf, size_t len);
	/* The end: code 0 when the response was complete, else -errno with msg (never holds
	 * request headers, so no key). The transfer is freed after this returns. */
	void (*done)(void *data, int code, const char *msg);
};

/* Starts a transfer. The ops run from the loop, never from inside this call. */
int llm_http_start(struct llm_curl *c, const struct llm_http_req *req,
		   const struct llm_http_ops *ops, void *data, struct llm_http **ret,
		   struct orch_error *err);
/* Resumes a transfer paused by its body callback (may deliver the held bytes at once).
 * Not from inside the transfer's own callbacks. */
void llm_http_resume(struct llm_http *h);
/* Stops a transfer: no callback is called after this. Safe from inside its callbacks. */
void llm_http_abort(struct llm_http *h);
