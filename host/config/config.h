/* SPDX-License-Identifier: Apache-2.0 */
/* orchd's configuration file (docs/CONFIG.md): strict parsing and validation into a
 * plain struct. Every error names the key path ("vms.dev.memory_mib: expected ..."). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "llm-config.h"
#include "task-limits.h"

struct egress_config;
struct git_config;
struct store_config;
struct metrics_config;

#define ORCHD_DEFAULT_STATE_DIR "/var/lib/orch"
#define ORCHD_DEFAULT_SOCKET "/run/orch/orch.sock"
#define ORCHD_NAME_MAX 32
/* Where `orch agents install` puts the agent CLIs (host/agents.h); jails and VMs see it at
 * the same path. */
#define ORCHD_DEFAULT_AGENTS_DIR "/opt/orch/agents"
#define ORCHD_MAX_IMAGE_PACKAGES 256
/* vms.<name>.pool.keep_workspaces: a vm-per-task class's retired workspaces kept. */
#define ORCHD_POOL_KEEP_WORKSPACES_DEFAULT 16

enum orchd_backend_kind {
	ORCHD_BACKEND_LOCAL = 0,
	ORCHD_BACKEND_LIBVIRT,
};

enum orchd_transport {
	ORCHD_TRANSPORT_AUTO = 0,
	ORCHD_TRANSPORT_VSOCK,
	ORCHD_TRANSPORT_VIRTIO_SERIAL,
};

enum orchd_accel {
	ORCHD_ACCEL_AUTO = 0,
	ORCHD_ACCEL_KVM,
	ORCHD_ACCEL_TCG,
};

/* How a VM class's tasks share VMs (docs/VM.md, "Pools"). */
enum orchd_isolation {
	ORCHD_ISOLATION_SHARED = 0,  /* tasks share the class's long-lived VMs */
	ORCHD_ISOLATION_VM_PER_TASK, /* each task a VM no earlier task touched, destroyed after */
};
/* A pooled class's VMs are named <class>.<n> (n counting up, never reused). */
#define ORCHD_VM_NAME_MAX (ORCHD_NAME_MAX + 11)

/* 0 = unset/unlimited in every field. */

struct orchd_vm_config {
	char *name;
	enum orchd_backend_kind backend;
	int64_t slots;
	char *workspace; /* resolved: <workspace_root>/<name> when not set */
	bool autostart;
	struct orchd_limits limits;
	char **profiles; /* NULL-terminated */
	size_t n_profiles;
	int64_t vcpus;
	int64_t memory_mib;
	/* Memory hot-plug (libvirt; docs/VM.md "Memory hot-plug"): 0, none; else the guest
	 * boots with this much and the rest of memory_mib is plugged while it runs tasks. */
	int64_t boot_memory_mib;
	int64_t unplug_idle_ms; /* and unplugged again after this long without a task */
	enum orchd_transport transport;
	enum orchd_accel accel;
	char *kernel;  /* NULL: image default */
	char *initrd;  /* NULL: image default */
	char *cmdline; /* NULL: image default */
	int64_t boot_timeout_ms;
	/* Its own uids: agent N is uid_base + N, the supervisor's helpers (privilege
	 * separation) use up to uid_base + ORCHD_VM_UIDS - 1. Set, or derived from the top
	 * level's (uid_base + ORCHD_VM_UIDS * the VM's place in the config). */
	int64_t uid_base;
	char **egress; /* egress sets its tasks may use (NULL-terminated; NULL: none) */
	size_t n_egress;
	/* Pools (config-pool.c; host/pool/): a pooled class's VMs are made and retired by
	 * its pool, each with a workspace of its own below the class's workspace. */
	enum orchd_isolation isolation;
	bool pooled;	    /* "pool" given, or vm-per-task */
	int64_t pool_ready; /* shared: the class's VMs; vm-per-task: VMs kept booted and idle */
	int64_t pool_max;   /* vm-per-task: the most VMs of the class at once */
	int64_t pool_keep_workspaces; /* vm-per-task: retired VMs' workspaces kept (newest) */
	bool snapshot; /* start its VMs from a snapshot taken after hello (libvirt) */
};
#define ORCHD_VM_UIDS 256
#define ORCHD_UNPLUG_IDLE_MS_DEFAULT 30000

