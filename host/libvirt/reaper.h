/* SPDX-License-Identifier: Apache-2.0 */
/* Children for libvirt's calls that block for long (reaper.c). Destroying a domain
 * without blocking orchd's loop (virDomainDestroy waits for QEMU to
 * go, a second or two under load): a child, orchd's own binary run again in a hidden mode,
 * connects to libvirt and destroys the domain by its UUID; orchd reaps the child through
 * a pidfd on its loop. libvirt's API cannot be called from another thread of orchd: its
 * event callbacks run on orchd's single-threaded loop. Used for pooled VMs, whose names
 * never come back (a restarting VM needs its name free at once). */
#pragma once

#include <stdbool.h>

#include "error.h"
#include "loop.h"

#define LV_REAP_ARG "--libvirt-destroy-domain"
#define LV_RESTORE_ARG "--libvirt-restore-domain"
#define LV_CREATE_ARG "--libvirt-create-domain"
#define LV_SAVE_ARG "--libvirt-save-domain"

struct lv_reaper;

int lv_reaper_new(struct orch_loop *loop, struct lv_reaper **ret);
/* Stops watching the children (they finish on their own). */
void lv_reaper_free(struct lv_reaper *r);
/* Destroys the domain with this UUID in a child; -errno when none could be started (the
 * caller destroys it itself). */
int lv_reaper_destroy(struct lv_reaper *r, const char *uuid, struct orch_error *err);
/* For main(): runs a hidden mode (and exits) when argv asks for it, else returns. */
void lv_reaper_main(int argc, char **argv);

/* Restoring a VM from a snapshot without blocking orchd's loop: virDomainRestoreFlags
 * waits until QEMU has loaded the whole image (most of a second under TCG), and the
 * shares' hot-plug until each virtiofsd runs. A child (the same hidden mode) writes the
 * clone's XML into the save image under an exclusive flock(2) of it (two restores of one
 * template take turns: libvirt reads the XML from the image), restores it paused under
 * that name, hot-plugs the shares and exits; done then runs on orchd's loop: 0, or
 * -errno and what the child said. The caller looks the domain up, connects its channel
 * and resumes it. A child that finds orchd gone or the restore cancelled when it has
 * restored the domain destroys it. */
struct lv_restore_in {
	const char *save;      /* the template's save image */
	const char *xml;       /* the clone's XML (lv_clone_xml) */
	const char *name;      /* the clone's domain name */
	const char *uuid;      /* and UUID (in xml) */
	const char *fs_xml[2]; /* the shares to hot-plug (lv_filesystem_xml) */
	size_t n_fs;
};
struct lv_restore;
/* r: 0, or -errno and in error what the child said (a save's child also says what it did on
 * success, in error then). */
typedef void (*lv_restore_done_fn)(int r, const char *error, void *data);
int lv_reaper_restore(struct lv_reaper *r, const struct lv_restore_in *in, lv_restore_done_fn done,
		      void *data, struct lv_restore **ret, struct orch_error *err);
/* A cold boot without blocking orchd's loop: virDomainCreateXML returns only once libvirt
 * has set the domain up and QEMU runs (~0.4 s here, more under load). The same kind of
 * child, and the same job (struct lv_restore): in->xml (which names in->uuid) is created
 * and started under in->name, a running domain of that name being an error; in->save and
 * in->fs_xml are not used (the XML holds the shares). done, cancel and the destroy of what
 * a given-up child started are as for a restore. */
int lv_reaper_create(struct lv_reaper *r, const struct lv_restore_in *in, lv_restore_done_fn done,
		     void *data, struct lv_restore **ret, struct orch_error *err);
/* A snapshot template's save without blocking orchd's loop: virDomainSaveFlags waits until
 * QEMU has written the guest's memory, and the image's rewrite without zero pages
 * (save-stream.h) reads and writes all of it again. The same kind of child and job:
 * lv_snapshot_save of the domain with this UUID to path; done gets, on success, what the
 * child said: LV_SAVE_SAID_DROPPED "N". Given up, the save runs on (the caller forgets the
 * files). */
#define LV_SAVE_SAID_DROPPED "zero_pages_left_out="
struct lv_save_in {
	const char *uuid, *path;
	bool drop_zero;
};
int lv_reaper_save(struct lv_reaper *r, const struct lv_save_in *in, lv_restore_done_fn done,
		   void *data, struct lv_restore **ret, struct orch_error *err);
/* *ret is set to NULL when the job goes (done, or the reaper freed: its child then destroys
 * what it restores). Gives a restore up: done is not called; its domain, once restored,
 * is destroyed. */
void lv_restore_cancel(struct lv_restore *job);
