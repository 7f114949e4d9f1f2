/* SPDX-License-Identifier: Apache-2.0 */
/* orch-escape-probe ATTEMPT [ARG]: runs one escape attempt from inside a jail.
 * Prints "BLOCKED <detail>" and exits 0 when the attempt failed as it must, prints
 * "ESCAPED <detail>" and exits 1 when it succeeded, exits 2 on a usage error. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <linux/netlink.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

static int blocked(const char *what, int e)
{
	printf("BLOCKED %s: %s\n", what, strerror(e));
	return 0;
}

static int escaped(const char *what)
{
	printf("ESCAPED %s\n", what);
	return 1;
}

static int try_open(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		return blocked(path, errno);
	close(fd);
	return escaped(path);
}

static int try_connect(const char *ip, int port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return blocked("socket", errno);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &sin.sin_addr);
	if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return blocked("connect", errno);
	return escaped("connect");
}

static int fork_bomb(void)
{
	int n = 0;
	for (; n < 4096; n++) {
		pid_t p = fork();
		if (p < 0) {
			int e = errno;
			printf("BLOCKED fork after %d children: %s\n", n, strerror(e));
			kill(0, SIGKILL); /* the whole session; the jail ends with it */
			return 0;
		}
		if (p == 0) {
			pause();
			_exit(0);
		}
	}
	kill(0, SIGKILL);
	return escaped("fork bomb: 4096 children");
}

static int memory_hog(void)
{
	size_t total = 0;
	for (int i = 0; i < 1024; i++) { /* up to 1 GiB */
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED)
			return blocked("mmap", errno);
		memset(p, 1, 1 << 20);
		total += 1 << 20;
	}
	printf("ESCAPED memory hog: %zu MiB touched\n", total >> 20);
	return 1;
}

/* socket(FAMILY, TYPE, PROTO): blocked means the filter's EPERM, not a missing module. */
static int try_socket(const char *what, int family, int type, int proto)
{
	int s = socket(family, type | SOCK_CLOEXEC, proto);
	if (s >= 0) {
		close(s);
		return escaped(what);
	}
	if (errno != EPERM) {
		printf("NOT-BLOCKED-BY-FILTER %s: %s\n", what, strerror(errno));
		return 1;
	}
	return blocked(what, errno);
}

/* What a jail must still be able to do: local and IP sockets, routing netlink (ip addr),
 * the personality query and PER_LINUX. Prints ALLOWED or DENIED <what>. */
