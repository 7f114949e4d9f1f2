#!/usr/bin/env bash
# Runs the snapshot benchmark: builds the guest image (cached), starts libvirtd, then
# vm-restore-bench, which takes a snapshot template once and then, N times each, boots the
# guest cold to hello and restores it from the template to ready (docs/VM.md, "Snapshots").
#
#   bench/vm/vm-restore.sh [BUILD_DIR] [vm-restore-bench options: --runs N --accel kvm|tcg
#                           --memory MiB]
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
shift || true
[ -x "$build/bench/vm/vm-restore-bench" ] || { echo "build first: ninja -C $build" >&2; exit 1; }
"$src/scripts/libvirtd-up"
image=$("$src/vm-images/build" --quiet --print --supervisor "$build/guest/orch-supervisor" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}")
work=$(mktemp -d /tmp/orch-vm-restore.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
"$build/bench/vm/vm-restore-bench" --image "$image" --work "$work" "$@"
