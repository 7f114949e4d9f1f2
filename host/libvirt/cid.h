/* SPDX-License-Identifier: Apache-2.0 */
/* vsock CIDs for VMs: each VM keeps the CID it got first, across orchd restarts, and no
 * two VMs share one. Persistence is behind a small interface so that orchd's store can
 * back it; a JSON-file store is provided for tools, tests and until then. */
#pragma once

#include <stdint.h>

#include "error.h"

#define LV_CID_MIN 3u	       /* 0-2 are reserved (hypervisor, local, host) */
#define LV_CID_MAX 0xfffffffeu /* 0xffffffff is VMADDR_CID_ANY */

typedef int (*lv_cid_each_cb)(const char *vm, uint32_t cid, void *data);

struct lv_cid_store {
	void *data;
	/* The CID recorded for vm: 0 with *ret set, -ENOENT when there is none. */
	int (*get)(void *data, const char *vm, uint32_t *ret);
	/* Records vm -> cid durably (replacing a previous one). */
	int (*put)(void *data, const char *vm, uint32_t cid);
	/* Calls cb for every recorded pair; a cb < 0 stops and is returned. */
	int (*each)(void *data, lv_cid_each_cb cb, void *cb_data);
};

/* The VM's CID: the recorded one, else the lowest free CID >= LV_CID_MIN, recorded. */
int lv_cid_for_vm(const struct lv_cid_store *s, const char *vm, uint32_t *ret,
		  struct orch_error *err);

/* A store in one JSON file ({"vm": cid, ...}), rewritten atomically on every put. */
struct lv_cid_file;
int lv_cid_file_open(const char *path, struct lv_cid_file **ret, struct orch_error *err);
void lv_cid_file_free(struct lv_cid_file *f);
struct lv_cid_store lv_cid_file_store(struct lv_cid_file *f);
/* Forgets vm's CID (a pooled VM that was retired: its name never comes back). */
int lv_cid_file_remove(struct lv_cid_file *f, const char *vm);