static int allowed(void)
{
	static const struct {
		const char *what;
		int family, type, proto;
	} ok[] = {
		{"AF_UNIX", AF_UNIX, SOCK_STREAM, 0},
		{"AF_INET", AF_INET, SOCK_STREAM, 0},
		{"AF_INET6", AF_INET6, SOCK_DGRAM, 0},
		{"AF_NETLINK/NETLINK_ROUTE", AF_NETLINK, SOCK_RAW, NETLINK_ROUTE},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int s = socket(ok[i].family, ok[i].type | SOCK_CLOEXEC, ok[i].proto);
		if (s < 0 && errno == EPERM) {
			printf("DENIED %s: %s\n", ok[i].what, strerror(errno));
			return 1;
		}
		if (s >= 0)
			close(s);
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		printf("DENIED socketpair(AF_UNIX): %s\n", strerror(errno));
		return 1;
	}
	close(sv[0]);
	close(sv[1]);
	if (personality(0xffffffff) < 0 || personality(PER_LINUX) < 0) {
		printf("DENIED personality: %s\n", strerror(errno));
		return 1;
	}
	printf("ALLOWED\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *a = argv[1];
	const char *arg = argc > 2 ? argv[2] : "";
	setvbuf(stdout, NULL, _IONBF, 0);

	if (!strcmp(a, "read"))
		return try_open(arg, O_RDONLY);
	if (!strcmp(a, "write"))
		return try_open(arg, O_WRONLY | O_CREAT | O_TRUNC);
	if (!strcmp(a, "connect"))
		return try_connect(arg, argc > 3 ? atoi(argv[3]) : 80);
	if (!strcmp(a, "vsock")) {
		int s = socket(AF_VSOCK, SOCK_STREAM, 0);
		return s < 0 ? blocked("socket(AF_VSOCK)", errno) : escaped("socket(AF_VSOCK)");
	}
	if (!strcmp(a, "ptrace")) {
		pid_t p = fork();
		if (p == 0) {
			pause();
			_exit(0);
		}
		long r = ptrace(PTRACE_ATTACH, p, NULL, NULL);
		int e = errno;
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		return r < 0 ? blocked("ptrace(PTRACE_ATTACH)", e) : escaped("ptrace");
	}
	if (!strcmp(a, "mount"))
		return mount("none", "/tmp", "tmpfs", 0, NULL) < 0 ? blocked("mount", errno)
								   : escaped("mount");
	if (!strcmp(a, "unshare"))
		return unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0 ? blocked("unshare", errno)
								: escaped("unshare");
	if (!strcmp(a, "clone-newuser")) {
		long r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0);
		if (r == 0)
			_exit(0);
		return r < 0 ? blocked("clone(CLONE_NEWUSER)", errno) : escaped("clone");
	}
	if (!strcmp(a, "setns")) {
		int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return blocked("open ns", errno);
		return setns(fd, 0) < 0 ? blocked("setns", errno) : escaped("setns");
	}
	if (!strcmp(a, "keyctl")) {
		long r = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1);
		return r < 0 ? blocked("keyctl", errno) : escaped("keyctl");
	}
	if (!strcmp(a, "bpf")) {
		union bpf_attr attr;
		memset(&attr, 0, sizeof(attr));
		attr.map_type = BPF_MAP_TYPE_ARRAY;
		attr.key_size = 4;
		attr.value_size = 4;
		attr.max_entries = 1;
		long r = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
		return r < 0 ? blocked("bpf", errno) : escaped("bpf");
	}
	if (!strcmp(a, "chroot"))
		return chroot("/tmp") < 0 ? blocked("chroot", errno) : escaped("chroot");
	if (!strcmp(a, "setuid"))
		return setuid(0) < 0 ? blocked("setuid(0)", errno) : escaped("setuid(0)");
	if (!strcmp(a, "socket")) { /* socket FAMILY [PROTO] */
		int fam = atoi(arg), proto = argc > 3 ? atoi(argv[3]) : 0;
		char what[64];
		snprintf(what, sizeof(what), "socket(%d, %d)", fam, proto);
		return try_socket(what, fam,
				  fam == AF_NETLINK || fam == AF_PACKET ? SOCK_RAW : SOCK_SEQPACKET,
				  proto);
	}
	if (!strcmp(a, "allowed"))
		return allowed();
	if (!strcmp(a, "modify_ldt")) {
		char buf[16];
		long r = syscall(SYS_modify_ldt, 0, buf, sizeof(buf));
		return r < 0 && errno == EPERM ? blocked("modify_ldt", errno)
					       : escaped("modify_ldt");
	}
	if (!strcmp(a, "uselib")) {
		long r = syscall(SYS_uselib, "/usr/lib/x86_64-linux-gnu/libc.so.6");
		return r < 0 && errno == EPERM ? blocked("uselib", errno) : escaped("uselib");
	}
	if (!strcmp(a, "ustat")) {
		char buf[64];
		long r = syscall(SYS_ustat, 0x801, buf);
		return r < 0 && errno == EPERM ? blocked("ustat", errno) : escaped("ustat");
	}
	if (!strcmp(a, "sysfs")) {
		long r = syscall(SYS_sysfs, 3);
		return r < 0 && errno == EPERM ? blocked("sysfs", errno) : escaped("sysfs");
	}
	if (!strcmp(a, "personality")) { /* personality VALUE (hex) */
		unsigned long v = strtoul(arg, NULL, 16);
		int r = personality(v);
		return r < 0 && errno == EPERM ? blocked("personality", errno)
					       : escaped("personality");
	}
	if (!strcmp(a, "tiocsti") || !strcmp(a, "tioclinux")) {
		/* on the jail's stdin (a pipe): without the filter the kernel says ENOTTY */
		char c[2] = {11, 0};
		int r = ioctl(0, !strcmp(a, "tiocsti") ? TIOCSTI : TIOCLINUX, c);
		return r < 0 && errno == EPERM ? blocked(a, errno) : escaped(a);
	}
	if (!strcmp(a, "forkbomb"))
		return fork_bomb();
	if (!strcmp(a, "memhog"))
		return memory_hog();
	fprintf(stderr, "unknown attempt %s\n", a);
	return 2;
}
