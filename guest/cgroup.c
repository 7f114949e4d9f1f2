/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "loop.h"

static const char *const ctrl_names[_SV_CG_MAX] = {"memory", "pids", "cpu"};

const char *sv_cg_ctrl_name(enum sv_cg_ctrl c)
{
	return c < _SV_CG_MAX ? ctrl_names[c] : "?";
}

const char *sv_cg_kind_name(enum sv_cg_kind k)
{
	switch (k) {
	case SV_CG_V1:
		return "v1";
	case SV_CG_V2:
		return "v2";
	case SV_CG_NONE:
		break;
	}
	return NULL;
}

static void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static int write_file(const char *dir, const char *file, const char *value)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	int r = n < 0 ? -errno : (size_t)n == len ? 0 : -EIO;
	close(fd);
	return r;
}

static int read_small(const char *dir, const char *file, char *buf, size_t size)
{
	char path[PATH_MAX];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int r = n < 0 ? -errno : 0;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = 0;
	return 0;
}

static bool word_in(const char *list, const char *word, const char *seps)
{
	size_t wl = strlen(word);
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, seps);
		if (n == wl && strncmp(p, word, wl) == 0)
			return true;
		p += n;
		p += strspn(p, seps);
	}
	return false;
}

static int mkdir_ok(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* Removes a leftover parent directory: its (empty) subdirectories, then itself. A
 * directory still holding processes stays (rmdir fails). */
static void remove_leftover(const char *path, int fd)
{
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return;
	_cleanup_(closedirp) DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_type == DT_DIR && strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	(void)rmdir(path);
}

/* Creates a directory this supervisor alone owns: DIR/NAME, else DIR/NAME.1, DIR/NAME.2...
 * and holds it locked (flock) in *ret_lock until it exits. An existing directory is never
 * adopted: it belongs to another live supervisor (which would kill our jails with its
 * cgroup.kill, and we its), or is the leftover of an earlier one whose cgroup.kill this
 * kernel remembers (every child born into it with CLONE_INTO_CGROUP is then killed at
 * once). Leftovers (directories nobody holds locked: their supervisor is gone, maybe
 * SIGKILLed before it could remove them) are removed first when empty. */
static int mkdir_own(const char *dir, const char *name, char *ret, size_t size, int *ret_lock)
{
	for (unsigned i = 0; i < 64; i++) {
		int n = i == 0 ? snprintf(ret, size, "%s/%s", dir, name)
			       : snprintf(ret, size, "%s/%s.%u", dir, name, i);
		if (n < 0 || (size_t)n >= size)
			return -ENAMETOOLONG;
		_cleanup_close_ int old = open(ret, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (old >= 0 && flock(old, LOCK_EX | LOCK_NB) == 0)
			remove_leftover(ret, old);
	}
	for (unsigned i = 0; i < 64; i++) {
		int n = i == 0 ? snprintf(ret, size, "%s/%s", dir, name)
			       : snprintf(ret, size, "%s/%s.%u", dir, name, i);
		if (n < 0 || (size_t)n >= size)
			return -ENAMETOOLONG;
		if (mkdir(ret, 0755) < 0) {
			if (errno != EEXIST)
				return -errno;
			continue;
		}
		int fd = open(ret, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue; /* removed at once as a leftover by another supervisor */
		struct stat a, b;
		/* Blocks only while another starting supervisor checks it (above). */
		if (flock(fd, LOCK_EX) < 0 || fstat(fd, &a) < 0 || stat(ret, &b) < 0 ||
		    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
			close(fd);
			continue;
		}
		*ret_lock = fd;
		return 0;
	}
	return -EEXIST;
}

/* Mount point of the cgroup2 filesystem, and of each v1 controller. */
struct mounts {
	char v2[PATH_MAX];
	char v1[_SV_CG_MAX][PATH_MAX];
};

static void find_mounts(struct mounts *m)
{
	_cleanup_(fclosep) FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	*m = (struct mounts){0};
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], fstype[64], superopts[1024];
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *dash = strstr(line, " - ");
		if (!dash)
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if (sscanf(dash + 3, "%63s %*s %1023s", fstype, superopts) != 2)
			continue;
		if (strchr(mnt, '\\'))
			continue; /* escaped names: not a cgroup mount we use */
		if (strcmp(fstype, "cgroup2") == 0 && !m->v2[0])
			snprintf(m->v2, sizeof(m->v2), "%s", mnt);
		else if (strcmp(fstype, "cgroup") == 0)
			for (int c = 0; c < _SV_CG_MAX; c++)
				if (!m->v1[c][0] && word_in(superopts, ctrl_names[c], ","))
					snprintf(m->v1[c], sizeof(m->v1[c]), "%s", mnt);
	}
}

/* This process's path in the v2 tree ("0::/x") or in the v1 hierarchy of ctrl. */
static int own_path(const char *ctrl, char *buf, size_t size)
{
	_cleanup_(fclosep) FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c1 = 0;
		*c2 = 0;
		/* "ID:controllers:path"; cgroup v2 is "0::path". */
		bool match =
			ctrl ? word_in(c1 + 1, ctrl, ",") : (strcmp(line, "0") == 0 && c1[1] == 0);
		if (match) {
			snprintf(buf, size, "%s", strcmp(c2 + 1, "/") == 0 ? "" : c2 + 1);
			return 0;
		}
	}
	return -ENOENT;
}

