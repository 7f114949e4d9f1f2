/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orch-config.h"
#include "cleanup.h"
#include "doctor-kvm.h"
#include "agents.h"
#include "doctor.h"
#include "choose.h"

#define NOBODY 65534
#define LIBVIRT_SOCK "/var/run/libvirt/libvirt-sock"

static struct orch_doctor_item *add(struct orch_doctor_report *r, const char *id, const char *title,
				    bool required)
{
	if (r->n >= ORCH_DOCTOR_MAX_ITEMS)
		r->n = ORCH_DOCTOR_MAX_ITEMS - 1; /* never happens: fixed set of checks */
	struct orch_doctor_item *it = &r->items[r->n++];
	*it = (struct orch_doctor_item){.required = required};
	snprintf(it->id, sizeof(it->id), "%s", id);
	snprintf(it->title, sizeof(it->title), "%s", title);
	return it;
}

__attribute__((format(printf, 3, 4))) static void set(struct orch_doctor_item *it,
						      enum orch_doctor_status s, const char *fmt,
						      ...)
{
	va_list ap;
	it->status = s;
	va_start(ap, fmt);
	vsnprintf(it->detail, sizeof(it->detail), fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void fix(struct orch_doctor_item *it, const char *fmt,
						      ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(it->fix, sizeof(it->fix), fmt, ap);
	va_end(ap);
}

static bool find_in_path(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	_cleanup_free_ char *copy = strdup(path);
	char *save = NULL;
	for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(buf, len, "%s/%s", d, name);
		if (access(buf, X_OK) == 0)
			return true;
	}
	return false;
}

/* Runs argv as uid/gid NOBODY (no groups), output discarded; exit status or -errno. */
static int run_as_nobody(const char *const *argv, bool userns_only)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		if (getuid() == 0 &&
		    (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
		     setresuid(NOBODY, NOBODY, NOBODY) < 0))
			_exit(120);
		if (userns_only)
			_exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool needs_libvirt(const struct orchd_config *c)
{
	if (!c)
		return false;
	for (size_t i = 0; i < c->n_vms; i++)
		if (c->vms[i].backend == ORCHD_BACKEND_LIBVIRT)
			return true;
	return false;
}

/* The libvirt backend's own probe (host/libvirt/choose.h), so that doctor reports what
 * orchd will choose: a boot of the kernel with the baseline initrd must reach its init. */
static enum orch_kvm_verdict lv_probe(const char *kernel, const char *initrd, const char *qemu,
				      unsigned timeout_ms, char *d, size_t len)
{
	struct lv_accel_probe p = {
		.qemu = qemu, .kernel = kernel, .initrd = initrd, .timeout_ms = timeout_ms};
	struct orch_error err = {0};
	enum lv_accel accel;
	char why[300];
	if (lv_accel_choose(0, &p, &accel, NULL, why, sizeof(why), &err) < 0) {
		snprintf(d, len, "the libvirt backend's probe failed: %.300s", err.msg);
		return ORCH_KVM_UNUSABLE;
	}
	snprintf(d, len, "%.250s (the libvirt backend's probe, as orchd runs it)", why);
	return accel == LV_ACCEL_KVM ? ORCH_KVM_OK : ORCH_KVM_UNUSABLE;
}

static void check_kvm(const struct orch_doctor_opts *o, const char *dir, bool image,
		      const char *qemu, struct orch_doctor_report *r)
{
	struct orch_doctor_item *it = add(r, "kvm", "KVM usable", false);
	unsigned timeout = o->kvm_timeout_ms ? o->kvm_timeout_ms : 10000;
	char kernel[600], initrd[600], d[400];
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", dir);
	snprintf(initrd, sizeof(initrd), "%s/baseline-initrd.img", dir);
	if (!o->no_boot && o->progress)
		o->progress("KVM: test boot of the guest kernel", o->progress_data);
	/* Step 1 (a 5-byte guest on a vCPU) always; step 2, the test boot, when possible. */
	enum orch_kvm_verdict v = orch_kvm_probe(NULL, NULL, timeout, d, sizeof(d));
	if (v == ORCH_KVM_UNTESTED && !o->no_boot && image && qemu) {
		if (access(initrd, R_OK) == 0)
			v = lv_probe(kernel, initrd, qemu, timeout, d, sizeof(d));
		else
			v = orch_boot_probe(kernel, qemu, "kvm", timeout, d, sizeof(d));
	}
	switch (v) {
	case ORCH_KVM_OK:
		set(it, ORCH_DOCTOR_OK, "%s", d);
		break;
	case ORCH_KVM_UNTESTED:
		set(it, ORCH_DOCTOR_DEGRADED, "a test guest ran on a vCPU; %s",
		    o->no_boot ? "the test boot was skipped (--no-boot)"
			       : "no guest kernel or QEMU to test-boot");
		fix(it, "build the guest image (vm-images/build), install QEMU, and run orch "
			"doctor again to test-boot it under KVM");
		break;
	case ORCH_KVM_ABSENT:
		set(it, ORCH_DOCTOR_DEGRADED,
		    "%s; VMs run under TCG (slow, no hardware isolation "
		    "boundary of KVM)",
		    d);
		fix(it, "enable virtualisation in the firmware and load kvm_intel or kvm_amd "
			"(modprobe kvm_intel); nested: enable nested virtualisation on the outer "
			"host");
		break;
	case ORCH_KVM_UNUSABLE:
		set(it, ORCH_DOCTOR_DEGRADED,
		    "/dev/kvm exists but is unusable: %s; VMs run under "
		    "TCG (slow)",
		    d);
		fix(it, "use a host whose KVM runs ordinary guests; meanwhile set vms.<name>.accel "
			"to \"tcg\" to skip the probe at every start");
		break;
	}
}

static void check_vhost_vsock(struct orch_doctor_report *r)
{
	struct orch_doctor_item *it = add(r, "vhost-vsock", "/dev/vhost-vsock", false);
	int fd = open("/dev/vhost-vsock", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		set(it, ORCH_DOCTOR_OK, "present; VMs use AF_VSOCK");
		return;
	}
	set(it, ORCH_DOCTOR_DEGRADED,
	    "cannot open /dev/vhost-vsock: %s; VMs use virtio-serial channels instead "
	    "(transport \"auto\")",
	    strerror(errno));
	fix(it, "modprobe vhost_vsock (KVM hosts); nothing to do if virtio-serial is fine");
}

static void check_libvirtd(const struct orch_doctor_opts *o, struct orch_doctor_report *r)
{
	bool req = needs_libvirt(o->cfg);
	struct orch_doctor_item *it = add(r, "libvirtd", "libvirtd reachable", req);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX, .sun_path = LIBVIRT_SOCK};
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		set(it, ORCH_DOCTOR_OK, "libvirtd answers on %s", LIBVIRT_SOCK);
		return;
	}
	set(it, req ? ORCH_DOCTOR_MISSING : ORCH_DOCTOR_DEGRADED, "cannot connect to %s: %s%s",
	    LIBVIRT_SOCK, strerror(errno), req ? "" : " (only the libvirt backend needs it)");
	fix(it, "start it: scripts/libvirtd-up (without systemd: mkdir -p /var/log/libvirt; "
		"virtlogd --daemon; libvirtd --daemon), or systemctl start libvirtd");
}

