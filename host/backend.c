/* SPDX-License-Identifier: Apache-2.0 */
/* The backend table. The libvirt backend (host/libvirt/) adds itself when built: it
 * defines orchd_backend_libvirt and the build sets ORCHD_HAVE_LIBVIRT_BACKEND. */
#include <string.h>

#include "backend.h"
#include "cleanup.h"

#ifdef ORCHD_HAVE_LIBVIRT_BACKEND
extern const struct orchd_backend_ops orchd_backend_libvirt;
#endif

static const struct orchd_backend_ops *const backends[] = {
	&orchd_backend_local,
#ifdef ORCHD_HAVE_LIBVIRT_BACKEND
	&orchd_backend_libvirt,
#endif
};

const struct orchd_backend_ops *orchd_backend_find(const char *name)
{
	for (size_t i = 0; i < ELEMENTSOF(backends); i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}
