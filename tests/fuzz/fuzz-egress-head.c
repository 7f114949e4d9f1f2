/* SPDX-License-Identifier: Apache-2.0 */
/* The egress helper's request-head parser (proto/egress-http.h) and the open message it
 * builds from a parsed head, against arbitrary bytes: the end of the head is looked for
 * as the helper does (at most ORCH_HTTP_MAX_HEAD bytes), then parsed; what parses must
 * give a host and port the lane accepts, and its open message must parse again. The
 * same bytes also go, in two pieces split where the first byte says, through orchd's
 * parser of intercepted request streams (orch_http_reqs_feed), whose events must account
 * for every byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "egress-http.h"
#include "egress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct orch_http_head head;
static struct orch_http_reqs reqs;

struct count {
	size_t bytes;
	bool in_head;
};

static int on_ev(void *data, enum orch_http_ev ev, const struct orch_http_head *h, const uint8_t *p,
		 size_t n)
{
	struct count *c = data;
	if ((ev == ORCH_HTTP_EV_HEAD) != (h != NULL) || (p == NULL && n))
		abort();
	c->bytes += n;
	return 0;
}

static void stream(const uint8_t *data, size_t size)
{
	struct orch_error err = {0};
	struct count c = {0};
	size_t cut = size ? data[0] % (size + 1) : 0;

	memset(&reqs, 0, sizeof(reqs));
	if (orch_http_reqs_feed(&reqs, data, cut, on_ev, &c, &err) == 0)
		(void)orch_http_reqs_feed(&reqs, data + cut, size - cut, on_ev, &c, &err);
	if (c.bytes > size)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = {0};
	size_t len = size < ORCH_HTTP_MAX_HEAD ? size : ORCH_HTTP_MAX_HEAD;
	int end = orch_http_head_end((const char *)data, len);

	stream(data, size);
	if (end <= 0)
		return 0;
	if (orch_http_head_parse((const char *)data, (size_t)end, &head, &err) < 0)
		return 0;
	if (!orch_egress_host_valid(head.host) || head.port == 0)
		abort();
	json_t *headers = json_array();
	for (size_t i = 0; i < head.n_headers; i++)
		if (!orch_http_header_hop(head.headers[i].name))
			json_array_append_new(headers, json_pack("[ss]", head.headers[i].name,
								 head.headers[i].value));
	struct orch_egress_open o = {
		.slot = 1, .kind = head.kind, .host = head.host, .port = head.port};
	if (head.kind == ORCH_EGRESS_HTTP) {
		o.method = head.method;
		o.target = head.target;
		o.headers = headers;
	}
	size_t n = 0;
	char *msg = orch_egress_open_build(&o, &n);
	json_t *root = NULL;
	struct orch_egress_open back;
	if (!msg || orch_egress_open_parse(msg, n, &root, &back, &err) < 0)
		abort(); /* what the helper sends must pass the supervisor's check */
	json_decref(root);
	free(msg);
	json_decref(headers);
	return 0;
}
