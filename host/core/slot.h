/* SPDX-License-Identifier: Apache-2.0 */
/* An agent slot of a VM: which task (attempt) runs there and where its output goes.
 * Private to vm.c, which alone changes a slot (lease, ack, release, loss), and to its
 * output split output.c (the slot's output buffer and spool position). Everyone else asks
 * vm.h. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "schema.h"
#include "store.h"

/* Output received for a slot's task and not yet spooled (output.c). */
#define OUTPUT_BUF_MAX (128 * 1024)
#define OUTPUT_MAX_SEGS 64
struct output_pending {
	unsigned char *buf; /* OUTPUT_BUF_MAX bytes once used */
	size_t len;
	struct output_seg segs[OUTPUT_MAX_SEGS];
	unsigned n_segs;
	uint64_t since; /* orch_now_ms of the batch's first bytes */
};

struct slot {
	int64_t task; /* 0: free */
	int64_t attempt;
	char wire_id[ORCH_MAX_ID_LEN + 1]; /* "<task>.<attempt>" on the guest channel */
	bool running;			   /* task.run acknowledged */
	bool orphan;			   /* from before an orchd restart: wait for hello */
	bool cancel_sent;
	int spool_fd;
	int64_t spool_off;
	int64_t next_guest_seq;
	int64_t next_store_seq;
	bool output_capped; /* max_output reached: further output is dropped */
	char task_str[24];  /* the task id as text (vm_slot_task_str) */
	struct output_pending out;
};