static void check_virtiofsd(const struct orch_doctor_opts *o, struct orch_doctor_report *r)
{
	bool req = needs_libvirt(o->cfg);
	struct orch_doctor_item *it = add(r, "virtiofsd", "virtiofsd present", req);
	static const char *const paths[] = {"/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd",
					    "/usr/lib/virtiofsd"};
	for (size_t i = 0; i < ELEMENTSOF(paths); i++)
		if (access(paths[i], X_OK) == 0) {
			set(it, ORCH_DOCTOR_OK, "%s", paths[i]);
			return;
		}
	char buf[512];
	if (find_in_path("virtiofsd", buf, sizeof(buf))) {
		set(it, ORCH_DOCTOR_OK, "%s", buf);
		return;
	}
	set(it, req ? ORCH_DOCTOR_MISSING : ORCH_DOCTOR_DEGRADED,
	    "no virtiofsd found (needed to share workspaces with VMs)");
	fix(it, "apt-get install qemu-system-common (Debian 12: /usr/lib/qemu/virtiofsd) or "
		"the virtiofsd package");
}

static void check_bwrap(struct orch_doctor_report *r)
{
	struct orch_doctor_item *it = add(r, "bwrap", "bubblewrap", true);
	char path[512];
	if (!find_in_path("bwrap", path, sizeof(path))) {
		set(it, ORCH_DOCTOR_MISSING, "bwrap not found in PATH");
		fix(it, "apt-get install bubblewrap");
		return;
	}
	const char *argv[] = {path,
			      "--ro-bind",
			      "/",
			      "/",
			      "--unshare-all",
			      "--die-with-parent",
			      "--new-session",
			      "/bin/true",
			      NULL};
	int st = run_as_nobody(argv, false);
	if (st == 0) {
		set(it, ORCH_DOCTOR_OK, "%s builds a jail as an unprivileged uid", path);
		return;
	}
	set(it, ORCH_DOCTOR_MISSING, "%s cannot build a jail as uid %d (exit %d)", path, NOBODY,
	    st);
	fix(it, "enable unprivileged user namespaces (see the userns item); bwrap must not "
		"be restricted by AppArmor/SELinux policy for orch's agent uids");
}

