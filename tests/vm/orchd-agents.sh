#!/usr/bin/env bash
# The five agent CLIs in a real VM (meson suite 'e2e'): installed on the host by `orch
# agents install`, shared read-only into a libvirt VM (virtio-fs through
# orch-virtiofsd-ro), each through its shipped profile in a real tool loop against the
# fake upstream (the checks of tests/ops/agents-lib.sh: exit 0, the file on the host
# owned by the agent's uid, the tool-result round, spend, no real key in the jail).
# Also: the domain's CPU model and read-only agents share, the guest's tools (bash, git,
# rg, python3). (That the share is read-only on the host: tests/vm/virtiofsd-ro.sh.)
# ORCH_TEST_AGENTS="claude pi" runs some only; ORCH_E2E_KEEP=1 keeps the state dir.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../ops/agents-lib.sh"

command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
command -v virsh >/dev/null || skip "libvirt clients not installed"
"$S/scripts/libvirtd-up" || skip "libvirtd cannot be started here"
[ -x "$B/host/libvirt/orch-virtiofsd-ro" ] || skip "orch-virtiofsd-ro is not built"
image=$("$S/vm-images/build" --quiet --print --supervisor "$B/guest/orch-supervisor" \
	--out "${ORCH_VM_OUT:-$S/vm-images/out}") || fail "vm-images/build failed"
[ -z "${ORCH_E2E_KEEP:-}" ] || KEEP=1

vm=ag$$
trap 'virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1; cleanup' EXIT

agents_install
agents_fake_start
jq -n --argjson uid "$UIDB" --arg dir "$AGENTS_DIR" --arg vm "$vm" \
	--argjson llm "$(agents_llm_json)" '{uid_base: $uid, agents_dir: $dir,
	vms: {($vm): {backend: "libvirt", vcpus: 2, memory_mib: 3072, slots: 2,
	              boot_timeout_ms: 300000}},
	llm: $llm}' >"$T/orchd.json"
t0=$SECONDS
ORCH_VM_IMAGE=$image "$ORCHD" --foreground --state-dir "$T/state" --socket "$SOCK" -v \
	--config "$T/orchd.json" 2>>"$T/orchd.log" &
ORCHD_PID=$!
wait_for 300 "the VM to boot" orchd_ready
accel=$(grep -o 'accel=[a-z]*' "$T/orchd.log" | tail -1)
echo "VM $vm ready after $((SECONDS - t0)) s ($accel)"

xml=$(virsh -c qemu:///system dumpxml "orch-$vm")
echo "$xml" | grep -qE "<cpu mode='(maximum|host-passthrough)'" ||
	fail "the domain's CPU is not 'maximum' (TCG) or 'host-passthrough' (KVM)"
echo "$xml" | grep -q "orch-virtiofsd-ro" || fail "the domain has no read-only agents share"
echo "ok - domain: CPU $(echo "$xml" | grep -o "<cpu mode='[a-z-]*'" | head -1), agents share"

# The guest's tools, in a jail, and the CPU features the agents' binaries need.
out=$(timeout 300 "$ORCH" --socket "$SOCK" dispatch --vm "$vm" --agent 1 --wait -- bash -c \
	'git --version && rg --version | head -1 && python3 -c "print(6*7)" &&
	 diff --version | head -1 && echo "$LANG" && grep -q avx2 /proc/cpuinfo && echo avx2' \
	2>&1) || fail "the guest's tools: $out"
for want in "git version" ripgrep 42 "diff (GNU diffutils)" C.UTF-8 avx2; do
	echo "$out" | grep -qF "$want" || fail "the guest's tools: no '$want' in: $out"
done
echo "ok - bash, git, rg, python3, diffutils, C.UTF-8 and AVX2 in the VM"

slot=0
for a in $AGENT_NAMES; do
	agents_run "$a" "$vm" "$slot" "$T/state/workspaces/$vm/agent-$slot" 600s
	slot=$(((slot + 1) % 2))
done
echo PASS
