/* SPDX-License-Identifier: Apache-2.0 */
/* vm.freeze and vm.thaw (docs/PROTOCOL.md, "Snapshots"): host -> guest requests that make
 * a booted guest a snapshot template and a guest restored from that snapshot a VM of its
 * own. vm.freeze takes no params; vm.thaw hands the restored guest what must differ from
 * its template: fresh entropy, the time, its name and the virtio-fs shares attached after
 * the restore. Parsed strings are BORROWED from params; the seed is allocated. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"

#define ORCH_THAW_SEED_MIN 32 /* decoded bytes */
#define ORCH_THAW_SEED_MAX 512
#define ORCH_THAW_MAX_MOUNTS 4
#define ORCH_THAW_TAG_MAX 36   /* virtio-fs tags: [a-z0-9._-]{1,36} */
#define ORCH_THAW_PATH_MAX 256 /* mount points: absolute, normalised */
#define ORCH_THAW_NAME_MAX 64  /* hostnames: [A-Za-z0-9._-]{1,64} */

struct orch_thaw_mount {
	const char *tag;
	const char *path;
	bool readonly;
};

struct orch_vm_thaw {
	unsigned char *seed; /* allocated, seed_len bytes */
	size_t seed_len;
	int64_t time_ns; /* CLOCK_REALTIME on the host when sent, ns since the epoch */
	const char *name;
	size_t n_mounts;
	struct orch_thaw_mount mounts[ORCH_THAW_MAX_MOUNTS];
	bool warm; /* before answering, run one throwaway jail (guest/warm.c) */
};

/* vm.freeze params: absent, or an empty object. */
int orch_vm_freeze_parse(json_t *params, struct orch_error *err);

int orch_vm_thaw_parse(json_t *params, struct orch_vm_thaw *ret, struct orch_error *err);
void orch_vm_thaw_done(struct orch_vm_thaw *t);
json_t *orch_vm_thaw_build(const struct orch_vm_thaw *t);

/* vm.thaw result: {"boot_id": ID, "warm_ms": N}: the supervisor's boot id after the thaw,
 * and how long the warm-up jail took (only when one was asked for and ran). */
struct orch_vm_thaw_result {
	const char *boot_id;
	int64_t warm_ms; /* -1: no warm-up ran */
};
int orch_vm_thaw_result_parse(json_t *result, struct orch_vm_thaw_result *ret,
			      struct orch_error *err);
json_t *orch_vm_thaw_result_build(const struct orch_vm_thaw_result *r);

/* [a-z0-9._-]{1,ORCH_THAW_TAG_MAX}, not starting with '.' or '-'. */
bool orch_thaw_tag_valid(const char *tag);
