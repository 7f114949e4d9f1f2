#!/usr/bin/env bash
# AF_VSOCK for real (meson suite 'e2e'): the host here has no /dev/vhost-vsock, so the
# vsock code runs inside a guest whose kernel has the vsock_loopback transport (CID 1 is
# the guest itself). The guest boots the image's kernel and read-only root (plain QEMU,
# TCG) with a test-only initramfs (vm-images/build-test-initrd) that runs, as root:
#   check_transport_vsock   proto/transport: listen, dial, accept, peer CID and port,
#                           reserved source ports, unprivileged uid refused (EACCES)
#   orch-vsock-guest-test   orchd's lanes (dispatch by CID, refusals, the squatting
#                           refusal) and the supervisor's shell listener over vsock
# and prints their output on the console, which this script reads and checks: every
# program's exit status and each property's "ok:" line. Exits 77 with the reason when
# QEMU or the image cannot be had here.
#
#   tests/vm/vsock-guest.sh CHECK_TRANSPORT_VSOCK ORCH_VSOCK_GUEST_TEST
set -uo pipefail
src=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR not set (run through meson test)}
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}
progs=("$@")
[ "${#progs[@]}" = 2 ] || { echo "usage: vsock-guest.sh CHECK_TRANSPORT_VSOCK ORCH_VSOCK_GUEST_TEST"; exit 2; }

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	[ -f "${T:-/nonexistent}/console.log" ] && { echo "--- guest console"; tail -n 80 "$T/console.log"; }
	exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root (the image builder uses chroot)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (scripts/install-deps --vm)"
sup=$build/guest/orch-supervisor
[ -x "$sup" ] || skip "orch-supervisor is not built"
out=${ORCH_VM_OUT:-$src/vm-images/out}
image=$("$src/vm-images/build" --quiet --print --supervisor "$sup" --out "$out") ||
	fail "vm-images/build failed"

T=$(mktemp -d /tmp/orch-vsock-guest.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$src/vm-images/build-test-initrd" --image "$image" --out "$T/initrd.img" "${progs[@]}" ||
	fail "vm-images/build-test-initrd failed"

accel=tcg
[ -w /dev/kvm ] && [ "${ORCH_VSOCK_GUEST_ACCEL:-tcg}" = kvm ] && accel=kvm
timeout 900 qemu-system-x86_64 -machine "pc,accel=$accel" -m 512 -smp 1 \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial "file:$T/console.log" \
	-kernel "$image/vmlinuz" -initrd "$T/initrd.img" \
	-append "console=ttyS0 panic=-1 quiet root=/dev/vda rootfstype=$(cat "$image/rootfs-type") orch.workspace=none" \
	-drive "file=$image/rootfs.$(cat "$image/rootfs-type"),format=raw,if=virtio,readonly=on" \
	>"$T/qemu.log" 2>&1
rc=$?
[ "$rc" = 0 ] || { cat "$T/qemu.log"; fail "qemu exited with $rc (124: the guest did not power off in time)"; }
log=$(tr -d '\r' <"$T/console.log" | grep '^orch-guest-test: ')
echo "$log" | sed 's/^orch-guest-test: /# guest: /'
grep -q '^orch-guest-test: FAIL' <<<"$log" && fail "the guest's initramfs failed"
grep -qx 'orch-guest-test: done' <<<"$log" || fail "the guest did not finish its tests"
grep -q 'vsock modules: .*vsock_loopback' <<<"$log" || fail "vsock_loopback is not loaded in the guest"
# Sanitizer builds: a report (UBSan's do not change the exit status) fails the test.
grep -Eq 'runtime error:|AddressSanitizer|LeakSanitizer' <<<"$log" && fail "a sanitizer report in the guest"

passed=0
expect() { # NAME PATTERN (grep -E on the program's lines)
	grep -Eq "^orch-guest-test: $1: $2" <<<"$log" || fail "$1 did not show /$2/"
	passed=$((passed + 1))
}
for p in check_transport_vsock orch-vsock-guest-test; do
	grep -qx "orch-guest-test: $p rc=0" <<<"$log" || fail "$p failed in the guest ($(grep "orch-guest-test: $p rc=" <<<"$log"))"
done
expect check_transport_vsock 'ok: vsock loopback end to end: peer CID 1, unreserved peer port [0-9]+, bytes carried'
expect check_transport_vsock 'ok: a peer of another CID is refused'
expect check_transport_vsock 'ok: a connection from the reserved source port [0-9]+ is seen with that port'
expect check_transport_vsock 'ok: uid 65534 cannot listen on the reserved vsock port 700: .*Permission denied'
expect check_transport_vsock 'ok: uid 65534 cannot take a reserved source port'
expect check_transport_vsock 'ok: root listens on the reserved port 700; a second listener gets EADDRINUSE'
expect orch-vsock-guest-test 'ok: uid 65534 cannot take orchd.s lane ports: .*CAP_NET_BIND_SERVICE'
expect orch-vsock-guest-test 'ok: orchd.s lanes listen on the reserved vsock ports 700 and 701'
expect orch-vsock-guest-test 'ok: a second listener is refused: .*taken'
expect orch-vsock-guest-test 'ok: connections reach the owner of their peer CID \(1\), each on its lane'
expect orch-vsock-guest-test 'ok: a CID with no VM, or refused by its VM, is closed and reported'
expect orch-vsock-guest-test 'ok: the shell listener refuses a connection from an unreserved port'
expect orch-vsock-guest-test 'ok: a connection from the reserved port [0-9]+ gets a working shell in the agent.s jail \(uid 10000\)'
expect orch-vsock-guest-test 'ok: a listener for the host.s CID refuses CID 1 even from a reserved port'
echo "ok: $passed vsock properties held inside the guest ($accel)"
echo PASS