struct orchd_profile_config {
	char *name;
	char *description;
	char **command; /* NULL-terminated */
	size_t n_command;
	char **env; /* "K=V", NULL-terminated */
	size_t n_env;
	char **ro_paths; /* absolute, normalised; NULL-terminated (NULL: none) */
	size_t n_ro_paths;
	char *agent; /* an installed agent (<agents_dir>/<agent>/current), NULL: none */
	struct orchd_limits limits;
	char **egress; /* egress sets its tasks may use; NULL (key absent): any the VM allows */
	size_t n_egress;
	char *repo; /* the repository its tasks work on unless they name one (NULL: none) */
	char *ref;  /* and the ref (NULL: the repository's default branch) */
};

struct orchd_scheduler_config {
	int64_t retries;
	int64_t heartbeat_ms;
	int64_t heartbeat_misses;
	int64_t max_queue;
	int64_t lease_timeout_ms;
	int64_t max_clients;
	int64_t keep_finished;
	int64_t max_output_mib;
};

/* The reserved host ports the guests of the libvirt backend dial with vsock. */
struct orchd_vsock_config {
	int64_t control_port;
	int64_t llm_port;
	int64_t egress_port;
};

struct orchd_config {
	char *state_dir;
	char *socket;
	char *group; /* NULL: root only */
	char *log_level;
	enum orchd_backend_kind backend;
	char *supervisor; /* NULL: search */
	char *workspace_root;
	char *agents_dir;      /* installed agent CLIs (default ORCHD_DEFAULT_AGENTS_DIR) */
	char **image_packages; /* image.packages: extra Debian packages of the guest image */
	size_t n_image_packages;
	int64_t uid_base;
	struct orchd_scheduler_config scheduler;
	struct orchd_vsock_config vsock;
	struct orchd_limits limits;
	struct orchd_vm_config *vms;
	size_t n_vms;
	struct orchd_profile_config *profiles;
	size_t n_profiles;
	struct llm_config llm;	      /* the LLM proxy's (host/llm/llm-config.h); keys not loaded */
	struct egress_config *egress; /* host/egress/egress-config.h; NULL: no egress */
	struct git_config *git;	      /* host/config/config-git.h; always set */
	struct store_config *store;   /* host/store/store-config.h; always set */
	struct metrics_config *metrics; /* host/metrics/metrics-config.h; always set */
};

/* Parses a JSON text (len bytes). state_dir_override (may be NULL) replaces state_dir
 * before derived defaults (workspace_root) are computed. */
int orchd_config_parse(const char *text, size_t len, const char *state_dir_override,
		       struct orchd_config **ret, struct orch_error *err);
/* Reads and parses a file; path NULL gives the defaults. Errors are prefixed "FILE: ". */
int orchd_config_load(const char *path, const char *state_dir_override, struct orchd_config **ret,
		      struct orch_error *err);
void orchd_config_free(struct orchd_config *c);

const struct orchd_vm_config *orchd_config_vm(const struct orchd_config *c, const char *name);
/* config-pool.c: vms.<name>.isolation, .pool and .snapshot (o may be NULL). */
int orchd_config_vm_pool(json_t *o, const char *path, struct orchd_vm_config *vm,
			 struct orch_error *err);
const char *orchd_isolation_name(enum orchd_isolation i);
const struct orchd_profile_config *orchd_config_profile(const struct orchd_config *c,
							const char *name);
const char *orchd_backend_name(enum orchd_backend_kind k);
bool orchd_name_valid(const char *s);
/* The "llm" section (NULL: defaults) into the proxy's configuration (config-llm.c). */
int orchd_config_llm_parse(json_t *llm, struct llm_config *ret, struct orch_error *err);
