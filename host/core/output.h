/* SPDX-License-Identifier: Apache-2.0 */
/* task.output from the guest, coalesced into the spool and the store: the output half of
 * a slot (slot.h), vm.c's private split. */
#pragma once

#include <stddef.h>

struct vm;
struct slot;

/* Takes len bytes of stream (1 stdout, 2 stderr) for the slot's task. */
void output_take(struct vm *vm, struct slot *s, int stream, const void *data, size_t len);
/* Writes what a slot holds now (before its task's state changes). */
void output_flush(struct vm *vm, struct slot *s);
/* Frees the slot's buffer (the slot is cleared). */
void output_release(struct slot *s);