static int setup_v2(struct sv_cgroups *cg, const struct mounts *m, const char *name)
{
	char own[PATH_MAX], base[PATH_MAX], buf[512];
	int r;
	if (!m->v2[0])
		return -ENOENT;
	if ((r = own_path(NULL, own, sizeof(own))) < 0)
		return r;
	if (strlen(m->v2) + strlen(own) >= sizeof(base))
		return -ENAMETOOLONG;
	strcpy(stpcpy(base, m->v2), own);

	bool want[_SV_CG_MAX] = {0};
	bool any = false;
	if (read_small(base, "cgroup.controllers", buf, sizeof(buf)) >= 0)
		for (int c = 0; c < _SV_CG_MAX; c++)
			any |= want[c] = word_in(buf, ctrl_names[c], " \n");

	/* Enabling controllers below a non-root cgroup needs it to hold no processes:
	 * move the supervisor into a leaf of its own first. */
	if (any && own[0]) {
		char leaf[PATH_MAX + 16];
		snprintf(leaf, sizeof(leaf), "%s/supervisor", base);
		snprintf(buf, sizeof(buf), "%d", (int)getpid());
		if (mkdir_ok(leaf) < 0 || write_file(leaf, "cgroup.procs", buf) < 0)
			any = false;
	}
	char parent[PATH_MAX + 64];
	int lock;
	if ((r = mkdir_own(base, name, parent, sizeof(parent), &lock)) < 0)
		return r;
	cg->locks[cg->n_locks++] = lock;
	for (int c = 0; any && c < _SV_CG_MAX; c++) {
		if (!want[c])
			continue;
		snprintf(buf, sizeof(buf), "+%s", ctrl_names[c]);
		if (write_file(base, "cgroup.subtree_control", buf) >= 0 &&
		    write_file(parent, "cgroup.subtree_control", buf) >= 0)
			cg->ctrl[c] = SV_CG_V2;
	}
	cg->v2_parent = strdup(parent);
	if (!cg->v2_parent)
		return -ENOMEM;
	char kill_path[PATH_MAX + 80];
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", parent);
	cg->v2_kill = access(kill_path, F_OK) == 0;
	return 0;
}

