# Shared pieces of the tests that boot libvirt VMs (sourced, after `set -uo pipefail`).
#
# vm_setup REASON [soft]: the test needs root (REASON says what for), QEMU and libvirt's
#   clients (else it is skipped), orchd, orch and orch-supervisor built and libvirtd
#   running (scripts/libvirtd-up): else it fails, or with "soft" it is skipped. Then
#   builds the guest image (vm-images/build, cached in $ORCH_VM_OUT). Sets src, build,
#   sup, orchd, orch and image.
# vm_need CMD...: skips the test when a command is missing.
# vm_unmount_below DIR: unmounts, deepest first, what is mounted below DIR: orchd makes a
#   libvirt VM's workspace directory a shared mount (repository tasks) and leaves it when
#   it ends, so a test's state directory cannot be removed before.
# vm_wait_for SECONDS DESC CMD...: polls CMD every 0.2 s; when it has not succeeded
#   within SECONDS, calls the test's own `fail "DESC (not within SECONDS s)"` and
#   returns 1 (the test goes on and counts it).
# vm_domains_destroy REGEX: destroys the running libvirt domains whose names match REGEX
#   (grep -E): what a test's orchd leaves behind when the test ends early.
# vm_sanitizer_report LOG: when an ASan/UBSan/LSan report is in LOG (orchd's, under a
#   sanitizer build), prints it and returns 1.

skip() {
	echo "SKIP: $*"
	exit 77
}

vm_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "$c not installed"
	done
}

vm_setup() {
	local why=$1 soft=${2:-}
	src=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR not set (run through meson test)}
	build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}
	sup=$build/guest/orch-supervisor
	orchd=$build/host/orchd
	orch=$build/host/orch
	[ "$(id -u)" = 0 ] || skip "needs root ($why)"
	vm_need qemu-system-x86_64 virsh
	if ! [ -x "$sup" ] || ! [ -x "$orchd" ] || ! [ -x "$orch" ]; then
		[ -z "$soft" ] || skip "orchd, orch or orch-supervisor not built"
		echo "FAIL: orchd, orch or orch-supervisor not built"
		exit 1
	fi
	if ! "$src/scripts/libvirtd-up"; then
		[ -z "$soft" ] || skip "libvirtd cannot be started here"
		echo "FAIL: libvirtd cannot be started (scripts/libvirtd-up failed)"
		exit 1
	fi
	image=$("$src/vm-images/build" --quiet --print --supervisor "$sup" \
		--out "${ORCH_VM_OUT:-$src/vm-images/out}") || {
		echo "vm-images/build failed"
		exit 1
	}
}

vm_unmount_below() {
	awk -v t="$1/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		xargs -r -n1 umount -l 2>/dev/null || true
}

vm_wait_for() {
	local t=$1 what=$2
	shift 2
	for _ in $(seq 1 $((t * 5))); do "$@" && return 0; sleep 0.2; done
	fail "$what (not within ${t}s)"
	return 1
}

vm_domains_destroy() {
	local d
	for d in $(virsh -c qemu:///system list --name 2>/dev/null | grep -E "$1"); do
		virsh -c qemu:///system destroy "$d" >/dev/null 2>&1
	done
}

vm_sanitizer_report() {
	local re="ERROR: AddressSanitizer|runtime error:|LeakSanitizer: detected memory leaks"
	grep -qE "$re" "$1" 2>/dev/null || return 0
	grep -E -A20 "$re" "$1" | head -60
	echo "FAIL: sanitizer report in orchd's log"
	return 1
}
