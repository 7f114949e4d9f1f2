/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/netlink.h>
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
	"open_by_handle_at", "name_to_handle_at",
	/* old interfaces with a history of bugs and no use in a build */
	"modify_ldt", "uselib", "ustat", "sysfs", NULL};

/* The socket families a jail may use: local sockets, IPv4/IPv6 (its own loopback, the
 * LLM endpoint) and netlink for routing only (ip addr). Every other family (AF_ALG,
 * AF_PACKET, AF_KEY, AF_TIPC, AF_RDS, AF_VSOCK...) is kernel attack surface, or, like
 * AF_VSOCK, not namespaced at all. */
static const int allowed_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
#define FAMILIES_MAX 64 /* above AF_MAX of any kernel: every family number below it */

/* personality() keeps the plain Linux personalities (PER_LINUX, PER_LINUX32) and the
 * query (0xffffffff); ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC and the other flags that
 * weaken a process are denied (deny_personas). */

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

static bool family_allowed(int f)
{
	for (size_t i = 0; i < ELEMENTSOF(allowed_families); i++)
		if (allowed_families[i] == f)
			return true;
	return false;
}

/* socket() and socketpair() of any family not allowed: EPERM (for AF_VSOCK as before,
 * and for the rest: a program sees "not permitted", not a missing feature). Netlink only
 * for NETLINK_ROUTE. */
static int deny_families(scmp_filter_ctx ctx, struct orch_error *err)
{
	static const int calls[] = {SCMP_SYS(socket), SCMP_SYS(socketpair)};
	int r = 0;

	for (size_t c = 0; c < ELEMENTSOF(calls) && r >= 0; c++) {
		for (int f = 0; f < FAMILIES_MAX && r >= 0; f++)
			if (!family_allowed(f))
				r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), calls[c], 1,
						     SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)f));
		if (r >= 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), calls[c], 1,
					     SCMP_A0(SCMP_CMP_GE, FAMILIES_MAX));
	}
	if (r >= 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 2,
				     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
				     SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE));
	if (r < 0)
		return orch_errno(err, r, "seccomp: cannot add the socket family rules");
	return 0;
}

/* personality(): denied unless its argument (the kernel reads 32 bits) is 0, 8 or
 * 0xffffffff. A rule compares one masked value, so the rest is covered bit by bit: with
 * bit 31 clear, any other bit set but bit 3 is denied; with bit 31 set, any bit clear. */
static int deny_personas(scmp_filter_ctx ctx, struct orch_error *err)
{
	const scmp_datum_t top = 0x80000000u;
	int nr = seccomp_syscall_resolve_name("personality");
	int r = 0;

	if (nr == __NR_SCMP_ERROR)
		return 0;
	for (unsigned b = 0; b < 31 && r >= 0; b++) {
		scmp_datum_t bit = (scmp_datum_t)1 << b;
		if (bit != 0x8) /* PER_LINUX32 */
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
					     SCMP_A0(SCMP_CMP_MASKED_EQ, top | bit, bit));
		if (r >= 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1,
					     SCMP_A0(SCMP_CMP_MASKED_EQ, top | bit, top));
	}
	if (r < 0)
		return orch_errno(err, r, "seccomp: cannot add the personality rules");
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
	if ((r = deny_families(ctx, err)) < 0 || (r = deny_personas(ctx, err)) < 0)
		return r;
	/* Typing into a terminal (TIOCSTI) or driving the console (TIOCLINUX): input for
	 * whoever holds the terminal after the agent. */
	static const unsigned long bad_ioctls[] = {TIOCSTI, TIOCLINUX};
	for (size_t i = 0; i < ELEMENTSOF(bad_ioctls); i++)
		if ((r = seccomp_rule_add(
			     ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
			     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, bad_ioctls[i]))) < 0)
			return orch_errno(err, r, "seccomp: cannot add the ioctl rule");

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
