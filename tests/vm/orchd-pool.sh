#!/usr/bin/env bash
# Pools, a VM per task, snapshots and memory given back, through orchd (meson suite 'e2e';
# docs/VM.md "Pools", "Snapshots", "Memory"). One orchd, two pooled classes:
#  - T, isolation vm-per-task with a snapshot, pool.ready 1: a task's marks (its /tmp, its
#    workspace, /dev/shm) are not seen by the next task, which runs in another VM with
#    another kernel boot id and other random bytes; the pool refills after each task and
#    after a VM is destroyed behind orchd's back; its VMs after the first are restored
#    from the snapshot and run tasks end to end; retired VMs' workspaces beyond
#    pool.keep_workspaces (2) are removed, the newest kept;
#  - S, a shared pool of one VM: the same marks ARE seen by the next task (what the first
#    class's checks would catch), and the host's resident memory of its guest falls back
#    near its idle figure after a task that touched 200 MiB and exited.
# Exits 77 (skip) with a reason when libvirt/QEMU cannot run here.
set -uo pipefail
src=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR not set (run through meson test)}
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}

. "$(dirname "$0")/../lib/vm.sh" # skip, vm_wait_for, vm_domains_destroy
[ "$(id -u)" = 0 ] || skip "needs root (libvirt's system instance, virtiofsd)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
command -v virsh >/dev/null || skip "libvirt clients not installed"
command -v jq >/dev/null || skip "jq not installed"
sup=$build/guest/orch-supervisor
orchd=$build/host/orchd
orch=$build/host/orch
[ -x "$sup" ] && [ -x "$orchd" ] && [ -x "$orch" ] || { echo "FAIL: orchd, orch or orch-supervisor not built"; exit 1; }
"$src/scripts/libvirtd-up" || { echo "FAIL: libvirtd cannot be started (scripts/libvirtd-up failed)"; exit 1; }
image=$("$src/vm-images/build" --quiet --print --supervisor "$sup" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}") || { echo "vm-images/build failed"; exit 1; }

