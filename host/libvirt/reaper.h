/* SPDX-License-Identifier: Apache-2.0 */
/* Destroying a domain without blocking orchd's loop (virDomainDestroy waits for QEMU to
 * go, a second or two under load): a child, orchd's own binary run again in a hidden mode,
 * connects to libvirt and destroys the domain by its UUID; orchd reaps the child through
 * a pidfd on its loop. libvirt's API cannot be called from another thread of orchd: its
 * event callbacks run on orchd's single-threaded loop. Used for pooled VMs, whose names
 * never come back (a restarting VM needs its name free at once). */
#pragma once

#include "error.h"
#include "loop.h"

#define LV_REAP_ARG "--libvirt-destroy-domain"

struct lv_reaper;

int lv_reaper_new(struct orch_loop *loop, struct lv_reaper **ret);
/* Stops watching the children (they finish on their own). */
void lv_reaper_free(struct lv_reaper *r);
/* Destroys the domain with this UUID in a child; -errno when none could be started (the
 * caller destroys it itself). */
int lv_reaper_destroy(struct lv_reaper *r, const char *uuid, struct orch_error *err);
/* For main(): runs the hidden mode (and exits) when argv asks for it, else returns. */
void lv_reaper_main(int argc, char **argv);
