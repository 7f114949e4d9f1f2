/* SPDX-License-Identifier: Apache-2.0 */
/* A save image's stream without pc.ram's zero pages (save-stream.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "save-image.h"
#include "save-stream.h"

/* QEMU 7.2, migration/savevm.c and migration/ram.c */
#define VM_SECTION_START 0x01
#define VM_SECTION_PART 0x02
#define VM_SECTION_END 0x03
#define VM_SUBSECTION 0x05
#define VM_CONFIGURATION 0x07
#define VM_SECTION_FOOTER 0x7e
#define RAM_ZERO 0x02
#define RAM_MEM_SIZE 0x04
#define RAM_PAGE 0x08
#define RAM_EOS 0x10
#define RAM_CONTINUE 0x20
#define RAM_FLAGS_MASK 0xfffull /* x86: 4 KiB target pages */
#define PAGE_SIZE_X86 4096
#define MAX_BLOCKS 64

struct block {
	const unsigned char *name; /* in the stream */
	size_t len;
};

struct rw {
	const unsigned char *s;
	size_t n, p;
	int fd, werr;
	unsigned char buf[1 << 16];
	size_t bn;
	struct block blocks[MAX_BLOCKS];
	size_t n_blocks;
	const struct block *cur, *emitted; /* the last record's block read / written */
	uint32_t ram_sid;
	bool have_ram;
};

