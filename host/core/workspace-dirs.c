/* SPDX-License-Identifier: Apache-2.0 */
/* The modes of the directories above the VMs' workspaces (see workspace-dirs.h). Paths
 * are compared after realpath(), so "//", "." and symlinks in the configuration cannot
 * hide that one directory lies below another. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "workspace-dirs.h"

/* mkdir with exactly mode (not mode & ~umask) when it creates the directory. */
static int make_dir(const char *path, mode_t mode, struct orch_error *err)
{
	if (mkdir(path, mode) < 0) {
		if (errno == EEXIST)
			return 0;
		return orch_errno(err, -errno, "cannot create %s", path);
	}
	if (chmod(path, mode) < 0)
		return orch_errno(err, -errno, "cannot chmod %s", path);
	return 0;
}

/* path and its missing parents, each created with exactly mode. */
static int make_dirs(const char *path, mode_t mode, struct orch_error *err)
{
	_cleanup_free_ char *p = strdup(path);
	int r;
	if (!p)
		return orch_err(err, -ENOMEM, "out of memory");
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		r = make_dir(p, mode, err);
		*s = '/';
		if (r < 0)
			return r;
	}
	return make_dir(p, mode, err);
}

/* path is dir or lies below it (both resolved). */
static bool below_or_same(const char *dir, const char *path)
{
	size_t n = strlen(dir);
	if (strcmp(dir, "/") == 0)
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The resolved path, or a copy of path when it cannot be resolved (not there yet). */
static char *resolved(const char *path)
{
	char *r = realpath(path, NULL);
	return r ? r : strdup(path);
}

/* The first local VM whose workspace is dir or lies below it, NULL when none. */
static const struct orchd_vm_config *local_below(const struct orchd_config *cfg, const char *dir)
{
	for (size_t i = 0; i < cfg->n_vms; i++) {
		if (cfg->vms[i].backend != ORCHD_BACKEND_LOCAL)
			continue;
		_cleanup_free_ char *ws = resolved(cfg->vms[i].workspace);
		if (ws && below_or_same(dir, ws))
			return &cfg->vms[i];
	}
	return NULL;
}

/* Adds search permission for group and others (nothing becomes listable). */
static int add_search(const char *path, struct orch_error *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return orch_errno(err, -errno, "cannot stat %s", path);
	if ((st.st_mode & (S_IXGRP | S_IXOTH)) == (S_IXGRP | S_IXOTH))
		return 0;
	if (chmod(path, (st.st_mode & 07777) | S_IXGRP | S_IXOTH) < 0)
		return orch_errno(err, -errno, "cannot make %s traversable for the local agents",
				  path);
	return 0;
}

int orchd_dirs_prepare(const struct orchd_config *cfg, struct orch_error *err)
{
	int r;
	/* 0711: nothing in state_dir is listable; the search bit lets libvirt's QEMU user
	 * reach an image kept in <state_dir>/image, and local agents their workspaces. */
	if ((r = make_dir(cfg->state_dir, 0711, err)) < 0 ||
	    (r = make_dir(cfg->workspace_root, 0700, err)) < 0)
		return r;
	for (size_t i = 0; i < cfg->n_vms; i++) {
		const struct orchd_vm_config *vm = &cfg->vms[i];
		if (vm->backend != ORCHD_BACKEND_LOCAL)
			continue;
		if ((r = make_dirs(vm->workspace, 0755, err)) < 0)
			return orch_err_prefix(err, "vm %s", vm->name);
	}
	const char *const dirs[] = {cfg->state_dir, cfg->workspace_root};
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *d = resolved(dirs[i]);
		if (!d)
			return orch_err(err, -ENOMEM, "out of memory");
		if (local_below(cfg, d) && (r = add_search(dirs[i], err)) < 0)
			return r;
	}
	return 0;
}

/* The parent directory of path (a copy), NULL when out of memory. */
static char *parent_of(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return NULL;
	char *slash = strrchr(p, '/');
	while (slash && slash > p && slash[1] == '\0') { /* trailing slashes */
		*slash = '\0';
		slash = strrchr(p, '/');
	}
	if (!slash)
		return p;
	if (slash == p)
		slash[1] = '\0';
	else
		*slash = '\0';
	return p;
}

/* dir is orchd's own: workspace_root or below it, or below state_dir. */
static bool orchd_owns(const struct orchd_config *cfg, const char *dir)
{
	_cleanup_free_ char *st = resolved(cfg->state_dir), *wr = resolved(cfg->workspace_root);
	return (wr && below_or_same(wr, dir)) ||
	       (st && below_or_same(st, dir) && strcmp(st, dir) != 0);
}

int orchd_workspace_private(const struct orchd_config *cfg, const struct orchd_vm_config *vm,
			    bool *ret_tightened, struct orch_error *err)
{
	_cleanup_free_ char *parent = parent_of(vm->workspace);
	struct stat st;
	uid_t me = geteuid();
	int r;

	if (!parent)
		return orch_err(err, -ENOMEM, "out of memory");
	if ((r = make_dirs(parent, 0700, err)) < 0)
		return orch_err_prefix(err, "vm %s", vm->name);
	_cleanup_free_ char *real = realpath(parent, NULL);
	if (!real || stat(real, &st) < 0)
		return orch_errno(err, -errno, "vm %s: cannot resolve %s", vm->name, parent);
	if (!S_ISDIR(st.st_mode))
		return orch_err(err, -ENOTDIR,
				"vm %s: %s, the parent of its workspace, is not a "
				"directory",
				vm->name, parent);

	bool tightened = false;
	if (st.st_uid != me || (st.st_mode & 077)) {
		const struct orchd_vm_config *local = local_below(cfg, real);
		if (local)
			return orch_err(
				err, -EPERM,
				"vm %s: %s, the parent of its workspace, must be private to "
				"root (0700: the guest's root can put setuid files in the "
				"workspace), but the agents of local vm %s pass through it to "
				"%s; give one of them a workspace elsewhere (vms.%s.workspace)",
				vm->name, real, local->name, local->workspace, vm->name);
		if (!orchd_owns(cfg, real) || st.st_uid != me)
			return orch_err(
				err, -EPERM,
				"vm %s: other users can enter %s (owner uid %u, mode %04o), "
				"the parent of its workspace, and reach what the guest's root "
				"puts there (setuid files); run `chown %u %s && chmod 0700 %s`, "
				"or give the VM a workspace below %s",
				vm->name, real, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
				(unsigned)me, real, real, cfg->workspace_root);
		if (chmod(real, st.st_mode & 0700) < 0)
			return orch_errno(err, -errno, "vm %s: cannot make %s private (0700)",
					  vm->name, real);
		tightened = true;
	}

	if ((r = make_dir(vm->workspace, 0711, err)) < 0)
		return orch_err_prefix(err, "vm %s", vm->name);
	if (stat(vm->workspace, &st) < 0)
		return orch_errno(err, -errno, "vm %s: cannot stat workspace %s", vm->name,
				  vm->workspace);
	if (!S_ISDIR(st.st_mode))
		return orch_err(err, -ENOTDIR, "vm %s: workspace %s is not a directory", vm->name,
				vm->workspace);
	/* The guest's agents pass through the share's root to their own directories. */
	if ((st.st_mode & S_IXOTH) == 0 && chmod(vm->workspace, (st.st_mode & 07777) | 0011) < 0)
		return orch_errno(err, -errno, "vm %s: cannot make workspace %s traversable",
				  vm->name, vm->workspace);
	if (ret_tightened)
		*ret_tightened = tightened;
	return 0;
}