static void check_userns(struct orch_doctor_report *r)
{
	struct orch_doctor_item *it = add(r, "userns", "user namespaces", true);
	int st = run_as_nobody(NULL, true);
	if (st == 0) {
		set(it, ORCH_DOCTOR_OK, "an unprivileged uid can create a user namespace");
		return;
	}
	set(it, ORCH_DOCTOR_MISSING, "an unprivileged uid cannot create a user namespace");
	fix(it, "sysctl -w user.max_user_namespaces=15000 kernel.unprivileged_userns_clone=1 "
		"(and persist it in /etc/sysctl.d/)");
}

/* Finds the cgroup2 mount and the v1 hierarchies' controllers in /proc/self/mountinfo. */
static void check_cgroups(struct orch_doctor_report *r)
{
	struct orch_doctor_item *it = add(r, "cgroup", "cgroup v2 controllers", false);
	static const char *const want[] = {"memory", "pids", "cpu"};
	bool v2[3] = {false}, v1[3] = {false};
	char v2root[256] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[1024];
	while (f && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		char mnt[256], type[32], src[64], opts[512] = "";
		if (sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1 ||
		    sscanf(sep + 3, "%31s %63s %511s", type, src, opts) < 2)
			continue;
		if (!strcmp(type, "cgroup2") && !v2root[0])
			snprintf(v2root, sizeof(v2root), "%s", mnt);
		if (!strcmp(type, "cgroup"))
			for (size_t i = 0; i < 3; i++) {
				char *p = strstr(opts, want[i]);
				size_t n = strlen(want[i]);
				v1[i] |= p && (p == opts || p[-1] == ',') &&
					 (p[n] == 0 || p[n] == ',' || p[n] == '\n');
			}
	}
	if (f)
		fclose(f);
	if (v2root[0]) {
		char path[300], ctl[256] = "";
		snprintf(path, sizeof(path), "%s/cgroup.controllers", v2root);
		FILE *c = fopen(path, "re");
		if (c && fgets(ctl, sizeof(ctl), c))
			for (size_t i = 0; i < 3; i++) {
				char *p = strstr(ctl, want[i]);
				size_t n = strlen(want[i]);
				v2[i] = p && (p == ctl || p[-1] == ' ') &&
					(p[n] == 0 || p[n] == ' ' || p[n] == '\n');
			}
		if (c)
			fclose(c);
	}
	char missing[64] = "", fallback[64] = "", lost[64] = "";
	for (size_t i = 0; i < 3; i++) {
		if (v2[i])
			continue;
		strcat(strcat(missing, missing[0] ? ", " : ""), want[i]);
		if (v1[i])
			strcat(strcat(fallback, fallback[0] ? ", " : ""), want[i]);
		else
			strcat(strcat(lost, lost[0] ? ", " : ""), want[i]);
	}
	if (!missing[0]) {
		set(it, ORCH_DOCTOR_OK, "cgroup v2 at %s offers memory, pids, cpu", v2root);
		return;
	}
	set(it, ORCH_DOCTOR_DEGRADED,
	    "cgroup v2%s%s lacks %s%s%s%s%s (local backend; inside VM guests v2 has them all)",
	    v2root[0] ? " at " : " is not mounted", v2root, missing,
	    fallback[0] ? "; cgroup v1 enforces " : "", fallback, lost[0] ? "; NOT enforced: " : "",
	    lost);
	fix(it, "boot the host with systemd.unified_cgroup_hierarchy=1, or delegate the "
		"controllers to orchd's cgroup (echo '+memory +pids +cpu' > "
		"<parent>/cgroup.subtree_control)");
}

