/* SPDX-License-Identifier: Apache-2.0 */
/* The supervisor's state: slots (one jail at a time each), the host channel, the exits
 * awaiting acknowledgement. One struct, passed everywhere; no globals. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "config.h"
#include "dialer.h"
#include "jail-seccomp.h"
#include "loop.h"
#include "rpc.h"
#include "schema-vm.h"
#include "schema.h"
#include "transport.h"

struct sv_task;
struct sv_shell;
struct llm_bridge;
struct llm_endpoint;
struct sv_llm_channel;
struct egress_bridge;
struct sv_thaw;

struct sv_slot {
	unsigned index;
	uid_t uid; /* uid_base + index; gid is the same number */
	int netns_fd;
	struct sv_cgroup cgroup;
	bool enforced_pids;	  /* by a cgroup (else RLIMIT_NPROC per uid) */
	struct sv_task *task;	  /* NULL: free */
	struct sv_shell *shell;	  /* debug shell listener (extras.c), or NULL */
	struct llm_endpoint *llm; /* in-jail LLM endpoint (extras.c), or NULL */
};

/* A task.exit request kept until the host acknowledges it (re-sent after reconnects). */
struct sv_exit {
	struct sv_exit *next;
	char task[ORCH_MAX_ID_LEN + 1];
	json_t *params; /* the task.exit params */
	bool inflight;	/* sent on the current connection, reply pending */
	struct supervisor *sv;
};

struct supervisor {
	struct sv_config *cfg;
	struct orch_loop *loop;
	struct orch_addr addr;
	char boot_id[40];

	struct sv_cgroups cgroups;
	struct sv_seccomp seccomp;
	bool have_seccomp;
	struct sv_slot slots[ORCH_MAX_SLOTS];
	struct llm_bridge *llm;		 /* NULL without the LLM endpoint */
	struct sv_llm_channel *llm_chan; /* --llm-connect (llm-channel.c), or NULL */
	struct egress_bridge *egress;	 /* --egress-connect (guest/egress/), or NULL */
	const char *extras_env[32];	 /* sv_extras_env's merged list (extras.c) */

	/* channel */
	struct orch_rpc_method methods[16]; /* the method table (channel.c) */
	size_t n_methods;
	struct orch_rpc *rpc; /* NULL while disconnected */
	bool ready;	      /* hello answered */
	uint64_t heartbeat_ms;
	int64_t heartbeat_seq;
	struct orch_timer *heartbeat;
	struct orch_dialer *dialer; /* dials the host again when the channel drops */
	char host_name[128];

	struct sv_exit *exits; /* oldest first */
	size_t n_exits;

	/* snapshots (thaw.c) */
	bool frozen;		      /* vm.freeze answered; vm.thaw not yet */
	bool template;		      /* --template, until a vm.thaw: runs no task */
	unsigned hellos;	      /* hellos answered so far (each connection's, counted) */
	struct orch_timer *thaw_wait; /* frozen and connected: no vm.thaw, the channel goes */
	unsigned thaw_wait_hello;     /* the connection (hellos) it was armed for */
	struct sv_thaw *thaw;	      /* a vm.thaw in progress, or NULL */
	/* shares a vm.thaw mounted so far (a repeated vm.thaw skips them) */
	char thaw_mounted[ORCH_THAW_MAX_MOUNTS][ORCH_THAW_PATH_MAX + 1];
	size_t n_thaw_mounted;

	struct orch_io *signal_io;
	int signal_fd;
	bool quitting;
	int exit_code;
};

/* channel.c */
int sv_channel_start(struct supervisor *sv);
void sv_channel_stop(struct supervisor *sv);
/* The channel can take messages now (connected and past hello). */
bool sv_channel_ready(const struct supervisor *sv);
/* Queues a finished task's exit (params stolen) and sends it when possible. */
void sv_exit_queue(struct supervisor *sv, const char *task, json_t *params_new);
bool sv_exit_pending(const struct supervisor *sv, const char *task);
/* Called when the channel has room again (drain) or became ready. */
void sv_tasks_flush_all(struct supervisor *sv);
json_t *sv_capabilities(const struct supervisor *sv);
/* main.c: a fresh random id for hello's boot_id. */
int sv_read_boot_id(char *buf, size_t size);