static void setup_v1(struct sv_cgroups *cg, const struct mounts *m, const char *name)
{
	for (int c = 0; c < _SV_CG_MAX; c++) {
		char own[PATH_MAX], dir[2 * PATH_MAX], parent[2 * PATH_MAX + 256];
		if (cg->ctrl[c] != SV_CG_NONE || !m->v1[c][0])
			continue;
		if (own_path(ctrl_names[c], own, sizeof(own)) < 0)
			continue;
		snprintf(dir, sizeof(dir), "%s%s", m->v1[c], own);
		int lock;
		if (mkdir_own(dir, name, parent, sizeof(parent), &lock) < 0)
			continue;
		cg->locks[cg->n_locks++] = lock;
		cg->v1_parent[c] = strdup(parent);
		if (cg->v1_parent[c])
			cg->ctrl[c] = SV_CG_V1;
	}
}

int sv_cgroups_init(struct sv_cgroups *cg, const char *name, struct orch_error *err)
{
	struct mounts m;
	*cg = (struct sv_cgroups){0};
	find_mounts(&m);
	int r = setup_v2(cg, &m, name);
	if (r == -ENOMEM)
		return orch_err(err, r, "out of memory");
	setup_v1(cg, &m, name);

	size_t off = 0;
	if (!cg->v2_parent)
		off += (size_t)snprintf(cg->why, sizeof(cg->why), "no writable cgroup v2 tree; ");
	for (int c = 0; c < _SV_CG_MAX && off < sizeof(cg->why); c++)
		if (cg->ctrl[c] == SV_CG_NONE)
			off += (size_t)snprintf(cg->why + off, sizeof(cg->why) - off,
						"no %s controller in cgroup v2 or v1; ",
						ctrl_names[c]);
	if (off >= 2 && off < sizeof(cg->why))
		cg->why[off - 2] = 0;
	return 0;
}

void sv_cgroups_done(struct sv_cgroups *cg)
{
	for (unsigned i = 0; i < cg->n_locks; i++)
		close(cg->locks[i]);
	free(cg->v2_parent);
	for (int c = 0; c < _SV_CG_MAX; c++)
		free(cg->v1_parent[c]);
	*cg = (struct sv_cgroups){0};
}

json_t *sv_cgroups_describe(const struct sv_cgroups *cg)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "v2", json_boolean(cg->v2_parent != NULL));
	json_object_set_new(o, "kill", json_string(cg->v2_kill ? "cgroup.kill" : "pid-namespace"));
	for (int c = 0; c < _SV_CG_MAX; c++) {
		const char *k = sv_cg_kind_name(cg->ctrl[c]);
		json_object_set_new(o, ctrl_names[c], k ? json_string(k) : json_null());
	}
	if (cg->why[0])
		json_object_set_new(o, "missing", json_string(cg->why));
	return o;
}

int sv_cgroup_create(const struct sv_cgroups *cg, unsigned slot, struct sv_cgroup *ret,
		     struct orch_error *err)
{
	struct sv_cgroup c = {0};
	int r;
	if (cg->v2_parent) {
		if (asprintf(&c.v2, "%s/agent-%u", cg->v2_parent, slot) < 0)
			return -ENOMEM;
		if ((r = mkdir(c.v2, 0755) < 0 ? -errno : 0) < 0) {
			orch_errno(err, r, "cannot create cgroup %s", c.v2);
			sv_cgroup_done(&c);
			return r;
		}
	}
	for (int i = 0; i < _SV_CG_MAX; i++) {
		if (cg->ctrl[i] != SV_CG_V1)
			continue;
		if (asprintf(&c.v1[i], "%s/agent-%u", cg->v1_parent[i], slot) < 0) {
			sv_cgroup_done(&c);
			return -ENOMEM;
		}
		if ((r = mkdir(c.v1[i], 0755) < 0 ? -errno : 0) < 0) {
			orch_errno(err, r, "cannot create cgroup %s", c.v1[i]);
			sv_cgroup_done(&c);
			return r;
		}
	}
	*ret = c;
	return 0;
}

