#!/usr/bin/env bash
# Runs the density benchmark: builds the guest image (cached), starts libvirtd, then
# vm-density, which boots N idle guests without a balloon device and N with free page
# reporting and compares the host memory they hold, idle and after a 200 MiB task
# (docs/VM.md, "Memory").
#
#   bench/vm/vm-density.sh [BUILD_DIR] [vm-density options: --vms N --memory MiB --settle S
#                                       --accel kvm|tcg --append 'KERNEL PARAMS']
# ORCH_VM_OUT and ORCH_VM_KERNEL (cloud|microvm) choose the image, as for vm-images/build.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
shift || true
[ -x "$build/bench/vm/vm-density" ] || { echo "build first: ninja -C $build" >&2; exit 1; }
"$src/scripts/libvirtd-up"
image=$("$src/vm-images/build" --quiet --print --supervisor "$build/guest/orch-supervisor" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}")
work=$(mktemp -d /tmp/orch-vm-density.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
"$build/bench/vm/vm-density" --image "$image" --work "$work" "$@"
