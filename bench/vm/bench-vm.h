/* SPDX-License-Identifier: Apache-2.0 */
/* What the VM benchmarks share: their command line (vm-boot-bench, vm-density,
 * vm-restore-bench); guests of the real image booted through libvirt with orch's domain
 * XML, each in a directory of its own below the work directory, their control channel
 * answered by host/libvirt/peer.h; cold boots, snapshot templates and restores
 * (host/libvirt/snapshot.h); host memory figures from /proc (vm-density,
 * vm-restore-bench). Not orchd: no store, no scheduler, so the figures are the VM's own. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libvirt/libvirt.h>

#include "domain-xml.h"
#include "loop.h"
#include "peer.h"

/* The command line: a benchmark lists its options in the order of its usage line
 * ("usage: PROG --image DIR --work DIR [--runs 1..50] ..."). Those the benchmarks share
 * fill a struct bv_args (BV_OPT_*); a benchmark's own options point at its variables. A
 * number is read as atoi (int, unsigned) or strtoull (uint64_t) reads it and checked
 * against its range once every option is read. */
struct bv_args {
	const char *image, *work; /* required */
	const char *accel;	  /* "auto", "kvm" or "tcg" (bv_init) */
	const char *append;	  /* more kernel parameters, or NULL */
	int runs;
	uint64_t memory_mib;
};
#define BV_ARGS_DEFAULTS ((struct bv_args){.accel = "auto", .runs = 5, .memory_mib = 512})

enum bv_opt_type { BV_OPT_STR, BV_OPT_INT, BV_OPT_UINT, BV_OPT_U64 };

struct bv_opt {
	const char *name; /* --name, which takes an argument */
	const char *arg;  /* the argument in the usage line; NULL: the range, "MIN..MAX" */
	enum bv_opt_type type;
	void *value; /* const char **, int *, unsigned * or uint64_t *: holds the default */
	bool required;
	uint64_t min, max; /* a number's range; max 0: no upper bound */
};

#define BV_OPT_IMAGE(a) ((struct bv_opt){"image", "DIR", BV_OPT_STR, &(a)->image, true, 0, 0})
#define BV_OPT_WORK(a) ((struct bv_opt){"work", "DIR", BV_OPT_STR, &(a)->work, true, 0, 0})
#define BV_OPT_RUNS(a, max_runs) \
	((struct bv_opt){"runs", NULL, BV_OPT_INT, &(a)->runs, false, 1, (max_runs)})
#define BV_OPT_ACCEL(a) \
	((struct bv_opt){"accel", "auto|kvm|tcg", BV_OPT_STR, &(a)->accel, false, 0, 0})
#define BV_OPT_MEMORY(a, arg, min_mib) \
	((struct bv_opt){"memory", (arg), BV_OPT_U64, &(a)->memory_mib, false, (min_mib), 0})
#define BV_OPT_APPEND(a) \
	((struct bv_opt){"append", "PARAMS", BV_OPT_STR, &(a)->append, false, 0, 0})
#define BV_OPTS_MAX 16

/* Reads argv's options (opts, n <= BV_OPTS_MAX of them) into their values. -EINVAL when
 * one is unknown or lacks its argument (getopt's message says which), or when a required
 * one is missing or a number is out of its range (the usage line, on stderr). --help
 * prints the usage line on stdout and exits 0. */
int bv_parse_args(const char *prog, const struct bv_opt *opts, size_t n, int argc, char **argv);

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
	/* Memory hot-plug for the guests booted with a balloon (lv_domain_config's
	 * boot_memory_mib; 0: none): they boot with this much, the rest unplugged. */
	uint64_t boot_memory_mib;
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
/* Memory hot-plug: asks v's virtio-mem device for mib MiB and waits (at most
 * timeout_ms) until the guest holds that much; *ret_ms: the request to that. */
int bv_plug(struct bv *b, struct bv_vm *v, uint64_t mib, uint64_t timeout_ms, uint64_t *ret_ms);
/* The MiB of RAM v has now: its boot memory and what is plugged. */
uint64_t bv_ram_mib(const struct bv *b, const struct bv_vm *v);
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
