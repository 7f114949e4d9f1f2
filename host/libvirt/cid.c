/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "cid.h"
#include "cleanup.h"

#define CID_FILE_MAX (1024 * 1024)
#define CID_MAX_VMS 4096

struct used {
	uint32_t *cids;
	size_t n, cap;
};

static int collect(const char *vm, uint32_t cid, void *data)
{
	struct used *u = data;
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 16;
		uint32_t *c = realloc(u->cids, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		u->cids = c;
		u->cap = cap;
	}
	u->cids[u->n++] = cid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int lv_cid_for_vm(const struct lv_cid_store *s, const char *vm, uint32_t *ret,
		  struct orch_error *err)
{
	uint32_t cid;
	int r = s->get(s->data, vm, &cid);
	if (r == 0) {
		if (cid < LV_CID_MIN || cid > LV_CID_MAX)
			return orch_err(err, -ERANGE, "vm %s: recorded vsock CID %u is invalid", vm,
					cid);
		*ret = cid;
		return 0;
	}
	if (r != -ENOENT)
		return orch_errno(err, r, "vm %s: cannot read its vsock CID", vm);

	struct used u = {0};
	r = s->each(s->data, collect, &u);
	if (r < 0) {
		free(u.cids);
		return orch_errno(err, r, "cannot list the vsock CIDs in use");
	}
	if (u.n)
		qsort(u.cids, u.n, sizeof(*u.cids), cmp_u32);
	cid = LV_CID_MIN;
	for (size_t i = 0; i < u.n; i++) {
		if (u.cids[i] == cid)
			cid++;
		else if (u.cids[i] > cid)
			break;
	}
	free(u.cids);
	if (cid > LV_CID_MAX)
		return orch_err(err, -ENOSPC, "no free vsock CID left");
	if ((r = s->put(s->data, vm, cid)) < 0)
		return orch_errno(err, r, "vm %s: cannot record vsock CID %u", vm, cid);
	*ret = cid;
	return 0;
}

struct lv_cid_file {
	char *path;
	json_t *map; /* object vm -> integer */
};

void lv_cid_file_free(struct lv_cid_file *f)
{
	if (!f)
		return;
	json_decref(f->map);
	free(f->path);
	free(f);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct lv_cid_file *, lv_cid_file_free)

/* Reads at most CID_FILE_MAX bytes of fd into a new buffer. */
static int read_bounded(int fd, char **ret, size_t *ret_len)
{
	_cleanup_free_ char *buf = malloc(CID_FILE_MAX + 1);
	size_t n = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t k = read(fd, buf + n, CID_FILE_MAX + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			break;
		n += (size_t)k;
		if (n > CID_FILE_MAX)
			return -EFBIG;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = n;
	return 0;
}

int lv_cid_file_open(const char *path, struct lv_cid_file **ret, struct orch_error *err)
{
	_cleanup_(lv_cid_file_freep) struct lv_cid_file *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path)))
		return -ENOMEM;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 && errno != ENOENT)
		return orch_errno(err, -errno, "cannot open %s", path);
	if (fd < 0) {
		if (!(f->map = json_object()))
			return -ENOMEM;
		*ret = TAKE_PTR(f);
		return 0;
	}
	_cleanup_free_ char *buf = NULL;
	size_t n = 0;
	int r = read_bounded(fd, &buf, &n);
	if (r == -EFBIG)
		return orch_err(err, r, "%s is larger than %d bytes", path, CID_FILE_MAX);
	if (r < 0)
		return orch_errno(err, r, "cannot read %s", path);
	json_error_t jerr;
	f->map = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!f->map)
		return orch_err(err, -EINVAL, "%s: %s", path, jerr.text);
	if (!json_is_object(f->map) || json_object_size(f->map) > CID_MAX_VMS)
		return orch_err(err, -EINVAL, "%s: not a JSON object of at most %d vm -> CID", path,
				CID_MAX_VMS);
	const char *k;
	json_t *v;
	struct used u = {0};
	json_object_foreach(f->map, k, v)
	{
		json_int_t c = json_is_integer(v) ? json_integer_value(v) : -1;
		if (c < LV_CID_MIN || c > LV_CID_MAX)
			return orch_err(err, -EINVAL, "%s: vm '%.64s' has an invalid CID", path, k);
		if ((r = collect(k, (uint32_t)c, &u)) < 0) {
			free(u.cids);
			return r;
		}
	}
	if (u.n)
		qsort(u.cids, u.n, sizeof(*u.cids), cmp_u32);
	for (size_t i = 1; i < u.n; i++)
		if (u.cids[i] == u.cids[i - 1]) {
			uint32_t dup = u.cids[i];
			free(u.cids);
			return orch_err(err, -EINVAL, "%s: CID %u is given to two vms", path, dup);
		}
	free(u.cids);
	*ret = TAKE_PTR(f);
	return 0;
}

static int file_get(void *data, const char *vm, uint32_t *ret)
{
	struct lv_cid_file *f = data;
	json_t *v = json_object_get(f->map, vm);
	if (!v)
		return -ENOENT;
	*ret = (uint32_t)json_integer_value(v);
	return 0;
}

static int file_save(struct lv_cid_file *f)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp", f->path) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int r = json_dumpfd(f->map, fd, JSON_SORT_KEYS | JSON_INDENT(2)) < 0 ? -EIO : 0;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && rename(tmp, f->path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static int file_put(void *data, const char *vm, uint32_t cid)
{
	struct lv_cid_file *f = data;
	if (json_object_size(f->map) >= CID_MAX_VMS && !json_object_get(f->map, vm))
		return -ENOSPC;
	if (json_object_set_new(f->map, vm, json_integer(cid)) < 0)
		return -ENOMEM;
	return file_save(f);
}

static int file_each(void *data, lv_cid_each_cb cb, void *cb_data)
{
	struct lv_cid_file *f = data;
	const char *k;
	json_t *v;
	json_object_foreach(f->map, k, v)
	{
		int r = cb(k, (uint32_t)json_integer_value(v), cb_data);
		if (r < 0)
			return r;
	}
	return 0;
}

int lv_cid_file_remove(struct lv_cid_file *f, const char *vm)
{
	if (json_object_del(f->map, vm) < 0)
		return 0; /* none recorded */
	return file_save(f);
}

struct lv_cid_store lv_cid_file_store(struct lv_cid_file *f)
{
	return (struct lv_cid_store){
		.data = f, .get = file_get, .put = file_put, .each = file_each};
}
