/* SPDX-License-Identifier: Apache-2.0 */
/* Task workspace images and their mounts (git-ws.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "git-ws.h"

#define MIB (INT64_C(1024) * 1024)

void ws_name(int64_t task, char *buf, size_t len)
{
	snprintf(buf, len, "task-%lld", (long long)task);
}

int ws_paths(const struct git_config *cfg, const char *vm_workspace, int64_t task, char **image,
	     char **mount, struct orch_error *err)
{
	if (asprintf(image, "%s/images/task-%lld.img", cfg->dir, (long long)task) < 0) {
		*image = NULL;
		return orch_err(err, -ENOMEM, "out of memory");
	}
	if (asprintf(mount, "%s/task-%lld", vm_workspace, (long long)task) < 0) {
		free(*image);
		*image = *mount = NULL;
		return orch_err(err, -ENOMEM, "out of memory");
	}
	return 0;
}

int64_t ws_image_used(const char *image)
{
	struct stat st;
	return stat(image, &st) < 0 ? 0 : (int64_t)st.st_blocks * 512;
}

int ws_space_check(const struct git_config *cfg, char *const *images, struct orch_error *err)
{
	_cleanup_free_ char *dir = NULL;
	struct statvfs sv;
	if (asprintf(&dir, "%s/images", cfg->dir) < 0)
		return orch_err(err, -ENOMEM, "out of memory");
	if (statvfs(dir, &sv) < 0)
		return orch_errno(err, -errno, "cannot see the free space of %s", dir);
	int64_t avail = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	int64_t size = cfg->workspace_mib * MIB, promised = 0;
	for (size_t i = 0; images && images[i]; i++) {
		int64_t used = ws_image_used(images[i]);
		promised += used < size ? size - used : 0;
	}
	int64_t need = promised + size + cfg->min_free_mib * MIB;
	if (avail < need)
		return orch_err(
			err, -ENOSPC,
			"no room for another task workspace on the file system of %s: "
			"%lld MiB free, %lld MiB promised to the existing workspaces, a new "
			"one may take %lld MiB and %lld MiB stay free (git.workspace_mib, "
			"git.min_free_mib); remove old ones with `orch workspaces rm`",
			dir, (long long)(avail / MIB), (long long)(promised / MIB),
			(long long)cfg->workspace_mib, (long long)cfg->min_free_mib);
	return 0;
}

int ws_image_create(const struct git_config *cfg, const char *image, struct orch_error *err)
{
	if (unlink(image) < 0 && errno != ENOENT)
		return orch_errno(err, -errno, "cannot remove the old image %s", image);
	_cleanup_close_ int fd =
		open(image, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot create %s", image);
	if (ftruncate(fd, (off_t)(cfg->workspace_mib * MIB)) < 0)
		return orch_errno(err, -errno, "cannot size %s", image);
	return 0;
}

int ws_mkfs_start(const struct git_ctx *g, const char *image, uid_t uid, gid_t gid, gproc_cb cb,
		  void *data, struct gproc **ret, struct orch_error *err)
{
	struct gstrv argv = {0}, env = {0};
	if (!g->mkfs)
		return orch_err(err, -ENOENT, "mkfs.ext4 not found; install e2fsprogs");
	gstrv_push(&argv, g->mkfs);
	gstrv_push(&argv, "-q");
	gstrv_push(&argv, "-F");
	gstrv_push(&argv, "-m");
	gstrv_push(&argv, "0"); /* no blocks kept for root: the size is the limit for all */
	gstrv_push(&argv, "-L");
	gstrv_push(&argv, "orch-task");
	gstrv_push(&argv, "-E");
	gstrv_pushf(&argv, "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=%u:%u",
		    (unsigned)uid, (unsigned)gid);
	if (g->cfg->workspace_inodes) {
		gstrv_push(&argv, "-N");
		gstrv_pushf(&argv, "%lld", (long long)g->cfg->workspace_inodes);
	}
	gstrv_push(&argv, "--");
	gstrv_push(&argv, image);
	gstrv_push(&env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	gstrv_push(&env, "LC_ALL=C");
	struct git_spawn_opts o = {.out_fd = -1, .out_max = 65536, .timeout_ms = 120000};
	return git_spawn(g, &argv, &env, &o, cb, data, ret, err);
}

static int set_immutable(int fd, bool on)
{
	int flags = 0;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
		return -errno;
	int nf = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
	if (nf != flags && ioctl(fd, FS_IOC_SETFLAGS, &nf) < 0)
		return -errno;
	return 0;
}

int ws_mountpoint(const char *mount, struct orch_error *err)
{
	if (mkdir(mount, 0700) < 0 && errno != EEXIST)
		return orch_errno(err, -errno, "cannot create %s", mount);
	_cleanup_close_ int fd = open(mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "%s is not a directory", mount);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return orch_errno(err, -errno, "cannot stat %s", mount);
	if (st.st_uid != 0 && fchown(fd, 0, 0) < 0)
		return orch_errno(err, -errno, "cannot chown %s", mount);
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0)
		return orch_errno(err, -errno, "cannot chmod %s", mount);
	/* Best effort: not every file system has the flag (the mount still works). */
	(void)set_immutable(fd, true);
	return 0;
}

