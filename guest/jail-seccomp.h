/* SPDX-License-Identifier: Apache-2.0 */
/* The jail's seccomp filter (libseccomp), exported as classic BPF for `bwrap --seccomp FD`.
 * Denied calls fail with EPERM (clone3: ENOSYS, so libc falls back to clone, whose
 * namespace flags the filter can inspect). Calls from a foreign architecture kill. */
#pragma once

#include <stddef.h>

#include "error.h"

struct sv_seccomp {
	unsigned char *bpf; /* struct sock_filter[] */
	size_t len;	    /* bytes */
};

int sv_seccomp_build(struct sv_seccomp *ret, struct orch_error *err);
void sv_seccomp_done(struct sv_seccomp *s);

/* Names of the syscalls the filter denies (NULL-terminated), for docs and tests. */
extern const char *const sv_seccomp_denied[];

/* A fresh memfd (NOT close-on-exec, offset 0) holding the program, for a child to pass
 * to bwrap. Each bwrap needs its own open file description: bwrap reads it to EOF. */
int sv_seccomp_memfd(const struct sv_seccomp *s);
