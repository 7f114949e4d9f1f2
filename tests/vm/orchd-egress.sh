#!/usr/bin/env bash
# The egress gateway through a real VM (meson suite 'e2e'): orchd with the libvirt
# backend gives the guest its egress lane (virtio-serial org.orch.egress, or vsock port
# 702); an agent in the VM fetches from an allowed host through the jail's proxy with
# busybox wget (http_proxy is set for it), a host outside its sets gets 403 with the
# reason, and both connections are in `orch egress log`. Upstream on 127.0.0.5, its name
# mapped by egress.resolve. Exits 77 (skip) with a reason when libvirt/QEMU cannot run.
set -uo pipefail
src=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR not set (run through meson test)}
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (libvirt's system instance, virtiofsd)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
command -v virsh >/dev/null || skip "libvirt clients not installed"
command -v python3 >/dev/null || skip "python3 not installed"
command -v openssl >/dev/null || skip "openssl not installed"
sup=$build/guest/orch-supervisor
orchd=$build/host/orchd
orch=$build/host/orch
[ -x "$sup" ] && [ -x "$orchd" ] && [ -x "$orch" ] || { echo "FAIL: orchd, orch or orch-supervisor not built"; exit 1; }
"$src/scripts/libvirtd-up" || { echo "FAIL: libvirtd cannot be started (scripts/libvirtd-up failed)"; exit 1; }
image=$("$src/vm-images/build" --quiet --print --supervisor "$sup" \
	--out "${ORCH_VM_OUT:-$src/vm-images/out}") || { echo "vm-images/build failed"; exit 1; }

st=$(mktemp -d /tmp/orch-egress-vm.XXXXXX)
chmod 0755 "$st"
vm=eg$$
orchd_pid=
srv_pid=
failures=0
cleanup() {
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	[ -z "$srv_pid" ] || { kill "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; }
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 40 "$st/orchd.log"
		echo "--- guest console"; tail -n 30 "$st/vm/$vm/console.log" 2>/dev/null
	fi
	rm -rf "$st"
}
trap cleanup EXIT
passed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=tls.test" -addext "subjectAltName=DNS:tls.test" \
	-keyout "$st/tls.key" -out "$st/tls.pem" 2>/dev/null
hp=$((20000 + $$ % 20000))
sp=$((hp + 1))
python3 "$src/tests/egress/egress-server.py" 127.0.0.5 $hp 127.0.0.6 $sp "$st/tls.pem" \
	"$st/tls.key" "$st/server.log" >"$st/server.out" 2>&1 &
srv_pid=$!
for _ in $(seq 1 50); do grep -q ready "$st/server.out" 2>/dev/null && break; sleep 0.1; done

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "scheduler": { "retries": 0, "heartbeat_ms": 1000, "heartbeat_misses": 5 },
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 2,
                    "transport": "${ORCH_E2E_TRANSPORT:-auto}", "egress": ["web"],
                    "autostart": true, "boot_timeout_ms": 180000 } },
  "egress": {
    "sets": { "web": ["plain.test:$hp"] },
    "resolve": { "plain.test": "127.0.0.5", "other.test": "127.0.0.5" },
    "allow_private": ["plain.test", "other.test"]
  }
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do [ -S "$st/orch.sock" ] && break; sleep 0.1; done
o() { "$orch" --socket "$st/orch.sock" "$@"; }

out=$(timeout 400 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait -- \
	sh -c 'echo "proxy=$http_proxy"; wget -q -O - http://plain.test:'$hp'/from-vm 2>&1' 2>&1)
case "$out" in
*"hello from plain.test:$hp/from-vm"*) ok "an agent in the VM fetched an allowed host through orchd" ;;
*) fail "allowed fetch: '$out'" ;;
esac
case "$out" in *"proxy=http://127.0.0.1:3128"*) ok "http_proxy is set in the jail" ;; *) fail "no http_proxy: '$out'" ;; esac
out=$(timeout 120 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --egress web --wait -- \
	sh -c 'wget -q -O - http://other.test:'$hp'/x 2>&1; echo rc=$?' 2>&1)
case "$out" in *403*) ok "a host outside the sets is refused in the VM" ;; *) fail "denied fetch: '$out'" ;; esac
grep -q "/x" "$st/server.log.headers" 2>/dev/null && fail "the refused request reached the upstream"
log=$(o egress log --json)
echo "$log" | python3 -c '
import json, sys
rows = json.load(sys.stdin)
ok = any(r["host"] == "plain.test" and r["verdict"] == "allowed" and r["bytes_down"] > 0 for r in rows)
ok = ok and any(r["host"] == "other.test" and r["verdict"] == "denied" for r in rows)
sys.exit(0 if ok else 1)' && ok "orch egress log has both connections" || fail "egress log: $log"
dom_xml=$(virsh -c qemu:///system dumpxml "orch-$vm" 2>/dev/null)
case "$dom_xml" in
*"orch.egress=vsock:2:702"*) ok "the guest dials the egress lane on vsock port 702" ;;
*"org.orch.egress"*) ok "the domain has the virtio-serial port org.orch.egress" ;;
*) fail "no egress lane in the domain: $(echo "$dom_xml" | grep -o 'orch\.[a-z]*=[^ <]*' | tr '\n' ' ')" ;;
esac

echo "passed $passed, failed $failures"
[ "$failures" = 0 ]