const char *orch_doctor_image_dir(char *buf, size_t len)
{
	const char *e = getenv("ORCH_VM_OUT");
	if (e && *e)
		snprintf(buf, len, "%s/image", e);
	else if (access(ORCH_DATADIR "/image", X_OK) == 0)
		snprintf(buf, len, "%s", ORCH_DATADIR "/image");
	else
		snprintf(buf, len, "%s", ORCH_SOURCEDIR "/vm-images/out/image");
	return buf;
}

static bool check_image(const struct orch_doctor_opts *o, const char *dir,
			struct orch_doctor_report *r)
{
	bool req = needs_libvirt(o->cfg);
	struct orch_doctor_item *it = add(r, "image", "guest image built", req);
	static const char *const files[] = {"vmlinuz", "initrd.img"};
	char p[600];
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		if (access(p, R_OK) < 0) {
			set(it, req ? ORCH_DOCTOR_MISSING : ORCH_DOCTOR_DEGRADED, "%s: %s%s", p,
			    strerror(errno), req ? "" : " (only the libvirt backend needs it)");
			fix(it, "vm-images/build (cached; rebuilds only when inputs change)");
			return false;
		}
	}
	bool root = false;
	static const char *const roots[] = {"rootfs.erofs", "rootfs.squashfs"};
	for (size_t i = 0; i < ELEMENTSOF(roots) && !root; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, roots[i]);
		root = access(p, R_OK) == 0;
	}
	if (!root) {
		set(it, req ? ORCH_DOCTOR_MISSING : ORCH_DOCTOR_DEGRADED,
		    "%s has a kernel and initrd but no rootfs.erofs/rootfs.squashfs", dir);
		fix(it, "vm-images/build --force");
		return false;
	}
	set(it, ORCH_DOCTOR_OK, "%s", dir);
	return true;
}

static void check_keys(const struct orch_doctor_opts *o, struct orch_doctor_report *r)
{
	size_t n = o->cfg ? o->cfg->llm.n_upstreams : 0;
	struct orch_doctor_item *it = add(r, "keys", "API key files private", n > 0);
	if (n == 0) {
		set(it, ORCH_DOCTOR_OK, "%s",
		    o->cfg ? "no LLM upstream configured (no key files)"
			   : "no configuration given (--config or $ORCH_CONFIG): no key files to "
			     "check");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *k = o->cfg->llm.upstreams[i].key_file;
		struct stat st;
		if (stat(k, &st) < 0) {
			set(it, ORCH_DOCTOR_MISSING, "key file %s: %s", k, strerror(errno));
			fix(it, "put the key in %s (one line), chown root %s, chmod 0600 %s", k, k,
			    k);
			return;
		}
		if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
			set(it, ORCH_DOCTOR_MISSING,
			    "key file %s is %s, owner uid %u, mode %04o: readable by more than "
			    "orchd",
			    k, S_ISREG(st.st_mode) ? "a file" : "not a regular file",
			    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
			fix(it, "chown %u %s && chmod 0600 %s", (unsigned)geteuid(), k, k);
			return;
		}
	}
	set(it, ORCH_DOCTOR_OK, "%zu key file%s, mode 0600 or stricter, owned by orchd's uid", n,
	    n == 1 ? "" : "s");
}

