/* SPDX-License-Identifier: Apache-2.0 */
/* Task output from a guest on its way to the spool and the store.
 *
 * A guest decides how many task.output messages it sends and how small they are, so one
 * message is never one store row: each slot keeps what arrived in a buffer of its own
 * (consecutive chunks of a stream merged) and writes it to the spool and the index every
 * OUTPUT_FLUSH_MS, or sooner when the buffer or its segment list is full, and always
 * before the task's state changes. The cost of a chunk on orchd's loop is a copy; a
 * million one-byte chunks become a few hundred rows.
 *
 * A task whose index holds OUTPUT_COARSE_ROWS rows is "coarse": it is flushed every
 * OUTPUT_COARSE_MS and each flush writes one row per stream (its stdout bytes, then its
 * stderr bytes), so a long, chatty task or a guest that alternates streams byte by byte
 * adds two rows a second at most. The interleaving of stdout and stderr within one such
 * window is not kept; each stream's own order always is. Past OUTPUT_MAX_ROWS rows, or
 * max_output_mib bytes, the rest of a task's output is dropped (logged once). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "orchd.h"
#include "output.h"
#include "slot.h"

/* Every task reaches the same bound, so it is stated once: docs/CONFIG.md (max_output_mib). */
#define OUTPUT_FLUSH_MS 20
#define OUTPUT_COARSE_MS 1000
#define OUTPUT_COARSE_ROWS 4096
#define OUTPUT_MAX_ROWS (256 * 1024)

static void output_compact(struct slot *s);

static bool coarse(const struct slot *s)
{
	return s->next_store_seq >= OUTPUT_COARSE_ROWS;
}

static int64_t max_bytes(const struct vm *vm)
{
	return vm->d->cfg->scheduler.max_output_mib * 1024 * 1024;
}

static void capped(struct slot *s, const char *why)
{
	if (!s->output_capped)
		orch_log(ORCH_LOG_WARN, "vm", why, "task", s->wire_id, NULL);
	s->output_capped = true;
}

/* Writes the pending bytes to the spool (in the order given by idx) and indexes them. */
static int write_out(struct vm *vm, struct slot *s, const unsigned *idx, size_t n_idx,
		     struct output_seg *rows, size_t n_rows, struct orch_error *err)
{
	struct output_pending *p = &s->out;
	struct iovec iov[OUTPUT_MAX_SEGS];
	size_t off[OUTPUT_MAX_SEGS], total = 0, done = 0;
	int64_t at = s->spool_off;
	int r;

	if (s->spool_fd < 0)
		return orch_err(err, -EBADF, "no spool open for task %s", s->wire_id);
	for (unsigned i = 0, o = 0; i < p->n_segs; i++) {
		off[i] = o;
		o += p->segs[i].len;
	}
	for (size_t i = 0; i < n_idx; i++) {
		iov[i].iov_base = p->buf + off[idx[i]];
		iov[i].iov_len = p->segs[idx[i]].len;
		total += iov[i].iov_len;
	}
	/* The bytes reach the file before the index names them (spool.c's invariant). */
	for (size_t i = 0; i < n_idx;) {
		ssize_t w = writev(s->spool_fd, iov + i, (int)(n_idx - i));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = orch_errno(err, -errno, "cannot write spool of task %s", s->wire_id);
			s->spool_off += (int64_t)done;
			return r;
		}
		done += (size_t)w;
		while (i < n_idx && (size_t)w >= iov[i].iov_len) {
			w -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < n_idx) {
			iov[i].iov_base = (char *)iov[i].iov_base + w;
			iov[i].iov_len -= (size_t)w;
		}
	}
	s->spool_off += (int64_t)total;
	r = store_output_add_rows(vm->d->store, s->task, s->attempt, s->next_store_seq, at, rows,
				  n_rows, err);
	if (r < 0)
		return r;
	s->next_store_seq += (int64_t)n_rows;
	return 0;
}

void output_flush(struct vm *vm, struct slot *s)
{
	struct output_pending *p = &s->out;
	struct output_seg rows[OUTPUT_MAX_SEGS];
	unsigned idx[OUTPUT_MAX_SEGS];
	struct orch_error err = {0};
	size_t n_idx = 0, n_rows = 0;
	int r;

	if (p->n_segs == 0)
		return;
	if (coarse(s)) {
		/* One row per stream: stdout's segments, then stderr's, each in order. */
		for (int stream = ORCH_STREAM_STDOUT; stream <= ORCH_STREAM_STDERR; stream++) {
			int64_t len = 0;
			for (unsigned i = 0; i < p->n_segs; i++)
				if (p->segs[i].stream == stream) {
					idx[n_idx++] = i;
					len += p->segs[i].len;
				}
			if (len)
				rows[n_rows++] = (struct output_seg){stream, len};
		}
	} else {
		for (unsigned i = 0; i < p->n_segs; i++) {
			idx[n_idx++] = i;
			rows[n_rows++] = p->segs[i];
		}
	}
	if (s->next_store_seq + (int64_t)n_rows > OUTPUT_MAX_ROWS) {
		capped(s, "task output over its index bound: dropping the rest");
		r = 0;
	} else {
		r = write_out(vm, s, idx, n_idx, rows, n_rows, &err);
	}
	p->len = 0;
	p->n_segs = 0;
	if (r < 0) {
		orch_log(ORCH_LOG_ERROR, "spool", "cannot spool output", "task", s->wire_id,
			 "error", err.msg, NULL);
		return;
	}
	waiters_output(vm->d, s->task);
}

