/* SPDX-License-Identifier: Apache-2.0 */
/* What the VM benchmarks share (vm-density, vm-restore-bench): guests of the real image
 * booted through libvirt with orch's domain XML, each in a directory of its own below the
 * work directory, their control channel answered by host/libvirt/peer.h; cold boots,
 * snapshot templates and restores (host/libvirt/snapshot.h); host memory figures from
 * /proc. Not orchd: no store, no scheduler, so the figures are the VM's own. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <libvirt/libvirt.h>

#include "domain-xml.h"
#include "loop.h"
#include "peer.h"

struct bv {
	struct orch_loop *loop;
	virConnectPtr conn;
	int ev_id;
	enum lv_accel accel;
	char image[PATH_MAX], work[PATH_MAX];
	char kernel[PATH_MAX + 16], initrd[PATH_MAX + 16], rootfs[PATH_MAX + 16];
	uint64_t memory_mib;
	unsigned vcpus;
	const char *append; /* more kernel parameters after orch's own, or NULL */
	unsigned stopped;   /* lifecycle "stopped" events seen */
	bool thaw_warm;	    /* bv_restore's vm.thaw asks for the warm-up jail (guest/warm.h) */
};

struct bv_vm {
	char name[64];
	char dir[PATH_MAX], ws[PATH_MAX + 16], chan[PATH_MAX + 16], sock[PATH_MAX + 32],
		console[PATH_MAX + 32];
	virDomainPtr dom;
	struct lv_peer *peer;
	uint64_t start_ms;
};

/* Chooses the accelerator (accel: "auto", "kvm", "tcg"), connects to libvirt. */
int bv_init(struct bv *b, const char *image, const char *work, const char *accel,
	    uint64_t memory_mib, unsigned vcpus);
void bv_done(struct bv *b);

/* Cold boot to the supervisor's hello, with the workspace share (balloon: free page
 * reporting on, else no balloon device). *ret_ms: create to hello. */
int bv_boot(struct bv *b, struct bv_vm *v, const char *name, bool balloon, uint64_t *ret_ms);
/* The same in two steps, so that several guests boot at once. */
int bv_boot_start(struct bv *b, struct bv_vm *v, const char *name, bool balloon);
int bv_boot_wait(struct bv *b, struct bv_vm *v, uint64_t *ret_ms);
/* A snapshot template: booted without shares, frozen after hello, saved to save_path;
 * *ret_xml is its XML, its directory tmpl->dir. */
int bv_template(struct bv *b, struct bv_vm *tmpl, const char *name, const char *save_path,
		char **ret_xml);
/* The same in two steps: booted to hello, then frozen and saved. */
int bv_template_boot(struct bv *b, struct bv_vm *tmpl, const char *name);
int bv_template_save(struct bv *b, struct bv_vm *tmpl, const char *save_path, bool paused_first,
		     char **ret_xml);
/* A VM restored from the template: restore paused, the workspace share hot-plugged,
 * resume, hello, vm.thaw (with "warm" when b->thaw_warm). *ret_ms: restore call to the
 * thaw's answer. */
int bv_restore(struct bv *b, const char *save_path, const char *tmpl_xml, const char *tmpl_dir,
	       struct bv_vm *v, const char *name, uint64_t *ret_ms);
/* Destroys the domain and drops its channel (waits for the stopped event). */
void bv_destroy(struct bv *b, struct bv_vm *v);

/* Runs `sh -c script` on agent 0 and waits for its exit (timeout_ms). */
struct lv_peer_task *bv_run(struct bv *b, struct bv_vm *v, const char *script, uint64_t timeout_ms);

/* Host memory of one VM, KiB. */
struct bv_mem {
	uint64_t qemu_rss, qemu_pss;
	uint64_t guest_ram_rss;	 /* QEMU's mapping of the guest's memory (memfd) */
	uint64_t guest_ram_held; /* the memfd's own pages, mapped or not (its st_blocks) */
	uint64_t virtiofsd_rss, virtiofsd_pss; /* every virtiofsd of the VM's shares */
};
int bv_mem(const struct bv_vm *v, struct bv_mem *ret);

/* Sorting and reporting. */
uint64_t bv_p50(uint64_t *v, int n);
void bv_report(const char *what, uint64_t *v, int n);