static void check_state_dir(const struct orch_doctor_opts *o, struct orch_doctor_report *r)
{
	const char *d = o->cfg && o->cfg->state_dir ? o->cfg->state_dir : ORCHD_DEFAULT_STATE_DIR;
	struct orch_doctor_item *it = add(r, "state-dir", "state directory", true);
	struct stat st;
	if (lstat(d, &st) < 0) {
		set(it, ORCH_DOCTOR_DEGRADED, "%s does not exist yet (orchd creates it)", d);
		fix(it, "install -d -m 0700 -o root %s (or let orchd create it)", d);
		return;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0022)) {
		set(it, ORCH_DOCTOR_MISSING,
		    "%s: %s, owner uid %u, mode %04o (the store and task output must not be "
		    "writable by anyone but orchd)",
		    d, S_ISDIR(st.st_mode) ? "directory" : "not a directory", (unsigned)st.st_uid,
		    (unsigned)(st.st_mode & 07777));
		fix(it, "chown %u %s && chmod 0711 %s", (unsigned)geteuid(), d, d);
		return;
	}
	if (st.st_mode & 0004) {
		set(it, ORCH_DOCTOR_DEGRADED, "%s, mode %04o: anyone can list task spools", d,
		    (unsigned)(st.st_mode & 07777));
		fix(it, "chmod o-r %s (orchd keeps o+x when the workspaces live inside it)", d);
		return;
	}
	set(it, ORCH_DOCTOR_OK, "%s, mode %04o", d, (unsigned)(st.st_mode & 07777));
}

/* The agent CLIs `orch agents` installed (their current versions). */
static void check_agents(const struct orch_doctor_opts *o, struct orch_doctor_report *r)
{
	const char *d = o->cfg ? o->cfg->agents_dir : orch_agents_dir_default();
	struct orch_doctor_item *it = add(r, "agents", "agent CLIs", false);
	char list[400];
	int n = orch_agents_summary(d, list, sizeof(list));
	if (n < 0) {
		set(it, ORCH_DOCTOR_MISSING, "cannot read %s: %s", d, strerror(-n));
		fix(it, "check the permissions of %s (agents_dir)", d);
	} else if (n == 0) {
		set(it, ORCH_DOCTOR_DEGRADED, "none installed in %s: agent profiles cannot run", d);
		fix(it, "orch agents install all (needs npm and the npm registry)");
	} else {
		set(it, ORCH_DOCTOR_OK, "%s in %s", list, d);
	}
}

void orch_doctor_run(const struct orch_doctor_opts *o, struct orch_doctor_report *r)
{
	*r = (struct orch_doctor_report){0};
	char dir[512], qemu[512];
	orch_doctor_image_dir(dir, sizeof(dir));
	if (o->image_dir)
		snprintf(dir, sizeof(dir), "%s", o->image_dir);
	bool have_qemu = o->qemu ? (snprintf(qemu, sizeof(qemu), "%s", o->qemu), true)
				 : find_in_path("qemu-system-x86_64", qemu, sizeof(qemu));

	check_bwrap(r);
	check_userns(r);
	check_cgroups(r);
	check_state_dir(o, r);
	check_keys(o, r);
	check_agents(o, r);
	bool image = check_image(o, dir, r);
	struct orch_doctor_item *q = add(r, "qemu", "QEMU", needs_libvirt(o->cfg));
	if (have_qemu) {
		set(q, ORCH_DOCTOR_OK, "%s", qemu);
	} else {
		set(q, needs_libvirt(o->cfg) ? ORCH_DOCTOR_MISSING : ORCH_DOCTOR_DEGRADED,
		    "qemu-system-x86_64 not found in PATH");
		fix(q, "apt-get install qemu-system-x86");
	}
	check_libvirtd(o, r);
	check_virtiofsd(o, r);
	check_vhost_vsock(r);
	check_kvm(o, dir, image, have_qemu ? qemu : NULL, r);
	for (size_t i = 0; i < r->n; i++)
		if (r->items[i].required && r->items[i].status == ORCH_DOCTOR_MISSING)
			r->failed = true;
}

const char *orch_doctor_status_name(enum orch_doctor_status s)
{
	switch (s) {
	case ORCH_DOCTOR_OK:
		return "ok";
	case ORCH_DOCTOR_DEGRADED:
		return "degraded";
	case ORCH_DOCTOR_MISSING:
		return "missing";
	}
	return "?";
}

json_t *orch_doctor_report_json(const struct orch_doctor_report *r)
{
	json_t *items = json_array();
	for (size_t i = 0; items && i < r->n; i++) {
		const struct orch_doctor_item *it = &r->items[i];
		json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:b, s:s, s:s}", "id",
						       it->id, "title", it->title, "status",
						       orch_doctor_status_name(it->status),
						       "required", it->required, "detail",
						       it->detail, "fix", it->fix));
	}
	return json_pack("{s:b, s:o}", "ok", !r->failed, "items", items);
}
