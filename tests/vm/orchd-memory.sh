#!/usr/bin/env bash
# Memory hot-plug through orchd (meson suite 'e2e'; docs/VM.md "Memory hot-plug"). A VM of
# a class with boot_memory_mib 256 of memory_mib 640 boots with 256 MiB and its other
# 384 MiB unplugged (the domain's virtio-mem device, `orch vm list`); a task leased to it
# starts once they are plugged (orchd's log) and uses more than the boot memory holds;
# after unplug_idle_ms without a task the guest gives them back, and a later task gets
# them again. A vm-per-task class with a snapshot and the same memory: its template is
# saved with the device (and without its RAM's zero pages), and a VM restored from it
# gets its memory plugged for its task too. Boot sizes the guest cannot use are refused
# by the config. Exits 77 (skip) with a reason when libvirt/QEMU cannot run here.
set -uo pipefail
. "$(dirname "$0")/../lib/vm.sh"
vm_need jq
vm_setup "libvirt's system instance, virtiofsd"

st=$(mktemp -d /tmp/orch-memory.XXXXXX)
chmod 0755 "$st"
vm=mem$$
P=memp$$
orchd_pid=
failures=0
passed=0
cleanup() {
	local rc=$?
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	vm_domains_destroy "^orch-($vm|$P\.)"
	vm_sanitizer_report "$st/orchd.log" || { failures=$((failures + 1)); rc=1; }
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 40 "$st/orchd.log"
		echo "--- console"; tail -n 20 "$st/vm/$vm/console.log" 2>/dev/null
	fi
	vm_unmount_below "$st"
	rm -rf "$st"
	exit $rc
}
trap cleanup EXIT
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
o() { "$orch" --socket "$st/orch.sock" "$@"; }
# The virtio-mem device's sizes in the domain's live XML, KiB.
dev_kib() { virsh -c qemu:///system dumpxml "orch-$vm" 2>/dev/null |
	sed -n "s|.*<$1 unit='KiB'>\([0-9]*\)</$1>.*|\1|p" | tail -n 1; }
vm_json() { o --json vm list | jq -r --arg v "$vm" ".[] | select(.name == \$v) | $1"; }

# Boot sizes the guest could not use: refused before anything starts.
for bad in '"boot_memory_mib": 300' '"boot_memory_mib": 640' '"boot_memory_mib": 32'; do
	echo "{ \"vms\": { \"x\": { \"backend\": \"libvirt\", \"memory_mib\": 640, $bad } } }" \
		>"$st/bad.json"
	out=$("$orchd" --check-config "$st/bad.json" 2>&1) &&
		fail "--check-config accepted $bad"
	case "$out" in
	*"vms.x.boot_memory_mib: expected 0 (no hot-plug) or 64..512 with memory_mib - boot_memory_mib a multiple of 128"*)
		ok "the config refuses $bad" ;;
	*) fail "$bad: $out" ;;
	esac
done

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "scheduler": { "retries": 0, "heartbeat_ms": 1000, "heartbeat_misses": 5 },
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 2, "memory_mib": 640,
                    "boot_memory_mib": 256, "unplug_idle_ms": 3000, "slots": 1,
                    "autostart": true, "boot_timeout_ms": 180000 },
           "$P": { "backend": "libvirt", "vcpus": 2, "memory_mib": 640,
                   "boot_memory_mib": 256, "isolation": "vm-per-task", "snapshot": true,
                   "pool": { "ready": 1, "max": 2 }, "boot_timeout_ms": 180000 } }
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
ready() { [ "$(vm_json .state 2>/dev/null)" = ready ]; }
vm_wait_for 300 "the VM is ready" ready || exit 1

# Booted small: the domain's device holds nothing; orch vm list says what the VM has.
[ "$(dev_kib requested)" = 0 ] && [ "$(dev_kib current)" = 0 ] &&
	ok "booted with 256 MiB: the 384 MiB device holds nothing" ||
	fail "before any task: requested $(dev_kib requested) KiB, current $(dev_kib current) KiB"
m=$(vm_json '.memory | "\(.boot_mib) \(.hotplug_mib)"')
[ "$m" = "256 384" ] && ok "orch vm list: boot_mib 256, hotplug_mib 384" || fail "vm list memory: $m"

