/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <jansson.h>

#include "choose.h"
#include "cleanup.h"
#include "strbuf.h"

int lv_transport_choose(int forced, const char *vhost_vsock_path, enum lv_transport *ret, char *why,
			size_t why_len)
{
	if (forced == LV_TRANSPORT_VSOCK || forced == LV_TRANSPORT_VIRTIO_SERIAL) {
		*ret = (enum lv_transport)forced;
		snprintf(why, why_len, "forced by config");
		return 0;
	}
	if (forced != 0)
		return -EINVAL;
	const char *path = vhost_vsock_path ? vhost_vsock_path : LV_VHOST_VSOCK_PATH;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", path, strerror(errno));
		*ret = LV_TRANSPORT_VIRTIO_SERIAL;
		return 0;
	}
	close(fd);
	snprintf(why, why_len, "%s is usable", path);
	*ret = LV_TRANSPORT_VSOCK;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Resolves a program name through PATH. */
static char *which(const char *name)
{
	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? strdup(name) : NULL;
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = strdup(path && path[0] ? path : "/usr/bin:/bin");
	if (!copy)
		return NULL;
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char *p = NULL;
		if (asprintf(&p, "%s/%s", d, name) < 0)
			return NULL;
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

static void key_file(struct lv_buf *b, const char *what, const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0)
		lv_buf_appendf(b, "%s=%s:%lld:%lld.%09ld ", what, path, (long long)st.st_size,
			       (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	else
		lv_buf_appendf(b, "%s=%s:missing ", what, path);
}

/* What the probe's answer depends on: the host kernel, the KVM device, qemu, the guest. */
static int cache_key(const struct lv_accel_probe *p, const char *qemu, const char *kvm, char **ret)
{
	struct lv_buf b = {0};
	struct utsname u;
	if (uname(&u) == 0)
		lv_buf_appendf(&b, "host=%s:%s ", u.release, u.version);
	key_file(&b, "kvm", kvm);
	key_file(&b, "qemu", qemu);
	key_file(&b, "kernel", p->kernel);
	key_file(&b, "initrd", p->initrd);
	return lv_buf_steal(&b, ret);
}

static bool cache_read(const char *path, const char *key, enum lv_accel *ret, char *why,
		       size_t why_len)
{
	json_error_t jerr;
	_cleanup_json_ json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	const char *k = NULL, *a = NULL, *w = NULL;
	if (!j || json_unpack(j, "{s:s, s:s, s:s}", "key", &k, "accel", &a, "why", &w) < 0)
		return false;
	if (strcmp(k, key) != 0)
		return false;
	if (!strcmp(a, "kvm"))
		*ret = LV_ACCEL_KVM;
	else if (!strcmp(a, "tcg"))
		*ret = LV_ACCEL_TCG;
	else
		return false;
	snprintf(why, why_len, "%s (cached in %s)", w, path);
	return true;
}

static void cache_write(const char *path, const char *key, enum lv_accel a, const char *why)
{
	_cleanup_json_ json_t *j =
		json_pack("{s:s, s:s, s:s}", "key", key, "accel", lv_accel_name(a), "why", why);
	_cleanup_free_ char *tmp = NULL;
	if (!j || asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
		return;
	if (json_dump_file(j, tmp, JSON_INDENT(2)) == 0 && rename(tmp, path) == 0)
		return;
	unlink(tmp);
}

/* Boots kernel+initrd under KVM and waits for the marker on the serial console. Returns
 * 1 when it appeared, 0 when not (why says what happened), -errno when qemu could not
 * be started at all. */
static int boot_probe(const struct lv_accel_probe *p, const char *qemu, char *why, size_t why_len)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	_cleanup_close_ int rd = pfd[0];
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pfd[1], 1) < 0 ||
		    dup2(pfd[1], 2) < 0)
			_exit(127);
		const char *argv[] = {qemu,
				      "-machine",
				      "pc,accel=kvm",
				      "-cpu",
				      "host",
				      "-m",
				      "128",
				      "-smp",
				      "1",
				      "-nodefaults",
				      "-no-user-config",
				      "-display",
				      "none",
				      "-serial",
				      "stdio",
				      "-no-reboot",
				      "-kernel",
				      p->kernel,
				      "-initrd",
				      p->initrd,
				      "-append",
				      "console=ttyS0 panic=-1 quiet",
				      NULL};
		execv(qemu, (char *const *)argv);
		_exit(127);
	}
	_cleanup_pid_ pid_t child = pid;
	close(pfd[1]);

	unsigned timeout = p->timeout_ms ? p->timeout_ms : 15000;
	uint64_t deadline = now_ms() + timeout;
	char win[8192];
	size_t n = 0;
	const size_t keep = sizeof(LV_PROBE_MARKER);
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline) {
			snprintf(why, why_len,
				 "a test boot under KVM did not reach init within %u ms (KVM is "
				 "present but does not run this kernel)",
				 timeout);
			return 0;
		}
		struct pollfd pf = {.fd = rd, .events = POLLIN};
		int k = poll(&pf, 1, (int)(deadline - now));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		if (k == 0)
			continue;
		ssize_t got = read(rd, win + n, sizeof(win) - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			/* qemu exited: say why, from its last output line. */
			win[n] = 0;
			char *last = win;
			for (char *s = win; *s; s++)
				if (*s == '\n' && s[1])
					last = s + 1;
			for (char *s = last; *s; s++)
				if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
					*s = ' ';
			snprintf(why, why_len, "KVM test boot failed: qemu exited: %.200s", last);
			return 0;
		}
		n += (size_t)got;
		win[n] = 0;
		if (memmem(win, n, LV_PROBE_MARKER, strlen(LV_PROBE_MARKER))) {
			snprintf(why, why_len, "a test boot under KVM reached init");
			return 1;
		}
		if (n > keep) {
			memmove(win, win + n - keep, keep);
			n = keep;
		}
	}
}

