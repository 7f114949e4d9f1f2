/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "jail-seccomp.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

const char *const sv_seccomp_denied[] = {
	/* debugging other processes */
	"ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
	/* mounts and root changes */
	"mount", "umount", "umount2", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
	"open_tree", "mount_setattr", "pivot_root", "chroot",
	/* namespaces */
	"setns", "unshare",
	/* kernel, modules, boot */
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
	"swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd", "lookup_dcookie",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
	"setdomainname", "iopl", "ioperm", "vhangup", "nfsservctl",
	/* kernel attack surface */
	"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
	"io_uring_register", "fanotify_init", "add_key", "keyctl", "request_key",
	"open_by_handle_at", "name_to_handle_at", NULL};

/* Namespace flags that clone() must not carry. */
static const unsigned long clone_ns_flags[] = {
	CLONE_NEWNS,   CLONE_NEWUTS, CLONE_NEWIPC,    CLONE_NEWUSER,
	CLONE_NEWPID,  CLONE_NEWNET, CLONE_NEWCGROUP,
#ifdef CLONE_NEWTIME
	CLONE_NEWTIME,
#endif
};

DEFINE_TRIVIAL_CLEANUP_FUNC(scmp_filter_ctx, seccomp_release)

static int deny(scmp_filter_ctx ctx, const char *name, int errnum, struct orch_error *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	int r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(errnum), nr, 0);
	if (r < 0)
		return orch_errno(err, r, "seccomp: cannot add a rule for %s", name);
	return 0;
}

int sv_seccomp_build(struct sv_seccomp *ret, struct orch_error *err)
{
	_cleanup_(seccomp_releasep) scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r;
	if (!ctx)
		return orch_err(err, -ENOMEM, "seccomp: cannot create a filter");
	/* The filter is installed by bwrap after it set no_new_privs itself. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		return orch_errno(err, r, "seccomp: cannot configure the filter");

	for (size_t i = 0; sv_seccomp_denied[i]; i++)
		if ((r = deny(ctx, sv_seccomp_denied[i], EPERM, err)) < 0)
			return r;
	/* clone3 passes its flags in memory the filter cannot read: make libc fall back. */
	if ((r = deny(ctx, "clone3", ENOSYS, err)) < 0)
		return r;
	for (size_t i = 0; i < ELEMENTSOF(clone_ns_flags); i++) {
		r = seccomp_rule_add(
			ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
			SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i], clone_ns_flags[i]));
		if (r < 0)
			return orch_errno(err, r, "seccomp: cannot add the clone rule");
	}
	/* AF_VSOCK is not namespaced: a jailed agent could dial the host directly. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
			     SCMP_A0(SCMP_CMP_EQ, AF_VSOCK));
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_VSOCK));
	if (r < 0)
		return orch_errno(err, r, "seccomp: cannot add the AF_VSOCK rule");

	_cleanup_close_ int fd = memfd_create("orch-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "seccomp: memfd_create");
	if ((r = seccomp_export_bpf(ctx, fd)) < 0)
		return orch_errno(err, r, "seccomp: cannot export the filter");
	off_t size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size > 1024 * 1024)
		return orch_err(err, -EIO, "seccomp: exported filter has a bad size");
	_cleanup_free_ unsigned char *buf = malloc((size_t)size);
	if (!buf)
		return -ENOMEM;
	if (pread(fd, buf, (size_t)size, 0) != size)
		return orch_errno(err, -EIO, "seccomp: cannot read back the filter");
	ret->bpf = TAKE_PTR(buf);
	ret->len = (size_t)size;
	return 0;
}

void sv_seccomp_done(struct sv_seccomp *s)
{
	free(s->bpf);
	s->bpf = NULL;
	s->len = 0;
}

int sv_seccomp_memfd(const struct sv_seccomp *s)
{
	_cleanup_close_ int fd = memfd_create("orch-seccomp", 0);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < s->len) {
		ssize_t n = write(fd, s->bpf + off, s->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	return TAKE_FD(fd);
}
