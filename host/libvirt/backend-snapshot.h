/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt backend's snapshot templates, as pools show them (backend-snapshot.c). */
#pragma once

#include <jansson.h>

struct orchd;
struct orchd_vm_config;

/* Adds "snapshot": {state: none|making|ready|failed, took_ms, restores, error} for a
 * pooled class with vms.<name>.snapshot. */
void lvb_snapshot_describe(struct orchd *d, const struct orchd_vm_config *cls, json_t *obj);
