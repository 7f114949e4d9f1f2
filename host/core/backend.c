/* SPDX-License-Identifier: Apache-2.0 */
/* The backend table: the local backend (backend-local.c) and the libvirt backend
 * (host/libvirt/backend-libvirt.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cleanup.h"

int orchd_shell_socket_path(const char *state_dir, const char *vm, int64_t slot, char *buf,
			    size_t len)
{
	int n = slot < 0 ? snprintf(buf, len, "%s/vm/%s/chan/shell-%%u.sock", state_dir, vm)
			 : snprintf(buf, len, "%s/vm/%s/chan/shell-%lld.sock", state_dir, vm,
				    (long long)slot);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const struct orchd_backend_ops *orchd_backend_find(const char *name)
{
	const struct orchd_backend_ops *const backends[] = {
		&orchd_backend_local,
		&orchd_backend_libvirt,
	};

	for (size_t i = 0; i < ELEMENTSOF(backends); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}
