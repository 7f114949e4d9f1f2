#!/usr/bin/env bash
# orchd's vsock lanes on this host (meson suite 'e2e'). There is no /dev/vhost-vsock here,
# so no guest can dial them, but the host's AF_VSOCK sockets work: a VM forced to the vsock
# transport makes orchd bind its reserved lane ports. While another process holds the
# control port, the VM does not start and says which port and why; once it is free orchd
# listens there, and neither an unprivileged user nor anyone else can take it. Unreserved
# ports are refused by the config. Exits 77 with the reason when it cannot run here.
set -uo pipefail
. "$(dirname "$0")/../lib/vm.sh"
vm_need python3 jq setpriv
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is not installed"
python3 -c 'import socket; socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)' 2>/dev/null ||
	skip "this kernel offers no AF_VSOCK sockets"
vm_setup "libvirt's system instance, reserved ports" soft

st=$(mktemp -d /tmp/orch-lanes.XXXXXX)
chmod 0755 "$st"
vm=lanes$$
orchd_pid='' holder=''
cleanup() {
	local rc=$?
	[ -z "$holder" ] || kill "$holder" 2>/dev/null
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	vm_sanitizer_report "$st/orchd.log" || rc=1 # under ASan/UBSan builds
	vm_unmount_below "$st"
	rm -rf "$st"
	exit $rc
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- orchd log"; tail -n 30 "$st/orchd.log"; exit 1; }
o() { "$orch" --socket "$st/orch.sock" "$@"; }
# bind_vsock PORT: prints "ok" or the error of binding PORT (any CID) and listening.
bind_vsock() {
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
try:
    s.bind((socket.VMADDR_CID_ANY, int(sys.argv[1]))); s.listen()
    print("ok")
except OSError as e:
    print(e.strerror)' "$1"
}
last_error() { o --json vm list 2>/dev/null | jq -r '.[0].last_error // ""' 2>/dev/null; }

# Ports anyone could listen on are not accepted.
echo '{ "vsock": { "control_port": 5000 } }' >"$st/bad.json"
out=$("$orchd" --check-config "$st/bad.json" 2>&1) && fail "an unreserved port passed --check-config"
echo "$out" | grep -q 'vsock.control_port: expected an integer 1..1023' || fail "message: $out"
echo "ok - an unreserved lane port is refused by the config"

# Another program holds the control port (as another orchd would).
python3 -c '
import socket, time
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.bind((socket.VMADDR_CID_ANY, 700)); s.listen(); print("held", flush=True); time.sleep(600)' >"$st/holder.out" 2>&1 &
holder=$!
for _ in $(seq 50); do grep -q held "$st/holder.out" 2>/dev/null && break; sleep 0.1; done
grep -q held "$st/holder.out" || skip "cannot hold vsock port 700 here: $(cat "$st/holder.out")"

cat >"$st/orchd.json" <<JSON
{ "state_dir": "$st", "uid_base": 10000,
  "vms": { "$vm": { "backend": "libvirt", "slots": 1, "transport": "vsock",
                    "memory_mib": 256, "autostart": true, "boot_timeout_ms": 60000 } } }
JSON
# Sanitizer builds: the callbacks libvirt leaves to host/libvirt/virt-event-loop.c's deferred frees
# when orchd's loop ends are not freed (not this test's subject); any other report fails.
echo "leak:defer_free" >"$st/lsan.supp"
LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$st/lsan.supp \
	ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" 2>"$st/orchd.log" &
orchd_pid=$!
err=
for _ in $(seq 300); do
	err=$(last_error)
	case "$err" in *"vsock port 700"*) break ;; esac
	kill -0 "$orchd_pid" 2>/dev/null || fail "orchd exited"
	sleep 0.1
done
case "$err" in
*"vsock port 700 (vsock.control_port, the guests' control lane) is taken by another program"*) ;;
*) fail "last_error: '$err'" ;;
esac
virsh -c qemu:///system domstate "orch-$vm" >/dev/null 2>&1 && fail "the domain was started without its lanes"
echo "ok - a VM forced to vsock does not start while its lane port is taken: $err"

# Freed: orchd takes the port on the next attempt; then nobody else can.
kill "$holder"; wait "$holder" 2>/dev/null; holder=
for _ in $(seq 600); do
	grep -q 'msg="vsock lanes listening" control_port=700 llm_port=none' "$st/orchd.log" && break
	sleep 0.1
done
grep -q 'msg="vsock lanes listening" control_port=700' "$st/orchd.log" || fail "orchd did not open its lanes"
[ "$(bind_vsock 700)" = "Address already in use" ] || fail "root could bind 700 next to orchd: $(bind_vsock 700)"
# The system's python (root's PATH may point into /root, which uid 65534 cannot enter).
r=$(setpriv --reuid 65534 --regid 65534 --clear-groups /usr/bin/python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
try:
    s.bind((socket.VMADDR_CID_ANY, 700)); print("bound")
except OSError as e:
    print(e.strerror)' 2>&1)
[ "$r" = "Permission denied" ] || fail "uid 65534 binding port 700: $r"
echo "ok - orchd listens on its control lane (700); root gets EADDRINUSE, uid 65534 EACCES"
echo PASS