void sv_cgroup_done(struct sv_cgroup *c)
{
	free(c->v2);
	for (int i = 0; i < _SV_CG_MAX; i++)
		free(c->v1[i]);
	*c = (struct sv_cgroup){0};
}

static int apply_one(const struct sv_cgroup *c, enum sv_cg_ctrl ctrl, int64_t v,
		     struct orch_error *err)
{
	char buf[64];
	int r = 0;
	const char *dir = c->v1[ctrl] ? c->v1[ctrl] : c->v2;
	bool v1 = c->v1[ctrl] != NULL;
	switch (ctrl) {
	case SV_CG_MEMORY:
		if (v1) {
			snprintf(buf, sizeof(buf), "%" PRId64, v ? v : (int64_t)-1);
			/* memory <= memory+swap must hold at every step, whichever way the
			 * limit moves: memsw, memory, memsw again. memsw is absent without
			 * swap accounting (then there is no swap to escape to either). */
			(void)write_file(dir, "memory.memsw.limit_in_bytes", buf);
			r = write_file(dir, "memory.limit_in_bytes", buf);
			if (r >= 0)
				(void)write_file(dir, "memory.memsw.limit_in_bytes", buf);
		} else {
			if (v)
				snprintf(buf, sizeof(buf), "%" PRId64, v);
			else
				snprintf(buf, sizeof(buf), "max");
			r = write_file(dir, "memory.max", buf);
			if (r >= 0)
				(void)write_file(dir, "memory.swap.max", v ? "0" : "max");
		}
		break;
	case SV_CG_PIDS:
		if (v)
			snprintf(buf, sizeof(buf), "%" PRId64, v);
		else
			snprintf(buf, sizeof(buf), "max");
		r = write_file(dir, "pids.max", buf);
		break;
	case SV_CG_CPU: {
		const int64_t period = 100000;
		int64_t quota = v ? v * period / 100 : -1;
		if (v && quota < 1000)
			quota = 1000;
		if (v1) {
			snprintf(buf, sizeof(buf), "%" PRId64, period);
			r = write_file(dir, "cpu.cfs_period_us", buf);
			snprintf(buf, sizeof(buf), "%" PRId64, quota);
			if (r >= 0)
				r = write_file(dir, "cpu.cfs_quota_us", buf);
		} else {
			if (v)
				snprintf(buf, sizeof(buf), "%" PRId64 " %" PRId64, quota, period);
			else
				snprintf(buf, sizeof(buf), "max %" PRId64, period);
			r = write_file(dir, "cpu.max", buf);
		}
		break;
	}
	case _SV_CG_MAX:
		break;
	}
	if (r < 0)
		return orch_errno(err, r, "cannot set the %s limit in %s", ctrl_names[ctrl], dir);
	return 0;
}

int sv_cgroup_apply(struct sv_cgroup *c, const struct orch_limits *l, bool ret_enforced[_SV_CG_MAX],
		    struct orch_error *err)
{
	const int64_t values[_SV_CG_MAX] = {l->memory_bytes, l->pids, l->cpu_percent};
	/* Which controllers exist for this cgroup is known by the caller's sv_cgroups. */
	for (int i = 0; i < _SV_CG_MAX; i++)
		ret_enforced[i] = false;
	for (int i = 0; i < _SV_CG_MAX; i++) {
		if (!c->v1[i] && !c->v2)
			continue;
		if (c->applied[i] == values[i]) {
			ret_enforced[i] = values[i] != 0;
			continue;
		}
		int r = apply_one(c, (enum sv_cg_ctrl)i, values[i], err);
		if (r < 0) {
			if (c->v1[i])
				return r;
			/* v2 without that controller: the file does not exist. */
			if (r == -ENOENT || r == -EACCES) {
				orch_err_clear(err);
				continue;
			}
			c->applied[i] = -1;
			return r;
		}
		c->applied[i] = values[i];
		ret_enforced[i] = values[i] != 0;
	}
	return 0;
}