static void on_flush_timer(struct orch_loop *loop, struct orch_timer *t, void *data)
{
	struct vm *vm = data;
	uint64_t now = orch_now_ms(), next = 0;

	vm->out_due = 0;
	for (int64_t i = 0; i < vm->n_slots; i++) {
		struct slot *s = &vm->slots[i];
		uint64_t due;
		if (!s->task || s->out.n_segs == 0)
			continue;
		due = s->out.since + (coarse(s) ? OUTPUT_COARSE_MS : OUTPUT_FLUSH_MS);
		if (due <= now) {
			output_flush(vm, s);
			continue;
		}
		if (!next || due < next)
			next = due;
	}
	if (next) {
		vm->out_due = next;
		orch_timer_rearm(t, next - now);
	}
}

/* The first bytes of a new batch: the VM's flush timer fires by this slot's deadline. */
static void arm(struct vm *vm, struct slot *s)
{
	uint64_t now = orch_now_ms();
	uint64_t due = now + (coarse(s) ? OUTPUT_COARSE_MS : OUTPUT_FLUSH_MS);

	s->out.since = now;
	if (vm->out_due && vm->out_due <= due)
		return;
	if (!vm->out_timer) {
		if (orch_timer_add(vm->d->loop, due - now, 0, on_flush_timer, vm, &vm->out_timer) <
		    0) {
			output_flush(vm, s); /* no timer: no delay either */
			return;
		}
	} else {
		orch_timer_rearm(vm->out_timer, due - now);
	}
	vm->out_due = due;
}

void output_take(struct vm *vm, struct slot *s, int stream, const void *data, size_t len)
{
	struct output_pending *p = &s->out;
	struct output_seg *last;

	if (s->output_capped || len == 0)
		return;
	if (s->spool_off + (int64_t)p->len + (int64_t)len > max_bytes(vm)) {
		output_flush(vm, s);
		capped(s, "task output over max_output_mib: dropping the rest");
		return;
	}
	if (!p->buf && !(p->buf = malloc(OUTPUT_BUF_MAX))) {
		capped(s, "out of memory for task output: dropping the rest");
		return;
	}
	last = p->n_segs ? &p->segs[p->n_segs - 1] : NULL;
	if (p->n_segs == OUTPUT_MAX_SEGS && last->stream != stream && coarse(s)) {
		/* Only the segment list is full: keep collecting, each stream in order. */
		output_compact(s);
		last = &p->segs[p->n_segs - 1];
	}
	if (p->len + len > OUTPUT_BUF_MAX ||
	    (p->n_segs == OUTPUT_MAX_SEGS && last->stream != stream)) {
		output_flush(vm, s);
		if (s->output_capped)
			return;
		last = NULL;
	}
	memcpy(p->buf + p->len, data, len);
	p->len += len;
	if (last && last->stream == stream) {
		last->len += (int64_t)len;
	} else {
		p->segs[p->n_segs++] = (struct output_seg){stream, (int64_t)len};
		if (p->n_segs == 1)
			arm(vm, s);
	}
}

/* Coarse tasks: the pending segments become one per stream (stdout, then stderr). */
static void output_compact(struct slot *s)
{
	struct output_pending *p = &s->out;
	unsigned char *tmp;
	int64_t lens[2] = {0, 0};
	size_t o = 0;

	if (p->n_segs <= 2)
		return;
	tmp = malloc(p->len ? p->len : 1);
	if (!tmp)
		return;
	for (int stream = ORCH_STREAM_STDOUT; stream <= ORCH_STREAM_STDERR; stream++) {
		size_t at = 0;
		for (unsigned i = 0; i < p->n_segs; i++) {
			size_t n = (size_t)p->segs[i].len;
			if (p->segs[i].stream == stream) {
				memcpy(tmp + o, p->buf + at, n);
				o += n;
				lens[stream - ORCH_STREAM_STDOUT] += (int64_t)n;
			}
			at += n;
		}
	}
	memcpy(p->buf, tmp, p->len);
	free(tmp);
	p->n_segs = 0;
	for (int i = 0; i < 2; i++)
		if (lens[i])
			p->segs[p->n_segs++] = (struct output_seg){ORCH_STREAM_STDOUT + i, lens[i]};
}

void output_release(struct slot *s)
{
	free(s->out.buf);
	s->out = (struct output_pending){0};
}
