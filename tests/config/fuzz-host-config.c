/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzzes orchd's configuration parser: any input is either a config or a clean error. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};

	if (orchd_config_parse((const char *)data, size, NULL, &c, &err) == 0) {
		if (!c || c->n_vms < 1 || !c->vms[0].workspace)
			__builtin_trap();
		orchd_config_free(c);
	} else if (c || !err.msg[0]) {
		__builtin_trap();
	}
	return 0;
}