# A task that needs more than 256 MiB: it starts once the rest is plugged.
touch_mib=400
out=$(timeout 600 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --agent 0 --wait -- \
	sh -c "grep MemTotal /proc/meminfo; python3 -c 'b = bytearray($touch_mib << 20)
for i in range(0, len(b), 4096): b[i] = 1
print(\"touched\", len(b) >> 20, \"MiB\")'" 2>&1)
total=$(echo "$out" | sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p')
echo "# task: $(echo "$out" | tr '\n' ' ')"
[ -n "$total" ] && [ "$total" -gt $((512 * 1024)) ] &&
	ok "the task's guest has $((total / 1024)) MiB (boot 256 + 384 plugged)" ||
	fail "MemTotal in the task: '$total'"
case "$out" in
*"touched $touch_mib MiB"*) ok "the task used $touch_mib MiB, more than the boot memory" ;;
*) fail "the $touch_mib MiB task: $out" ;;
esac
grep -q 'msg="plugging memory for a task"' "$st/orchd.log" && grep -q 'msg="memory plugged"' "$st/orchd.log" &&
	ok "orchd plugged the memory before the task ran" || fail "no plug in orchd's log"
[ "$(dev_kib requested)" = $((384 * 1024)) ] || fail "requested after the task: $(dev_kib requested) KiB"

# Idle for unplug_idle_ms (3 s): unplugged; the guest gives back what it can (all, here).
unplugged() { c=$(dev_kib current); [ -n "$c" ] && [ "$c" -le $((64 * 1024)) ]; }
vm_wait_for 120 "the memory is unplugged after the VM idles" unplugged &&
	ok "idle: unplugged again (the device holds $(($(dev_kib current) / 1024)) MiB)"
grep -q 'msg="unplugging the hot-plugged memory: idle"' "$st/orchd.log" ||
	fail "no unplug in orchd's log"
[ "$(dev_kib requested)" = 0 ] || fail "requested after idling: $(dev_kib requested) KiB"

# The next task gets it again.
out=$(timeout 600 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --agent 0 --wait -- \
	grep MemTotal /proc/meminfo 2>&1)
total=$(echo "$out" | sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p')
[ -n "$total" ] && [ "$total" -gt $((512 * 1024)) ] &&
	ok "the next task has $((total / 1024)) MiB again" || fail "MemTotal in the next task: '$out'"
[ "$(grep -c 'msg="memory plugged"' "$st/orchd.log")" -ge 2 ] &&
	ok "plugged again for it" || fail "no second plug in orchd's log"

# Restored from a snapshot: the template has the device, its copies plug it for a task.
pool() { o vm pools --json | jq -r --arg c "$P" ".[] | select(.class == \$c) | $1"; }
snapshot_ready() { [ "$(pool .snapshot.state)" = ready ]; }
idle() { [ "$(pool .vms.idle)" -ge 1 ] 2>/dev/null; }
vm_wait_for 300 "the snapshot template is made" snapshot_ready
made=$(grep 'msg="snapshot template made"' "$st/orchd.log" | tail -1)
case "$made" in
*zero_pages_left_out=[1-9]*) ok "the template was saved with the device, without its zero pages ($(echo "$made" | grep -o 'zero_pages_left_out=[0-9]*'))" ;;
*) fail "template: '$made'" ;;
esac
# The pool's first VM booted before the template was there: the next one is restored.
run_p() {
	id=$(o dispatch --vm "$P" -- sh -c "grep MemTotal /proc/meminfo; python3 -c 'b = bytearray($touch_mib << 20)
for i in range(0, len(b), 4096): b[i] = 1
print(\"touched\", len(b) >> 20, \"MiB\")'") || { fail "dispatch to $P"; return 1; }
	out=$(timeout 600 "$orch" --socket "$st/orch.sock" logs -f "$id" 2>&1)
	pvm=$(o --json result "$id" | jq -r .vm)
}
run_p
vm_wait_for 300 "the vm-per-task pool refills after a task" idle || true
run_p
total=$(echo "$out" | sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p')
echo "# task on $pvm: $(echo "$out" | tr '\n' ' ')"
grep -q "vm=$pvm domain=orch-$pvm" <(grep "restored from the snapshot" "$st/orchd.log") &&
	ok "the VM $pvm was restored from the snapshot" || fail "$pvm was not restored from the snapshot"
[ -n "$total" ] && [ "$total" -gt $((512 * 1024)) ] && case "$out" in *"touched $touch_mib MiB"*) true ;; *) false ;; esac &&
	ok "the restored VM's task had $((total / 1024)) MiB and used $touch_mib MiB" ||
	fail "the restored VM's task: $out"
grep -q "msg=\"memory plugged\" vm=$pvm" "$st/orchd.log" && ok "orchd plugged its memory" ||
	fail "no plug for $pvm in orchd's log"

echo "# $passed passed, $failures failed"
[ "$failures" = 0 ] && echo PASS
[ "$failures" = 0 ]
