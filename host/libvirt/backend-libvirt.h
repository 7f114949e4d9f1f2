/* SPDX-License-Identifier: Apache-2.0 */
/* The libvirt backend's own parts, shared by its files (not a public interface):
 * backend-libvirt.c (a VM's domain: start, adopt, events, stop), backend-domain.c (the
 * domain configuration of a VM or of a snapshot template) and backend-snapshot.c
 * (templates, and VMs restored from them). */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <libvirt/libvirt.h>

#include "cleanup.h"
#include "domain-xml.h"
#include "error.h"
#include "image.h"
#include "loop.h"
#include "schema.h"

struct vm;
struct orchd;
struct lv_restore;
struct lv_template;
struct orchd_vm_config;
struct orch_vm_thaw;

/* What a vsock lane's owner is (lanes.h hands it back as void *): the first member of
 * struct lvb and of a template. */
enum lvb_owner { LVB_OWNER_VM = 1, LVB_OWNER_TEMPLATE };

struct lvb {
	enum lvb_owner owner; /* LVB_OWNER_VM */
	struct vm *vm;
	virConnectPtr conn;
	int ev_id;
	virDomainPtr dom;
	bool stopping; /* a stop we asked for: its lifecycle event is not a failure */
	struct orch_timer *boot_timer;
	uint64_t start_ms; /* when lvb_start began (vm.c's hello timer runs from about then) */
	char domain[80];
	char uuid[VIR_UUID_STRING_BUFLEN]; /* of l->dom */
	char dir[PATH_MAX];
	char console[PATH_MAX + 32];
	char sock[PATH_MAX + 32];
	char llm_sock[PATH_MAX + 32]; /* virtio-serial: the LLM channel's port */
	bool llm; /* the guest has an LLM channel of its own (orchd has an LLM proxy) */
	char egress_sock[PATH_MAX + 32]; /* virtio-serial: the egress lane's port */
	bool egress; /* the guest was booted with an egress lane (orchd has egress) */
	enum lv_accel accel;
	enum lv_transport transport;
	uint32_t cid;	   /* vsock */
	bool registered;   /* vsock: connections from cid come to this VM (lanes.h) */
	bool restored;	   /* from a snapshot: vm.thaw after its hello (backend-snapshot.c) */
	bool agents_share; /* the agents share is attached */
	struct lv_restore *starting; /* a child restores or starts its domain (reaper.h) */
	struct lv_template *from;    /* the template it is restored from */
	struct lvb_memory *mem;	     /* memory hot-plug (backend-memory.c); NULL: none yet */
};

/* The inputs of a domain's configuration. */
struct lvb_domain_in {
	struct orchd *d;
	const struct orchd_vm_config *c; /* the VM's (or, for a template, its class's) */
	const char *name;		 /* the VM's: domain orch-<name>, <state_dir>/vm/<name> */
	const struct lv_image *im;
	enum lv_accel accel;
	enum lv_transport transport;
	uint32_t cid;
	bool llm, egress;
	bool template; /* a snapshot template: no shares, orch.snapshot=1 */
	bool dry;      /* the configuration only: no directory made, no socket removed */
};

/* A domain's configuration as the backend boots it, with the strings it points to. Made
 * for a VM it also makes the workspace's directories private (workspace-dirs.h), the
 * agents directory and the state directory, and removes the sockets of an earlier boot. */
struct lvb_domain {
	struct lv_domain_config dc;
	char domain[80];
	char dir[PATH_MAX], console[PATH_MAX + 32], sock[PATH_MAX + 32];
	char llm_sock[PATH_MAX + 32], egress_sock[PATH_MAX + 32];
	char *virtiofsd;    /* orch-virtiofsd, for the workspace share */
	char *ro_virtiofsd; /* orch-virtiofsd-ro, for the agents share (NULL: none) */
	bool agents_share;
	char *cmdline;
	struct lv_port ports[3 + ORCH_MAX_SLOTS];
	char shell_names[ORCH_MAX_SLOTS][32]; /* the debug shells' ports */
	char shell_paths[ORCH_MAX_SLOTS][PATH_MAX + 48];
};
int lvb_domain_new(const struct lvb_domain_in *in, struct lvb_domain **ret, struct orch_error *err);
void lvb_domain_free(struct lvb_domain *dom);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct lvb_domain *, lvb_domain_free)

/* backend-libvirt.c */
int lvb_find_image(struct orchd *d, struct lv_image *ret, struct orch_error *err);
int lvb_make_chan_dir(const char *dir, struct orch_error *err);
/* A VM's domain runs: the boot timer, and its channel (dialled, or vsock's lanes). */
int lvb_connect_channel(struct lvb *l, struct orch_error *err);
int lvb_lanes_open(struct orchd *d, struct orch_error *err);

/* backend-memory.c: memory hot-plug (a class with boot_memory_mib). A plug's progress is
 * polled every LVB_PLUG_POLL_MS for at most LVB_PLUG_WAIT_MS; an idle VM is looked at every
 * LVB_IDLE_POLL_MS and its memory unplugged after its class's unplug_idle_ms without a
 * task (and the unplug followed for LVB_UNPLUG_POLLS looks). */
#define LVB_PLUG_POLL_MS 100
#define LVB_PLUG_WAIT_MS 20000
#define LVB_IDLE_POLL_MS 5000
#define LVB_UNPLUG_POLLS 12
struct lvb_memory;
/* backend.h's task_leased. */
int lvb_task_leased(struct vm *vm, int64_t slot, int64_t task, int64_t attempt);
/* The domain went: the plug's state with it (tasks waiting for it are the core's to
 * settle, as the VM's). */
void lvb_memory_free(struct lvb *l);
/* For `orch status`: boot and hot-plug sizes, what is plugged and asked for. */
void lvb_memory_describe(const struct lvb *l, json_t *obj);
/* backend-snapshot.c */
/* A VM of a class with a snapshot: 1 when it is being restored from the class's template
 * (by a child, reaper.h; then its shares attached, its channel connected, resumed: vm.thaw
 * follows its hello; a restore that fails makes the VM gone), 0 when it must boot (the
 * template is being made, or failed), < 0 on failure. */
int lvb_snapshot_start(struct lvb *l, const struct lv_image *im, struct orch_error *err);
/* The domain a child restored or started for l (by its name, with the UUID it was given)
 * taken as l->dom; false, l->dom NULL, when it is not there or another domain holds the
 * name (which is then not orch's to stop). */
bool lvb_take_domain(struct lvb *l);
/* A VM's restore or start given up (its stop): the child destroys what it restored or
 * started. */
void lvb_start_cancel(struct lvb *l);
/* backend.h's thaw. */
int lvb_thaw(struct vm *vm, bool frozen, struct orch_vm_thaw *ret, struct orch_error *err);
/* A template's vsock lane connection (lanes.h's owner is the template). */
int lvb_template_lane_conn(void *owner, int lane, int fd, struct orch_error *err);
/* The backend's state beside its VMs (made on first use): the snapshot templates, the
 * reaper (reaper.h). */
struct lv_template;
struct lv_reaper;
struct lvb_state {
	struct lv_template **t;
	size_t n;
	struct lv_reaper *reaper; /* NULL: domains are destroyed in line */
};
struct lvb_state *lvb_state(struct orchd *d);
/* orchd stops: templates being made are given up, the reaper's children left to finish. */
void lvb_state_free(struct orchd *d);
