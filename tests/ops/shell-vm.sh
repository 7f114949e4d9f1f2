#!/bin/bash
# orch shell into a real VM (meson suite 'e2e'): orchd boots the guest image through
# libvirt (TCG here), and `orch shell VM 1` in a terminal (tmux) reaches agent 1's jail
# over the VM's debug-shell channel (virtio-serial, or vsock on KVM hosts): its uid, the
# terminal's size, ^C, only lo, no other agent; a second connection after a hang-up.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/vm.sh"
[ "$(id -u)" = 0 ] || skip "needs root (libvirt's system instance)"
need qemu-system-x86_64 virsh tmux socat jq
src=${ORCH_SOURCEDIR:?}
[ -x "$B/guest/orch-supervisor" ] && [ -x "$ORCHD" ] && [ -x "$ORCH" ] || fail "orchd, orch or orch-supervisor not built"
"$src/scripts/libvirtd-up" >/dev/null 2>&1 || fail "libvirtd cannot be started (scripts/libvirtd-up failed)"
image=$("$src/vm-images/build" --quiet --print --supervisor "$B/guest/orch-supervisor" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}") || fail "vm-images/build failed"

T=$(mktemp -d /tmp/orch-ops-vm.XXXXXX)
chmod 0755 "$T"
TMUX_SOCK=$T/tmux.sock
vm=ops$$
cleanup() {
	tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
	tmux -S "$T/dash.sock" kill-server 2>/dev/null
	stop_orchd
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	vm_unmount_below "$T"
	rm -rf "$T"
}
trap cleanup EXIT
cat >"$T/orchd.json" <<JSON
{ "state_dir": "$T", "uid_base": 10000,
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 2,
                    "autostart": true, "boot_timeout_ms": 180000 } } }
JSON
SOCK=$T/orch.sock
ORCH_VM_IMAGE=$image "$ORCHD" -v -c "$T/orchd.json" -s "$T" -S "$SOCK" 2>"$T/orchd.log" &
ORCHD_PID=$!
for i in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
# orch shell started while the VM boots waits for it (a spinner on the terminal).
tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s t -x 100 -y 30 \
	"$ORCH --socket $SOCK shell $vm 1; echo shell-ended; sleep 60"
for i in $(seq 50); do
	if tmux -S "$TMUX_SOCK" capture-pane -p -t t | grep -q 'waiting for VM'; then
		echo "ok: orch shell waits for the booting VM (spinner)"
		break
	fi
	sleep 0.1
done
for i in $(seq 1800); do
	s=$(o --json status 2>/dev/null) && [ -n "$s" ] &&
		echo "$s" | jq -e '.vms | all(.state == "ready")' >/dev/null 2>&1 && break
	kill -0 "$ORCHD_PID" 2>/dev/null || { tail -20 "$T/orchd.log"; fail "orchd exited"; }
	sleep 0.1
done
[ "$i" -lt 1800 ] || { tail -20 "$T/orchd.log"; fail "the VM did not become ready"; }
echo "ok: VM $vm ready ($(o --json status | jq -r '.vms[0].accel // "?"'), $(o --json status | jq -r '.vms[0].transport // "?"'))"

pane_wait t 'agent-1:.*\$ ?$' 60
k() { tmux -S "$TMUX_SOCK" send-keys -t t "$@"; }
k 'echo "id-$(id -u)"; echo "size-$(stty size | tr " " x)"' Enter
pane_wait t '^id-10001$' 20
pane_wait t '^size-30x100$' 20
echo "ok: agent 1's shell in the VM: uid 10001, the terminal's 30x100"
k 'sleep 300' Enter
sleep 1
k C-c
k 'echo "after-$((40 + 2))"' Enter
pane_wait t '^after-42$' 20
k 'echo "ifs-$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" ,)"; ls /workspace/.. | tr "\n" " "; echo' Enter
pane_wait t '^ifs-lo,$' 20
tmux -S "$TMUX_SOCK" capture-pane -p -t t | grep -q 'agent-0' && fail "agent 1 sees agent 0"
echo "ok: ^C, only lo, no other agent"

# Hang up, then connect again: the guest's port serves the next session.
pkill -TERM -f "^socat -,raw,echo=0,escape=0x1d UNIX-CONNECT:$T/shell/$vm/agent-1.sock"
pane_wait t 'shell-ended' 20
out=$( (sleep 3; echo 'echo "again-$((2 * 21))"'; sleep 3; echo exit) |
	timeout 60 "$ORCH" --socket "$SOCK" shell "$vm" 1 2>&1)
echo "$out" | grep -q 'again-42' || fail "second connection: $out"
echo "ok: a second connection after the hang-up"
# The dashboard's window for this VM: its console log and a pane per agent.
DASH=$T/dash.sock
o dashboard --tmux-socket "$DASH" --no-attach 2>/dev/null || fail "orch dashboard"
n=$(tmux -S "$DASH" list-panes -t "orch:vm:$vm" | wc -l)
[ "$n" = 3 ] || fail "vm:$vm has $n panes"
TMUX_SOCK=$DASH pane_wait "orch:vm:$vm.0" "console of VM $vm" 10
# (The pane follows the file through cat -v: its content is whatever the guest printed,
# with the control bytes shown.)
pgrep -f "tail -n 200 -F .*/vm/$vm/console.log" >/dev/null ||
	fail "the console pane follows no console log: $(tmux -S "$DASH" display-message -p -t "orch:vm:$vm.0" '#{pane_current_command}')"
tmux -S "$DASH" kill-server
echo "ok: the dashboard has the VM's window: its console log followed, a pane per agent"
echo PASS
