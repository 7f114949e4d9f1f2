#!/usr/bin/env bash
# Runs the VM boot benchmark: builds the guest image (cached), starts libvirtd, then
# vm-boot-bench, which boots the orch guest N times to the supervisor's hello next to the
# same kernel with a trivial /init that powers off at once.
#
#   bench/vm/vm-boot.sh [BUILD_DIR] [vm-boot-bench options: --runs N --accel kvm|tcg]
# ORCH_VM_OUT and ORCH_VM_KERNEL (cloud|microvm) choose the image, as for vm-images/build.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
shift || true
[ -x "$build/bench/vm/vm-boot-bench" ] || { echo "build first: ninja -C $build" >&2; exit 1; }
"$src/scripts/libvirtd-up"
image=$("$src/vm-images/build" --quiet --print --supervisor "$build/guest/orch-supervisor" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}")
work=$(mktemp -d /tmp/orch-vm-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -p "$work/workspace" "$work/chan"
if getent passwd libvirt-qemu >/dev/null; then chown libvirt-qemu "$work/chan"; fi
"$build/bench/vm/vm-boot-bench" --image "$image" --work "$work" "$@"
