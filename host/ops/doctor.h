/* SPDX-License-Identifier: Apache-2.0 */
/* `orch doctor`: checks what orch needs on this host and says, per item, ok / missing /
 * degraded with the exact fix. A required item that is missing makes the verdict fail.
 * What is required depends on the configuration: the libvirt pieces and the guest image
 * only when a VM uses the libvirt backend. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "config.h"

enum orch_doctor_status {
	ORCH_DOCTOR_OK = 0,
	ORCH_DOCTOR_DEGRADED, /* works, with less isolation, speed or fewer limits */
	ORCH_DOCTOR_MISSING,  /* absent or unusable */
};

#define ORCH_DOCTOR_MAX_ITEMS 32

struct orch_doctor_item {
	char id[32];	/* stable: "kvm", "vhost-vsock", "libvirtd", ... */
	char title[64]; /* human name */
	enum orch_doctor_status status;
	bool required;	  /* missing => doctor fails */
	char detail[512]; /* what was found */
	char fix[512];	  /* "" when ok */
};

/* Called before a slow check (the KVM test boot) so a CLI can show progress. */
typedef void (*orch_doctor_progress_cb)(const char *what, void *data);

struct orch_doctor_opts {
	const struct orchd_config *cfg; /* NULL: the defaults (local backend) */
	const char *image_dir;		/* NULL: orch_doctor_image_dir() */
	const char *qemu;		/* NULL: qemu-system-x86_64 from PATH */
	unsigned kvm_timeout_ms;	/* 0: 10000 */
	bool no_boot;			/* skip the KVM test boot */
	orch_doctor_progress_cb progress;
	void *progress_data;
};

struct orch_doctor_report {
	struct orch_doctor_item items[ORCH_DOCTOR_MAX_ITEMS];
	size_t n;
	bool failed; /* a required item is missing */
};

void orch_doctor_run(const struct orch_doctor_opts *o, struct orch_doctor_report *ret);

/* $ORCH_VM_OUT/image, else <datadir>/orch/image when it exists, else the source tree's
 * vm-images/out/image. */
const char *orch_doctor_image_dir(char *buf, size_t len);

const char *orch_doctor_status_name(enum orch_doctor_status s);
/* {"ok":bool,"items":[{"id","title","status","required","detail","fix"}]} */
json_t *orch_doctor_report_json(const struct orch_doctor_report *r);