int lv_accel_choose(int forced, const struct lv_accel_probe *p, enum lv_accel *ret,
		    bool *ret_cached, char *why, size_t why_len, struct orch_error *err)
{
	int r;
	if (ret_cached)
		*ret_cached = false;
	if (forced == LV_ACCEL_KVM || forced == LV_ACCEL_TCG) {
		*ret = (enum lv_accel)forced;
		snprintf(why, why_len, "forced by config");
		return 0;
	}
	if (forced != 0)
		return orch_err(err, -EINVAL, "accel must be auto, kvm or tcg");

	const char *kvm = p->kvm_path ? p->kvm_path : LV_KVM_PATH;
	_cleanup_close_ int fd = open(kvm, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, why_len, "cannot open %s: %s", kvm, strerror(errno));
		*ret = LV_ACCEL_TCG;
		return 0;
	}
	int api = ioctl(fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		snprintf(why, why_len, "%s answers KVM_GET_API_VERSION with %d, not %d", kvm, api,
			 KVM_API_VERSION);
		*ret = LV_ACCEL_TCG;
		return 0;
	}
	if (!p->kernel || !p->initrd)
		return orch_err(err, -EINVAL, "the KVM probe needs a kernel and an initrd");
	_cleanup_free_ char *qemu = which(p->qemu ? p->qemu : "qemu-system-x86_64");
	if (!qemu)
		return orch_err(err, -ENOENT,
				"qemu-system-x86_64 not found; install qemu-system-x86 "
				"(scripts/install-deps --vm)");

	_cleanup_free_ char *key = NULL;
	if ((r = cache_key(p, qemu, kvm, &key)) < 0)
		return r;
	if (p->cache_path && cache_read(p->cache_path, key, ret, why, why_len)) {
		if (ret_cached)
			*ret_cached = true;
		return 0;
	}

	r = boot_probe(p, qemu, why, why_len);
	if (r < 0)
		return orch_errno(err, r, "cannot run the KVM probe (%s)", qemu);
	*ret = r ? LV_ACCEL_KVM : LV_ACCEL_TCG;
	if (p->cache_path)
		cache_write(p->cache_path, key, *ret, why);
	return 0;
}
