/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "cleanup.h"
#include "doctor-kvm.h"

#define PROBE_PORT 0x10
#define PROBE_VALUE 42

/* Step 1, in a child: exits 0 when the vCPU ran the code, else 10 + the failed step. */
static _Noreturn void ioctl_probe_child(int report_fd)
{
	/* mov al, 42; out 0x10, al; hlt */
	static const uint8_t code[] = {0xb0, PROBE_VALUE, 0xe6, PROBE_PORT, 0xf4};
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		_exit(10);
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		_exit(11);
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		_exit(12);
	uint8_t *mem =
		mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(13);
	memcpy(mem, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0x1000,
		.memory_size = 0x1000,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		_exit(14);
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		_exit(15);
	int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0)
		_exit(16);
	struct kvm_run *run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		_exit(16);
	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		_exit(17);
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		_exit(17);
	struct kvm_regs regs = {.rip = 0x1000, .rflags = 0x2};
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		_exit(18);
	for (int i = 0; i < 16; i++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			_exit(19);
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PROBE_PORT &&
		    run->io.direction == KVM_EXIT_IO_OUT) {
			uint8_t v = *((uint8_t *)run + run->io.data_offset);
			ssize_t n = write(report_fd, &v, 1);
			(void)n;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_HLT)
			_exit(0);
		_exit(20);
	}
	_exit(21);
}

static const char *ioctl_step(int code)
{
	switch (code) {
	case 10:
		return "cannot open /dev/kvm";
	case 11:
		return "unexpected KVM API version";
	case 12:
		return "KVM_CREATE_VM failed";
	case 13:
	case 14:
		return "cannot give the VM memory";
	case 15:
	case 16:
		return "cannot create a vCPU";
	case 17:
	case 18:
		return "cannot set vCPU registers";
	case 19:
		return "KVM_RUN failed";
	case 20:
		return "the vCPU exited for an unexpected reason";
	default:
		return "the vCPU never halted";
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for pid until deadline; kills it after. Returns its wait status, -ETIMEDOUT. */
static int wait_deadline(pid_t pid, int64_t deadline)
{
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (now_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			return -ETIMEDOUT;
		}
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
}

static enum orch_kvm_verdict ioctl_probe(unsigned timeout_ms, char *detail, size_t len)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(detail, len, "pipe: %s", strerror(errno));
		return ORCH_KVM_UNUSABLE;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		ioctl_probe_child(p[1]);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(detail, len, "fork: %s", strerror(errno));
		return ORCH_KVM_UNUSABLE;
	}
	int st = wait_deadline(pid, now_ms() + timeout_ms);
	uint8_t v = 0;
	ssize_t n = read(p[0], &v, 1);
	close(p[0]);
	if (st == -ETIMEDOUT) {
		snprintf(detail, len, "a 5-byte test guest did not halt within %u ms", timeout_ms);
		return ORCH_KVM_UNUSABLE;
	}
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(detail, len, "%s",
			 st >= 0 && WIFEXITED(st) ? ioctl_step(WEXITSTATUS(st))
						  : "the probe crashed");
		return ORCH_KVM_UNUSABLE;
	}
	if (n != 1 || v != PROBE_VALUE) {
		snprintf(detail, len, "the test guest's output was wrong");
		return ORCH_KVM_UNUSABLE;
	}
	return ORCH_KVM_OK;
}

/* Step 2: QEMU boots the kernel; "Linux version" on the serial console means the
 * decompressor finished and the kernel proper runs. */
enum orch_kvm_verdict orch_boot_probe(const char *kernel, const char *qemu, const char *accel,
				      unsigned timeout_ms, char *detail, size_t len)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(detail, len, "pipe: %s", strerror(errno));
		return ORCH_KVM_UNUSABLE;
	}
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(p[1], 2) < 0)
			_exit(127);
		const char *argv[] = {
			qemu,	    "-accel",	   accel,
			"-machine", "pc",	   "-m",
			"256",	    "-nodefaults", "-no-user-config",
			"-display", "none",	   "-serial",
			"stdio",    "-no-reboot",  "-kernel",
			kernel,	    "-append",	   "console=ttyS0 panic=-1 earlyprintk=ttyS0",
			NULL};
		execv(qemu, (char **)argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		snprintf(detail, len, "fork: %s", strerror(errno));
		return ORCH_KVM_UNUSABLE;
	}
	int64_t start = now_ms(), deadline = start + timeout_ms;
	char buf[8192];
	size_t used = 0;
	bool seen = false, eof = false;
	while (!seen && !eof && now_ms() < deadline) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		int64_t left = deadline - now_ms();
		int r = poll(&pf, 1, left > 0 ? (int)left : 0);
		if (r <= 0)
			continue;
		if (used >= sizeof(buf) - 1) /* keep the tail */
			memmove(buf, buf + sizeof(buf) / 2, used -= sizeof(buf) / 2);
		ssize_t n = read(p[0], buf + used, sizeof(buf) - 1 - used);
		if (n <= 0) {
			eof = true;
			break;
		}
		used += (size_t)n;
		buf[used] = 0;
		seen = strstr(buf, "Linux version") != NULL;
	}
	int64_t took = now_ms() - start;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (seen) {
		snprintf(detail, len, "a test boot (-accel %s) reached the kernel in %lld ms",
			 accel, (long long)took);
		return ORCH_KVM_OK;
	}
	buf[used] = 0;
	char *last = buf;
	for (char *s = strtok(buf, "\r\n"); s; s = strtok(NULL, "\r\n"))
		last = s;
	if (eof)
		snprintf(detail, len, "QEMU with -accel %s failed: %.200s", accel, last);
	else
		snprintf(detail, len,
			 "a test boot of %s (-accel %s) did not reach the kernel within %u ms "
			 "(it hangs before the kernel runs, as on a PVM-only KVM)",
			 kernel, accel, timeout_ms);
	return ORCH_KVM_UNUSABLE;
}

enum orch_kvm_verdict orch_kvm_probe(const char *kernel, const char *qemu, unsigned timeout_ms,
				     char *detail, size_t detail_len)
{
	if (access("/dev/kvm", F_OK) < 0) {
		snprintf(detail, detail_len, "/dev/kvm does not exist");
		return ORCH_KVM_ABSENT;
	}
	enum orch_kvm_verdict v =
		ioctl_probe(timeout_ms < 3000 ? timeout_ms : 3000, detail, detail_len);
	if (v != ORCH_KVM_OK)
		return v;
	if (!kernel || !qemu || access(kernel, R_OK) < 0 || access(qemu, X_OK) < 0) {
		snprintf(detail, detail_len,
			 "a test guest ran; no guest kernel%s to test-boot (build the image)",
			 qemu && access(qemu, X_OK) == 0 ? "" : " or QEMU");
		return ORCH_KVM_UNTESTED;
	}
	return orch_boot_probe(kernel, qemu, "kvm", timeout_ms, detail, detail_len);
}
