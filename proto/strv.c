/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>

#include "strv.h"

void orch_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t orch_strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}