int ws_mount_start(const struct git_ctx *g, const char *image, const char *mount, bool ro,
		   gproc_cb cb, void *data, struct gproc **ret, struct orch_error *err)
{
	struct gstrv argv = {0}, env = {0};
	if (!g->mount)
		return orch_err(err, -ENOENT, "mount(8) not found; install util-linux");
	gstrv_push(&argv, g->mount);
	gstrv_push(&argv, "-t");
	gstrv_push(&argv, "ext4");
	gstrv_push(&argv, "-o");
	gstrv_pushf(&argv, "loop,nosuid,nodev,noatime,noinit_itable,nodiscard%s", ro ? ",ro" : "");
	gstrv_push(&argv, "--");
	gstrv_push(&argv, image);
	gstrv_push(&argv, mount);
	gstrv_push(&env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	gstrv_push(&env, "LC_ALL=C");
	struct git_spawn_opts o = {.out_fd = -1, .out_max = 65536, .timeout_ms = 120000};
	return git_spawn(g, &argv, &env, &o, cb, data, ret, err);
}

int ws_after_mount(const char *mount, struct orch_error *err)
{
	_cleanup_close_ int fd = open(mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "cannot open %s", mount);
	if (unlinkat(fd, "lost+found", AT_REMOVEDIR) < 0 && errno != ENOENT)
		return orch_errno(err, -errno, "cannot remove %s/lost+found", mount);
	return 0;
}

int ws_umount_start(const struct git_ctx *g, const char *mount, bool lazy, gproc_cb cb, void *data,
		    struct gproc **ret, struct orch_error *err)
{
	struct gstrv argv = {0}, env = {0};
	if (!g->umount)
		return orch_err(err, -ENOENT, "umount(8) not found; install util-linux");
	gstrv_push(&argv, g->umount);
	if (lazy)
		gstrv_push(&argv, "-l");
	gstrv_push(&argv, "--");
	gstrv_push(&argv, mount);
	gstrv_push(&env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
	gstrv_push(&env, "LC_ALL=C");
	struct git_spawn_opts o = {.out_fd = -1, .out_max = 65536, .timeout_ms = 120000};
	return git_spawn(g, &argv, &env, &o, cb, data, ret, err);
}

bool ws_mounted(const char *mount)
{
	struct stat a, b;
	_cleanup_free_ char *parent = NULL;
	if (lstat(mount, &a) < 0 || !S_ISDIR(a.st_mode))
		return false;
	if (asprintf(&parent, "%s/..", mount) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev;
}

int ws_remove(const char *image, const char *mount, struct orch_error *err)
{
	if (mount && !ws_mounted(mount)) {
		int fd = open(mount, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			(void)set_immutable(fd, false);
			close(fd);
		}
		if (rmdir(mount) < 0 && errno != ENOENT)
			return orch_errno(err, -errno, "cannot remove %s", mount);
	}
	if (image && unlink(image) < 0 && errno != ENOENT)
		return orch_errno(err, -errno, "cannot remove %s", image);
	return 0;
}

/* Whether dir is a mount point, and whether it has shared propagation, from
 * /proc/self/mountinfo (the last entry for a path is the one on top). */
static int mount_info(const char *dir, bool *ret_mounted, bool *ret_shared)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	*ret_mounted = *ret_shared = false;
	while (getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options [optional...] - ... */
		char *save = NULL, *tok = strtok_r(line, " ", &save);
		for (int i = 0; tok && i < 4; i++)
			tok = strtok_r(NULL, " ", &save);
		if (!tok || strcmp(tok, dir) != 0)
			continue;
		*ret_mounted = true;
		*ret_shared = false;
		tok = strtok_r(NULL, " ", &save); /* options */
		while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-") != 0)
			if (strncmp(tok, "shared:", 7) == 0)
				*ret_shared = true;
	}
	fclose(f);
	return 0;
}

int ws_share(const char *dir, struct orch_error *err)
{
	char real[PATH_MAX];
	bool mounted = false, shared = false;
	int r;
	if (!realpath(dir, real))
		return orch_errno(err, -errno, "cannot resolve %s", dir);
	/* mountinfo escapes spaces and the like; such paths are not shared (refused). */
	if (strpbrk(real, " \t\n\\"))
		return orch_err(err, -EINVAL, "%s: a workspace path with blanks cannot be shared",
				real);
	if ((r = mount_info(real, &mounted, &shared)) < 0)
		return orch_errno(err, r, "cannot read /proc/self/mountinfo");
	if (shared)
		return 0;
	if (!mounted && mount(real, real, NULL, MS_BIND, NULL) < 0)
		return orch_errno(err, -errno, "cannot bind %s onto itself", real);
	if (mount(NULL, real, NULL, MS_SHARED, NULL) < 0)
		return orch_errno(err, -errno, "cannot make %s a shared mount", real);
	return 0;
}
