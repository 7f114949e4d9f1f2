/* SPDX-License-Identifier: Apache-2.0 */
/* Retired vm-per-task workspaces pruned (pool-prune.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "pool-prune.h"
#include "strv.h"

struct cand {
	int64_t n;
	char *name;
};

static int by_n_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->n < y->n ? 1 : x->n > y->n ? -1 : 0;
}

/* n of <class_name>.<n>, or -1. */
static int64_t seq_of(const char *name, const char *class_name)
{
	size_t cl = strlen(class_name);
	const char *s = name + cl + 1;
	int64_t n = 0;

	if (strncmp(name, class_name, cl) != 0 || name[cl] != '.' || !*s || (s[0] == '0' && s[1]) ||
	    strlen(s) > 18)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

int pool_prune_candidates(const char *dir, const char *class_name, int64_t keep,
			  bool (*live)(const char *name, void *data), void *data, char ***ret,
			  size_t *ret_n, struct orch_error *err)
{
	DIR *d = opendir(dir);
	struct cand *c = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	*ret = NULL;
	*ret_n = 0;
	if (!d)
		return errno == ENOENT ? 0 : orch_errno(err, -errno, "cannot read %s", dir);
	for (struct dirent *e; (e = readdir(d));) {
		struct stat st;
		int64_t seq = seq_of(e->d_name, class_name);
		if (seq < 0 || (live && live(e->d_name, data)) ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (n == cap) {
			struct cand *v = realloc(c, (cap = cap ? cap * 2 : 16) * sizeof(*c));
			if (!v) {
				r = -ENOMEM;
				break;
			}
			c = v;
		}
		if (!(c[n].name = strdup(e->d_name))) {
			r = -ENOMEM;
			break;
		}
		c[n++].n = seq;
	}
	closedir(d);
	char **v = r == 0 ? calloc(n + 1, sizeof(char *)) : NULL;
	if (r == 0 && !v)
		r = -ENOMEM;
	if (r == 0) {
		qsort(c, n, sizeof(*c), by_n_desc);
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			if ((int64_t)i < keep)
				free(c[i].name);
			else
				v[k++] = c[i].name;
		}
		*ret = v;
		*ret_n = k;
	} else {
		for (size_t i = 0; i < n; i++)
			free(c[i].name);
	}
	free(c);
	return r < 0 ? orch_err(err, r, "out of memory") : 0;
}

/* Empties the directory dfd (closed here), staying on dev; depth bounds the recursion. */
static int empty_dir(int dfd, dev_t dev, int depth)
{
	DIR *d = fdopendir(dfd);
	int r = 0;

	if (!d) {
		r = -errno;
		close(dfd);
		return r;
	}
	for (struct dirent *e; (e = readdir(d));) {
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT && !r)
				r = -errno;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT && !r)
				r = -errno;
			continue;
		}
		if (st.st_dev != dev) { /* a mount point: not ours to empty */
			if (!r)
				r = -EBUSY;
			continue;
		}
		if (depth >= POOL_PRUNE_DEPTH_MAX) {
			if (!r)
				r = -ELOOP;
			continue;
		}
		int sub = openat(dirfd(d), e->d_name,
				 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			if (errno != ENOENT && !r)
				r = -errno;
			continue;
		}
		struct stat sst;
		if (fstat(sub, &sst) < 0 || sst.st_dev != dev || sst.st_ino != st.st_ino) {
			close(sub); /* replaced meanwhile, or a mount appeared */
			if (!r)
				r = -EBUSY;
			continue;
		}
		int q = empty_dir(sub, dev, depth + 1);
		if (q < 0 && !r)
			r = q;
		if (unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
			r = -errno;
	}
	closedir(d);
	return r;
}

int pool_remove_tree(const char *path)
{
	_cleanup_free_ char *parent = NULL;
	const char *base;
	struct stat st;

	/* A workspace orchd made a bind mount of itself: detached first (EINVAL: none). */
	(void)umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
	if (!(parent = strdup(path)))
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	if (path[0] != '/' || !slash || !slash[1])
		return -EINVAL;
	base = path + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = 0; /* the parent is / */
	else
		*slash = 0;
	_cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(pfd, base, 0) < 0 ? -errno : 0;
	int dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct stat dst;
	if (fstat(dfd, &dst) < 0 || dst.st_ino != st.st_ino) {
		close(dfd);
		return -EBUSY;
	}
	int r = empty_dir(dfd, dst.st_dev, 0);
	if (unlinkat(pfd, base, AT_REMOVEDIR) < 0 && errno != ENOENT && !r)
		r = -errno;
	return r;
}

void pool_prune_main(int argc, char **argv)
{
	int rc = 0;

	if (argc < 2 || strcmp(argv[1], POOL_PRUNE_ARG) != 0)
		return;
	for (int i = 2; i < argc; i++) {
		int r = argv[i][0] == '/' ? pool_remove_tree(argv[i]) : -EINVAL;
		if (r < 0) {
			fprintf(stderr, "orchd: cannot remove the workspace %s: %s\n", argv[i],
				strerror(-r));
			rc = 1;
		}
	}
	_exit(rc);
}
