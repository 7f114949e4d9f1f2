/* SPDX-License-Identifier: Apache-2.0 */
/* A minimal host end of a supervisor's control channel, for what runs before or beside
 * orchd's own (host/vm.c): making a snapshot template (hello, then vm.freeze), and the
 * benchmarks and tests that boot guests without orchd (hello, vm.thaw, one task at a
 * time). It answers hello and heartbeats, keeps one task's output and exit, and hands
 * everything else to the caller's callbacks. Runs on the caller's loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "loop.h"
#include "rpc.h"
#include "schema-vm.h"
#include "schema.h"

#define LV_PEER_OUT_MAX (256 * 1024)

struct lv_peer;

struct lv_peer_task {
	char id[32];
	bool done;
	enum orch_exit_status status;
	int64_t exit_code;
	char out[LV_PEER_OUT_MAX]; /* stdout and stderr, in arrival order, NUL-terminated */
	size_t out_len;
	uint64_t sent_ms, first_output_ms, exit_ms; /* orch_now_ms */
};

struct lv_peer_state {
	bool hello;  /* answered */
	bool frozen; /* the hello said the supervisor is frozen (snapshot.h) */
	bool closed;
	char boot_id[ORCH_MAX_ID_LEN + 1];	 /* the hello's, then vm.thaw's */
	char hello_boot_id[ORCH_MAX_ID_LEN + 1]; /* the last hello's */
	int64_t slots;
	uint64_t hello_ms; /* orch_now_ms when the hello arrived */
	int64_t warm_ms;   /* vm.thaw's answer: its warm-up's time, -1 when none ran */
};

/* Takes fd (a connected stream). name: the VM name the hello reply carries. on_change
 * (may be NULL) runs after every hello, output, exit and close. */
int lv_peer_new(struct orch_loop *loop, int fd, const char *name,
		void (*on_change)(struct lv_peer *p, void *data), void *data, struct lv_peer **ret,
		struct orch_error *err);
void lv_peer_free(struct lv_peer *p);
const struct lv_peer_state *lv_peer_state(const struct lv_peer *p);
struct orch_rpc *lv_peer_rpc(const struct lv_peer *p);

/* vm.freeze; *done set and *ok (may be NULL) told when the reply came. */
int lv_peer_freeze(struct lv_peer *p, bool *done, bool *ok);
/* vm.thaw; on success lv_peer_state's boot_id becomes the thaw's. */
int lv_peer_thaw(struct lv_peer *p, const struct orch_vm_thaw *t, bool *done, bool *ok);
/* task.run of `/bin/sh -c script` in slot; its output and exit go to the returned task
 * (owned by the peer; one at a time, the next run reuses it). */
struct lv_peer_task *lv_peer_run(struct lv_peer *p, int64_t slot, const char *script,
				 int64_t memory_bytes);

/* Runs loop until *flag or timeout_ms; returns *flag. */
bool lv_peer_wait(struct orch_loop *loop, const bool *flag, uint64_t timeout_ms);
/* Connects to a unix socket, retrying until timeout_ms; the fd is non-blocking. */
int lv_dial_unix(const char *path, uint64_t timeout_ms, struct orch_error *err);