static int enter_one(const char *dir, const char *pid)
{
	char path[PATH_MAX];
	size_t dl = strlen(dir);
	if (dl + sizeof("/cgroup.procs") > sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, dl);
	memcpy(path + dl, "/cgroup.procs", sizeof("/cgroup.procs"));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, pid, strlen(pid));
	int r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}

int sv_cgroup_enter(const struct sv_cgroup *c)
{
	char pid[24];
	/* No snprintf: stay async-signal-safe. */
	unsigned long v = (unsigned long)getpid();
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (int i = 0; i < n; i++)
		pid[i] = tmp[n - 1 - i];
	pid[n] = 0;

	int r;
	if (c->v2 && (r = enter_one(c->v2, pid)) < 0)
		return r;
	for (int i = 0; i < _SV_CG_MAX; i++)
		if (c->v1[i] && (r = enter_one(c->v1[i], pid)) < 0)
			return r;
	return 0;
}

static int kill_listed(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	int killed = 0;
	for (int pass = 0; pass < 16; pass++) {
		_cleanup_(fclosep) FILE *f = fopen(path, "re");
		if (!f)
			return -errno;
		int n = 0, pid;
		while (fscanf(f, "%d", &pid) == 1)
			if (pid > 0 && kill(pid, SIGKILL) == 0)
				n++;
		killed += n;
		if (n == 0)
			break;
	}
	return killed;
}

int sv_cgroup_kill(struct sv_cgroup *c)
{
	if (c->v2 && write_file(c->v2, "cgroup.kill", "1") >= 0) {
		c->killed = true;
		return 1;
	}
	for (int i = 0; i < _SV_CG_MAX; i++)
		if (c->v1[i] && kill_listed(c->v1[i]) >= 0)
			return 1;
	return 0;
}

int sv_cgroup_count(const struct sv_cgroup *c)
{
	const char *dir = c->v2;
	for (int i = 0; !dir && i < _SV_CG_MAX; i++)
		dir = c->v1[i];
	if (!dir)
		return -ENOENT;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	_cleanup_(fclosep) FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int n = 0, pid;
	while (fscanf(f, "%d", &pid) == 1)
		n++;
	return n;
}

/* Waits (bounded) until no process is left in the v2 cgroup dir: processes killed by
 * cgroup.kill or with their pid namespace are still exiting for a moment after the kill,
 * and a directory that cannot be removed would be left behind. */
static void wait_unpopulated(const char *dir, int timeout_ms)
{
	char path[PATH_MAX], buf[256];
	snprintf(path, sizeof(path), "%s/cgroup.events", dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	uint64_t end = orch_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0)
			return;
		buf[n] = 0;
		if (strstr(buf, "populated 0"))
			return;
		uint64_t now = orch_now_ms();
		if (now >= end)
			return;
		/* cgroup.events signals every change with POLLPRI. */
		struct pollfd p = {.fd = fd, .events = POLLPRI};
		if (poll(&p, 1, (int)(end - now)) < 0 && errno != EINTR)
			return;
	}
}

void sv_cgroup_remove(const struct sv_cgroup *c)
{
	if (c->v2) {
		if (rmdir(c->v2) < 0 && errno == EBUSY) {
			wait_unpopulated(c->v2, 2000);
			(void)rmdir(c->v2);
		}
	}
	for (int i = 0; i < _SV_CG_MAX; i++)
		if (c->v1[i])
			(void)rmdir(c->v1[i]);
}

void sv_cgroups_remove(const struct sv_cgroups *cg)
{
	if (cg->v2_parent)
		(void)rmdir(cg->v2_parent);
	for (int i = 0; i < _SV_CG_MAX; i++)
		if (cg->v1_parent[i])
			(void)rmdir(cg->v1_parent[i]);
}