st=$(mktemp -d /tmp/orch-pool-e2e.XXXXXX)
chmod 0755 "$st"
T=pt$$
S=ps$$
orchd_pid=
failures=0
cleanup() {
	local rc=$?
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	vm_domains_destroy "^orch-($T|$S)\."
	# Sanitizer builds: a report from orchd (UBSan's and LSan's do not change the test's
	# outcome otherwise) fails the test.
	if grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$st/orchd.log" 2>/dev/null; then
		grep -E -A30 "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$st/orchd.log" | head -80
		echo "FAIL - sanitizer report in orchd's log"
		failures=$((failures + 1))
		rc=1
	fi
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 60 "$st/orchd.log"
		for c in "$st"/vm/*/console.log; do echo "--- $c"; tail -n 15 "$c"; done
	fi
	rm -rf "$st"
	exit $rc
}
trap cleanup EXIT
passed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
o() { "$orch" --socket "$st/orch.sock" "$@"; }
pool() { o vm pools --json | jq -r --arg c "$1" ".[] | select(.class == \$c) | $2"; }
idle() { [ "$(pool "$1" .vms.idle)" -ge 1 ] 2>/dev/null; }
snapshot_ready() { [ "$(pool "$T" .snapshot.state)" = ready ]; }
task_vm() { o --json result "$1" | jq -r .vm; }

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "scheduler": { "retries": 0, "heartbeat_ms": 1000, "heartbeat_misses": 5 },
  "vms": {
    "$T": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "isolation": "vm-per-task",
            "snapshot": true, "pool": { "ready": 1, "max": 2, "keep_workspaces": 2 },
            "boot_timeout_ms": 180000 },
    "$S": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 1,
            "pool": { "ready": 1 }, "boot_timeout_ms": 180000 }
  }
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do [ -S "$st/orch.sock" ] && break; sleep 0.1; done

both_idle() { idle "$T" && idle "$S"; }
vm_wait_for 300 "each pool has a ready VM" both_idle || exit 1
ok "both pools have an idle VM ($(o vm list | grep -cE "^($T|$S)\.") VMs)"
o vm list

# The marks a task leaves in its guest, and what it sees of an earlier one's.
probe='for f in /tmp/mark /workspace/mark /dev/shm/mark; do [ -e "$f" ] && echo "seen $f"; done
echo mine > /tmp/mark; echo mine > /workspace/mark; echo mine > /dev/shm/mark 2>/dev/null
echo "boot $(cat /proc/sys/kernel/random/boot_id)"
echo "rand $(python3 -c "import os; print(os.getrandom(16).hex())")"'
# run CLASS: dispatches the probe, waits for it; sets id and out.
run() {
	id=$(o dispatch --vm "$1" -- sh -c "$probe") || { fail "dispatch to $1"; return 1; }
	out=$(timeout 300 "$orch" --socket "$st/orch.sock" logs -f "$id")
}

# Shared: the second task sees the first one's workspace mark (the checks can see).
run "$S"; run "$S"; s2=$out
echo "$s2" | grep -q "seen /workspace/mark" && ok "shared VM: task 2 sees task 1's workspace" ||
	fail "shared VM: task 2 does not see task 1's workspace ($s2)"

# vm-per-task: nothing of task 1 in task 2's VM.
vm_wait_for 120 "the snapshot template is made" snapshot_ready
# Saved by a child (reaper.h), once its guest saw its host go, without its RAM's zero pages.
made=$(grep 'msg="snapshot template made"' "$st/orchd.log" | tail -1)
case "$made" in
*zero_pages_left_out=[1-9]*) ok "the template was saved without its zero pages ($(echo "$made" | grep -o 'zero_pages_left_out=[0-9]*'))" ;;
*) fail "template: '$made'" ;;
esac
grep -q 'saving the snapshot template in line' "$st/orchd.log" &&
	fail "the template was saved on orchd's loop" || ok "the template was saved off orchd's loop, by a child"
run "$T"; t1=$out; vm1=$(task_vm "$id")
vm_wait_for 120 "the vm-per-task pool refills after a task" idle "$T" || true
run "$T"; t2=$out; vm2=$(task_vm "$id")
echo "# task 1 on $vm1: $t1"
echo "# task 2 on $vm2: $t2"
[ -n "$vm1" ] && [ "$vm1" != "$vm2" ] && ok "vm-per-task: tasks 1 and 2 ran in two VMs ($vm1, $vm2)" ||
	fail "vm-per-task: tasks ran in $vm1 and $vm2"
echo "$t2" | grep -q "^seen" && fail "vm-per-task: task 2 sees task 1's marks ($t2)" ||
	ok "vm-per-task: task 2 sees none of task 1's marks (its /tmp, workspace, /dev/shm)"
b1=$(echo "$t1" | sed -n 's/^boot //p'); b2=$(echo "$t2" | sed -n 's/^boot //p')
r1=$(echo "$t1" | sed -n 's/^rand //p'); r2=$(echo "$t2" | sed -n 's/^rand //p')
[ -n "$b1" ] && [ "$b1" != "$b2" ] && ok "the two VMs have distinct kernel boot ids" ||
	fail "kernel boot ids: $b1 / $b2"
[ -n "$r1" ] && [ "$r1" != "$r2" ] && ok "the two VMs' getrandom() differ" || fail "getrandom: $r1 / $r2"
ws1=$st/workspaces/$T/$vm1/agent-0/mark; ws2=$st/workspaces/$T/$vm2/agent-0/mark
[ -f "$ws1" ] && [ -f "$ws2" ] && ok "each task's workspace is its own on the host ($ws1, $ws2)" ||
	fail "workspaces on the host: $(ls -R "$st/workspaces/$T" 2>&1 | head -20)"
grep -q "vm=$vm2 domain=orch-$vm2" <(grep "restored from the snapshot" "$st/orchd.log") &&
	ok "task 2's VM was restored from the snapshot and ran it end to end" ||
	fail "task 2's VM $vm2 was not restored from the snapshot"
grep -qE "msg=thawed vm=$vm2 .* warm_ms=[0-9]+" "$st/orchd.log" &&
	ok "task 2's VM ran the warm-up jail before it was ready ($(grep -oE "msg=thawed vm=$vm2 .* warm_ms=[0-9]+" "$st/orchd.log" | grep -oE "warm_ms=[0-9]+"))" ||
	fail "task 2's VM $vm2 was not warmed: $(grep "msg=thawed vm=$vm2 " "$st/orchd.log")"
# Destroyed by a child (reaper.h), shortly after the task: within seconds.
gone() { ! virsh -c qemu:///system list --name | grep -qx "orch-$1"; }
vm_wait_for 60 "task 1's VM orch-$vm1 is destroyed after its task" gone "$vm1" &&
	ok "task 1's VM was destroyed after its task"

# A pool VM destroyed behind orchd's back: retired, and the pool refills.
vm_wait_for 120 "the vm-per-task pool refills" idle "$T"
victim=$(o vm list --json | jq -r --arg c "$T" '[.[] | select(.class == $c and .state == "ready")][0].name')
retired=$(pool "$T" .retired)
virsh -c qemu:///system destroy "orch-$victim" >/dev/null
gone() { ! o vm list --json | jq -e --arg n "$victim" '.[] | select(.name == $n)' >/dev/null; }
vm_wait_for 60 "the crashed VM $victim is retired" gone && ok "a crashed pool VM is retired ($victim)"
vm_wait_for 120 "the pool refills after a crash" idle "$T" &&
	ok "the pool refills after a crash ($(o vm list --json | jq -r --arg c "$T" '[.[] | select(.class == $c)][0].name'))"
[ "$(pool "$T" .retired)" -gt "$retired" ] && ok "the pool counts the retired VM" || fail "retired count"
# Retired workspaces: the newest 2 (keep_workspaces) stay: task 2's and the crashed VM's;
# task 1's, the oldest, is removed.
pruned() { [ ! -e "$st/workspaces/$T/$vm1" ]; }
vm_wait_for 60 "task 1's workspace is pruned" pruned &&
	ok "the oldest retired workspace is removed ($vm1; keep_workspaces 2)"
[ -f "$ws2" ] && [ -d "$st/workspaces/$T/$victim" ] &&
	ok "the 2 newest retired workspaces stay ($vm2 with its task's mark, $victim)" ||
	fail "retired workspaces left: $(ls "$st/workspaces/$T")"

# Memory: the shared VM's guest memory resident on the host, idle, while a task holds 200
# MiB, and after it exited.
svm=$(o vm list --json | jq -r --arg c "$S" '[.[] | select(.class == $c)][0].name')
ram() { # KiB of the guest's memory resident in its QEMU
	local pid
	pid=$(cat "/run/libvirt/qemu/orch-$svm.pid" 2>/dev/null) || return 1
	awk '/^[0-9a-f]+-[0-9a-f]+ /{m=($0 ~ /memfd:/)} /^Rss:/{if (m) s+=$2} END{print s+0}' "/proc/$pid/smaps"
}
sleep 8
idle_kb=$(ram)
o dispatch --vm "$S" -- python3 -c 'import time; b = bytearray(200 << 20)
for i in range(0, len(b), 4096): b[i] = 1
print("touched", flush=True); time.sleep(6)' >/dev/null
peak=0
for _ in $(seq 1 40); do r=$(ram); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.5; done
sleep 8
after_kb=$(ram)
echo "# $svm guest memory resident: idle $((idle_kb / 1024)) MiB, during the task $((peak / 1024)) MiB, after $((after_kb / 1024)) MiB"
[ "$peak" -gt $((idle_kb + 150 * 1024)) ] && ok "the 200 MiB task shows on the host ($((peak / 1024)) MiB)" ||
	fail "the task's 200 MiB did not show on the host (peak $((peak / 1024)) MiB)"
[ "$after_kb" -lt $((idle_kb + 40 * 1024)) ] &&
	ok "after it, the guest's memory falls back near idle ($((after_kb / 1024)) vs $((idle_kb / 1024)) MiB)" ||
	fail "guest memory after the task $((after_kb / 1024)) MiB, idle $((idle_kb / 1024)) MiB"

echo "passed $passed, failed $failures"
[ "$failures" = 0 ]
