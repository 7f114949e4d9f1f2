#!/usr/bin/env bash
# End-to-end test of the VM backend (meson suite 'e2e'): builds the guest image with the
# supervisor from this build, makes sure libvirtd runs (scripts/libvirtd-up), and runs
# vm-e2e, which boots a real guest through libvirt and drives it. Exits 77 (skip) with a
# reason when libvirt/QEMU cannot run here.
#
#   tests/vm/e2e.sh VM_E2E_BINARY
set -uo pipefail
src=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR not set (run through meson test)}
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}
driver=${1:?usage: e2e.sh VM_E2E_BINARY}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (libvirt's system instance, virtiofsd)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (scripts/install-deps --vm)"
command -v virsh >/dev/null || skip "libvirt clients not installed (scripts/install-deps --vm)"
[ -x /usr/lib/qemu/virtiofsd ] || skip "/usr/lib/qemu/virtiofsd is not installed (qemu-system-common: scripts/install-deps --vm)"
sup=$build/guest/orch-supervisor
[ -x "$sup" ] || fail "orch-supervisor is not built ($sup)"

"$src/scripts/libvirtd-up" || fail "libvirtd cannot be started (see above)"

image=$("$src/vm-images/build" --quiet --print --supervisor "$sup" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}") || {
	echo "vm-images/build failed"
	exit 1
}

work=$(mktemp -d /tmp/orch-vm-e2e.XXXXXX)
# ORCH_E2E_KEEP=1 keeps the work directory (console log, workspaces) for a look.
if [ "${ORCH_E2E_KEEP:-0}" = 1 ]; then echo "# work directory: $work"; else trap 'rm -rf "$work"' EXIT; fi
chmod 0755 "$work"
# The supervisor makes workspace/agent-N itself, owned by the agent (through virtio-fs).
mkdir -p "$work/workspace" "$work/chan"
# QEMU (the libvirt-qemu user) binds the channel sockets here.
if getent passwd libvirt-qemu >/dev/null; then chown libvirt-qemu "$work/chan"; fi

"$driver" --image "$image" --work "$work"
rc=$?
if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -f "$work/console.log" ]; then
	echo "--- guest console (last 60 lines)"
	tail -n 60 "$work/console.log"
fi
exit "$rc"
