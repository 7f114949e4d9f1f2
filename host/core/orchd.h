/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's runtime state: one struct orchd passed everywhere (no globals). Its parts
 * have their owners, each with a header of its own: the VMs and their agent slots
 * (vm.h), the scheduler (scheduler.h), clients waiting on tasks (waiters.h), task output
 * files (spool.h), the services beside the core (service.h). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "loop.h"
#include "rpc.h"
#include "schema.h"
#include "scheduler.h"
#include "service.h"
#include "spool.h"
#include "store.h"
#include "vm.h"
#include "waiters.h"

struct control;
struct orchd_llm;
struct orch_profiles;
struct lv_lanes;
struct lvb_state;
struct orch_pools;
struct shell_relay;
struct egress_host;
struct git_mod;
struct waiter;
struct orchd_metrics;
struct orchd_fleet;
struct control_metrics;

struct orchd {
	struct orch_loop *loop;
	struct orchd_config *cfg;
	struct store *store;
	char *supervisor_path;
	bool supervisor_llm;	/* it takes --llm-connect */
	bool supervisor_egress; /* it takes --egress-connect */
	char *spool_dir;
	struct vm **vms;
	size_t n_vms;
	struct control *control;
	struct orchd_llm *llm;		/* NULL: no LLM proxy */
	struct egress_host *egress;	/* NULL: no egress gateway (orchd-egress.c) */
	struct git_mod *git;		/* repository tasks (host/git/orchd-git.c) */
	struct orch_profiles *profiles; /* host/ops/profiles-ops.c */
	struct lv_lanes *lv_lanes;	/* the libvirt backend's vsock listeners, or NULL */
	struct lvb_state *lv_state;	/* the libvirt backend's templates and reaper, or NULL */
	struct orch_pools *pools;	/* the pooled classes (host/pool/), or NULL */
	struct shell_relay *shells;	/* debug shells through orchd (shell-relay.c) */
	struct waiter *waiters;		/* waiters.c's */
	struct orchd_metrics *metrics;	/* orchd-metrics.c */
	struct orchd_fleet *fleet;	/* orchd-fleet.c: NULL unless store_shared */
	struct control_metrics *metrics_srv; /* host/control/control-metrics.c */
	const struct orchd_service *services[ORCHD_MAX_SERVICES]; /* service.c */
	size_t n_services;
	struct orch_rpc_method *vm_methods; /* vm_core_methods + the services' */
	size_t n_vm_methods;
	struct orch_timer *sched_timer;
	struct orch_timer *prune_timer;
	bool sched_pending;
	bool quitting;
	uint64_t started_ms;
	int64_t n_queued; /* cached count of queued tasks for max_queue */
};

/* A store call failed with code: true when the store is away (PostgreSQL restarting,
 * unreachable): the caller keeps what it has and tries again later (orchd-fleet.c). */
bool store_away(struct orchd *d, int code);
