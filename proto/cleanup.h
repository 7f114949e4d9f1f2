/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-bound cleanup helpers (GCC/Clang cleanup attribute). Destructors accept NULL. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <jansson.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

/* jansson >= 2.11 already provides json_decrefp (with json_auto_t) for GCC/Clang. */
#ifndef json_auto_t
static inline void json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#endif

/* Kills (SIGKILL) and reaps a child pid that still belongs to the scope. */
static inline void pid_killp(pid_t *pid)
{
	if (*pid > 0) {
		int saved = errno;
		kill(*pid, SIGKILL);
		while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = saved;
	}
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_json_ _cleanup_(json_decrefp)
#define _cleanup_pid_ _cleanup_(pid_killp)

/* Declares NAME##p, a cleanup wrapper around FREE for pointer type TYPE. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
	static inline void func##p(type *p)     \
	{                                       \
		if (*p)                         \
			func(*p);               \
	}

/* Hands a pointer or fd out of a cleanup scope. */
#define TAKE_PTR(p)                      \
	({                               \
		__typeof__(p) _tp = (p); \
		(p) = NULL;              \
		_tp;                     \
	})
#define TAKE_FD(fd)              \
	({                       \
		int _tfd = (fd); \
		(fd) = -1;       \
		_tfd;            \
	})

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
