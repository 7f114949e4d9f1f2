#!/usr/bin/env bash
# Dispatch to first output of `echo`, a VM per task from a warm pool next to the shared-VM
# default, in the same run (docs/VM.md, "Pools"). One orchd, two classes of the same
# guest: "shared" (one long-lived VM) and "pertask" (isolation vm-per-task, a snapshot,
# pool.ready 1). Before each dispatch, of either class, both classes have an idle VM (the
# pool has refilled: no restore runs beside the task). Times `orch dispatch --follow --
# echo hi` from the call to its first line.
#
#   bench/vm/vm-dispatch.sh [BUILD_DIR] [--runs N] [--log FILE]
#
# --log FILE keeps orchd's log (-vv: leases, "task running", restores, thaws) in FILE.
# Prints p50/min/max in ms for both and the ratio of the p50s (target <= 1.5x).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build}
shift || true
runs=5
log=
while [ $# -gt 0 ]; do
	case "$1" in
	--runs) runs=${2:?--runs N}; shift ;;
	--log) log=${2:?--log FILE}; shift ;;
	*) echo "usage: $0 [BUILD_DIR] [--runs N] [--log FILE]" >&2; exit 2 ;;
	esac
	shift
done
for b in host/orchd host/orch guest/orch-supervisor; do
	[ -x "$build/$b" ] || { echo "build first: ninja -C $build" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }
"$src/scripts/libvirtd-up"
image=$("$src/vm-images/build" --quiet --print --supervisor "$build/guest/orch-supervisor" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}")
st=$(mktemp -d /tmp/orch-vm-dispatch.XXXXXX)
chmod 0755 "$st"
sh=bs$$
pt=bp$$
pid=
cleanup() {
	[ -z "$pid" ] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; }
	for d in $(virsh -c qemu:///system list --name | grep -E "^orch-($sh|$pt)([.]|$)"); do
		virsh -c qemu:///system destroy "$d" >/dev/null 2>&1 || true
	done
	[ -z "$log" ] || cp "$st/orchd.log" "$log" || true
	# orchd leaves each VM's workspace a shared bind mount of itself (docs/WORKSPACES.md)
	awk -v p="$st/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$st"
}
trap cleanup EXIT
cat >"$st/orchd.json" <<JSON
{ "state_dir": "$st", "uid_base": 20000,
  "vms": {
    "$sh": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 1 },
    "$pt": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "isolation": "vm-per-task",
             "snapshot": true, "pool": { "ready": 1, "max": 2 } } } }
JSON
ORCH_VM_IMAGE=$image "$build/host/orchd" ${log:+-vv} -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
pid=$!
o() { "$build/host/orch" --socket "$st/orch.sock" "$@"; }
ready() { # the class has a VM that will take the next task at once
	o vm list --json 2>/dev/null | jq -e --arg c "$1" \
		'[.[] | select((.class // .name) == $c and .state == "ready" and
		  ((.pool.used // false) | not) and ((.pool.retiring // false) | not) and
		  all(.slots[]; .task == null))] | length > 0' \
		>/dev/null
}
snap() { [ "$(o vm pools --json 2>/dev/null | jq -r '.[0].snapshot.state')" = ready ]; }
wait_ready() { for _ in $(seq 1 1500); do ready "$1" && return 0; sleep 0.2; done; echo "no ready VM of $1" >&2; exit 1; }
for _ in $(seq 1 1500); do snap && break; sleep 0.2; done
mkfifo "$st/out"
first_output() { # CLASS -> ms from dispatch to the first line of output
	local t0 t1 line
	wait_ready "$sh"
	wait_ready "$pt"
	t0=$(date +%s%N)
	o dispatch --vm "$1" --follow -- echo hi >"$st/out" &
	read -r line <"$st/out"
	t1=$(date +%s%N)
	wait $!
	[ "$line" = hi ] || { echo "unexpected output '$line'" >&2; exit 1; }
	echo $(((t1 - t0) / 1000000))
}
a=() b=()
for i in $(seq 1 "$runs"); do
	a+=("$(first_output "$sh")")
	b+=("$(first_output "$pt")")
	echo "run $i: shared VM ${a[-1]} ms, vm-per-task from the warm pool ${b[-1]} ms"
done
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{printf "p50 %6d ms   min %6d   max %6d   (n=%d)", v[int((NR+1)/2)], v[1], v[NR], NR}'; }
p50() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
echo "shared VM (default)                   $(stats "${a[@]}")"
echo "vm-per-task, warm pool (snapshot)     $(stats "${b[@]}")"
pa=$(p50 "${a[@]}") pb=$(p50 "${b[@]}")
awk -v a="$pa" -v b="$pb" 'BEGIN{printf "ratio vm-per-task/shared p50: %.2fx (target <= 1.5x)\n", a ? b / a : 0}'
echo "pool: $(o vm pools --json | jq -c '.[0] | {made, retired, snapshot: .snapshot.state, restores: .snapshot.restores}')"
