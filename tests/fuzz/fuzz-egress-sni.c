/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's TLS ClientHello server-name parser (proto/egress-http.h) and the lane's frame
 * header and control-message parsers (proto/egress.h), against arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "egress-http.h"
#include "egress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = {0};
	char sni[ORCH_EGRESS_MAX_HOST + 1];
	int r = orch_tls_sni(data, size, sni, &err);

	if (r == 1 && (!orch_egress_host_valid(sni) || orch_egress_host_is_ip(sni)))
		abort();
	if (size >= ORCH_EGRESS_HDR_LEN) {
		struct orch_egress_hdr h;
		(void)orch_egress_hdr_get(data, &h, &err);
		json_t *root = NULL;
		struct orch_egress_open o;
		struct orch_egress_verdict v;
		struct orch_egress_hello hello;
		const uint8_t *p = data + ORCH_EGRESS_HDR_LEN;
		size_t n = size - ORCH_EGRESS_HDR_LEN;
		if (orch_egress_open_parse(p, n, &root, &o, &err) == 0)
			json_decref(root);
		if (orch_egress_verdict_parse(p, n, &root, &v, &err) == 0)
			json_decref(root);
		if (orch_egress_hello_parse(p, n, &root, &hello, &err) == 0)
			json_decref(root);
	}
	return 0;
}