static void flush(struct rw *w)
{
	size_t done = 0;
	while (!w->werr && done < w->bn) {
		ssize_t k = write(w->fd, w->buf + done, w->bn - done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			w->werr = k < 0 ? -errno : -EIO;
		else
			done += (size_t)k;
	}
	w->bn = 0;
}

static void put(struct rw *w, const void *b, size_t len)
{
	const unsigned char *c = b;
	while (len) {
		if (w->bn == sizeof(w->buf))
			flush(w);
		size_t k = sizeof(w->buf) - w->bn < len ? sizeof(w->buf) - w->bn : len;
		memcpy(w->buf + w->bn, c, k);
		w->bn += k;
		c += k;
		len -= k;
	}
}

static void put_be64(struct rw *w, uint64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	put(w, b, 8);
}

static bool have(const struct rw *w, size_t k)
{
	return w->n - w->p >= k;
}

static uint32_t be32(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t be64(const unsigned char *b)
{
	return (uint64_t)be32(b) << 32 | be32(b + 4);
}

/* Copies k bytes from the input as they are. */
static bool copy(struct rw *w, size_t k)
{
	if (!have(w, k))
		return false;
	put(w, w->s + w->p, k);
	w->p += k;
	return true;
}

static const struct block *find_block(const struct rw *w, const unsigned char *name, size_t len)
{
	for (size_t i = 0; i < w->n_blocks; i++)
		if (w->blocks[i].len == len && !memcmp(w->blocks[i].name, name, len))
			return &w->blocks[i];
	return NULL;
}

/* The mem-size record's block list (copied): each block's name and size. */
static bool mem_size(struct rw *w, uint64_t total)
{
	while (total) {
		if (!have(w, 1) || !have(w, 1u + w->s[w->p] + 8u) || w->n_blocks == MAX_BLOCKS)
			return false;
		size_t len = w->s[w->p];
		const unsigned char *name = w->s + w->p + 1;
		uint64_t used = be64(name + len);
		if (used == 0 || used > total || find_block(w, name, len))
			return false;
		w->blocks[w->n_blocks++] = (struct block){name, len};
		total -= used;
		copy(w, 1 + len + 8);
	}
	return true;
}

/* The records of one section of "ram", up to its end-of-section record and footer. */
static int records(struct rw *w, struct lv_stream_stats *st)
{
	const struct block *ram = NULL;

	for (;;) {
		if (!have(w, 8))
			return -EPROTO;
		uint64_t v = be64(w->s + w->p), addr = v & ~RAM_FLAGS_MASK;
		unsigned flags = (unsigned)(v & RAM_FLAGS_MASK);
		w->p += 8;
		if (flags &
		    ~(unsigned)(RAM_ZERO | RAM_MEM_SIZE | RAM_PAGE | RAM_EOS | RAM_CONTINUE))
			return -EPROTO;
		if (flags == RAM_MEM_SIZE) {
			put_be64(w, v);
			if (!mem_size(w, addr))
				return -EPROTO;
			continue;
		}
		if (flags == RAM_EOS) {
			put_be64(w, v);
			if (have(w, 5) && w->s[w->p] == VM_SECTION_FOOTER) {
				if (be32(w->s + w->p + 1) != w->ram_sid)
					return -EPROTO;
				copy(w, 5);
			}
			return 0;
		}
		unsigned kind = flags & ~(unsigned)RAM_CONTINUE;
		if (kind != RAM_ZERO && kind != RAM_PAGE)
			return -EPROTO;
		if (flags & RAM_CONTINUE) {
			if (!w->cur)
				return -EPROTO;
		} else {
			if (!have(w, 1) || !have(w, 1u + w->s[w->p]))
				return -EPROTO;
			size_t len = w->s[w->p];
			w->cur = find_block(w, w->s + w->p + 1, len);
			if (!w->cur)
				return -EPROTO;
			w->p += 1 + len;
		}
		size_t payload = kind == RAM_ZERO ? 1 : PAGE_SIZE_X86;
		if (!have(w, payload))
			return -EPROTO;
		if (!ram)
			ram = find_block(w, (const unsigned char *)LV_STREAM_RAM_BLOCK,
					 strlen(LV_STREAM_RAM_BLOCK));
		if (!ram)
			ram = find_block(w, (const unsigned char *)LV_STREAM_RAM_BLOCK_NUMA,
					 strlen(LV_STREAM_RAM_BLOCK_NUMA));
		if (kind == RAM_ZERO) {
			st->zero++;
			if (w->s[w->p] == 0 && w->cur == ram && addr >= LV_STREAM_KEEP_BELOW) {
				st->dropped++;
				w->p += payload;
				continue;
			}
		} else {
			st->pages++;
		}
		/* Re-encoded: the block named whenever it is not the last one written. */
		if (w->cur == w->emitted) {
			put_be64(w, addr | kind | RAM_CONTINUE);
		} else {
			put_be64(w, addr | kind);
			unsigned char len = (unsigned char)w->cur->len;
			put(w, &len, 1);
			put(w, w->cur->name, w->cur->len);
			w->emitted = w->cur;
		}
		copy(w, payload);
	}
}

int lv_save_stream_drop_zero(const unsigned char *s, size_t n, int out_fd,
			     struct lv_stream_stats *st, struct orch_error *err)
{
	_cleanup_free_ struct rw *w = calloc(1, sizeof(*w));
	int r;

	*st = (struct lv_stream_stats){0};
	if (!w)
		return orch_err(err, -ENOMEM, "out of memory");
	w->s = s;
	w->n = n;
	w->fd = out_fd;
	if (n < 8 || memcmp(s, "QEVM", 4) != 0 || be32(s + 4) != 3)
		return orch_err(err, -EPROTO, "not a QEMU migration stream of version 3");
	copy(w, 8);
	if (have(w, 5) && s[w->p] == VM_CONFIGURATION) {
		if (!have(w, 5 + (size_t)be32(s + w->p + 1)) || !copy(w, 5 + be32(s + w->p + 1)) ||
		    (have(w, 1) && s[w->p] == VM_SUBSECTION))
			return orch_err(err, -EPROTO, "a configuration section of another kind");
	}
	for (;;) {
		if (!have(w, 5))
			return orch_err(err, -EPROTO, "the stream ends inside the RAM");
		unsigned type = s[w->p];
		uint32_t sid = be32(s + w->p + 1);
		if (type == VM_SECTION_START) {
			size_t hl = have(w, 6) ? 6u + s[w->p + 5] + 8u : 0;
			if (!hl || !have(w, hl) || w->have_ram || s[w->p + 5] != 3 ||
			    memcmp(s + w->p + 6, "ram", 3) != 0)
				return orch_err(err, -EPROTO, "an iterable section other than ram");
			w->have_ram = true;
			w->ram_sid = sid;
			copy(w, hl);
		} else if ((type == VM_SECTION_PART || type == VM_SECTION_END) && w->have_ram &&
			   sid == w->ram_sid) {
			copy(w, 5);
		} else {
			return orch_err(err, -EPROTO, "a section of type %u inside the RAM", type);
		}
		if ((r = records(w, st)) < 0)
			return orch_err(err, r, "RAM records of another kind (at byte %zu)", w->p);
		if (type == VM_SECTION_END)
			break;
	}
	copy(w, w->n - w->p); /* the devices' state, as it is */
	flush(w);
	if (w->werr)
		return orch_errno(err, w->werr, "cannot write the rewritten stream");
	return 0;
}

bool lv_kernel_is_bzimage(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char h[6];
	if (fd < 0 || pread(fd, h, sizeof(h), 0x202) != (ssize_t)sizeof(h))
		return false;
	return memcmp(h, "HdrS", 4) == 0 && (h[4] | h[5] << 8) >= 0x0200;
}

int lv_save_image_drop_zero(const char *path, struct lv_stream_stats *st, struct orch_error *err)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct lv_save_header h;
	struct stat sb;
	int r;

	*st = (struct lv_stream_stats){0};
	if (fd < 0 || fstat(fd, &sb) < 0)
		return orch_errno(err, -errno, "cannot open the save image %s", path);
	if ((size_t)sb.st_size < LV_SAVE_HEADER_LEN)
		return orch_err(err, -EPROTO, "%s is not a save image", path);
	void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return orch_errno(err, -errno, "cannot map the save image %s", path);
	const unsigned char *b = m;
	size_t n = (size_t)sb.st_size;
	if ((r = lv_save_header_parse(b, LV_SAVE_HEADER_LEN, &h, err)) < 0 ||
	    n < LV_SAVE_HEADER_LEN + (size_t)h.data_len) {
		munmap(m, n);
		return r < 0 ? orch_err_prefix(err, "%s", path)
			     : orch_err(err, -EPROTO, "%s is cut short", path);
	}
	size_t head = LV_SAVE_HEADER_LEN + (size_t)h.data_len;
	if (asprintf(&tmp, "%s.zero", path) < 0) {
		munmap(m, n);
		return orch_err(err, -ENOMEM, "out of memory");
	}
	unlink(tmp);
	_cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0) {
		munmap(m, n);
		return orch_errno(err, -errno, "cannot create %s", tmp);
	}
	ssize_t k = write(out, b, head); /* libvirt's header and XML, as they are */
	r = k == (ssize_t)head ? lv_save_stream_drop_zero(b + head, n - head, out, st, err)
			       : orch_errno(err, k < 0 ? -errno : -EIO, "cannot write %s", tmp);
	munmap(m, n);
	if (r == 0 && fsync(out) < 0)
		r = orch_errno(err, -errno, "cannot write %s", tmp);
	if (r == 0 && rename(tmp, path) < 0)
		r = orch_errno(err, -errno, "cannot rename %s", tmp);
	if (r < 0)
		unlink(tmp);
	if (r == -EPROTO) { /* not one to rewrite: kept as it is */
		*st = (struct lv_stream_stats){0};
		return 0;
	}
	return r;
}
