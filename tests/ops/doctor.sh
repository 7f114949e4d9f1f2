#!/bin/bash
# orch doctor on this machine: its verdicts are compared with independent checks of the
# same facts, and a configuration that needs more turns missing items into a failure.
set -u
. "$(dirname "$0")/lib.sh"
ORCH=${ORCH_BUILDDIR:?}/host/orch
[ "$(id -u)" = 0 ] || skip "needs root (probes run as an unprivileged uid)"
need jq
T=$(mktemp -d /tmp/orch-ops-doctor.XXXXXX)
trap 'rm -rf "$T"' EXIT
IMAGE=${ORCH_SOURCEDIR:?}/vm-images/out/image

d() { "$ORCH" doctor --json "$@"; }
status_of() { echo "$out" | jq -r --arg id "$1" '.items[] | select(.id == $id) | .status'; }
expect() {
	local got
	got=$(status_of "$1")
	[ "$got" = "$2" ] || fail "doctor says $1 is '$got', expected '$2': $(echo "$out" | jq -c --arg id "$1" '.items[] | select(.id == $id)')"
	echo "ok: $1 $2"
}

out=$(d --kvm-timeout 8000 2>/dev/null); rc=$?
echo "$out" | jq -e . >/dev/null || fail "not JSON: $out"
[ $rc = 0 ] || fail "exit $rc with nothing required missing: $out"
[ "$(echo "$out" | jq .ok)" = true ] || fail ".ok is not true"
echo "ok: exit 0, ok=true with the defaults (local backend)"

expect bwrap ok
expect userns ok
if [ -e /dev/vhost-vsock ]; then expect vhost-vsock ok; else expect vhost-vsock degraded; fi

# cgroup v2: the controllers file of the cgroup2 mount decides.
v2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
ctl=$(cat "$v2/cgroup.controllers" 2>/dev/null)
if echo " $ctl " | grep -q ' memory ' && echo " $ctl " | grep -q ' pids ' && echo " $ctl " | grep -q ' cpu '; then
	expect cgroup ok
else
	expect cgroup degraded
fi

# KVM: ok exactly when QEMU with -accel kvm gets the guest kernel to print its banner.
if [ ! -e /dev/kvm ]; then
	expect kvm degraded
elif [ -r "$IMAGE/vmlinuz" ] && command -v qemu-system-x86_64 >/dev/null; then
	if timeout 8 qemu-system-x86_64 -accel kvm -machine pc -m 256 -nodefaults -no-user-config \
		-display none -serial stdio -no-reboot -kernel "$IMAGE/vmlinuz" \
		-append "console=ttyS0 panic=-1" 2>&1 </dev/null | grep -q -m1 -a "Linux version"; then
		expect kvm ok
	else
		expect kvm degraded
		echo "$out" | jq -r '.items[] | select(.id == "kvm") | .detail' | grep -q "unusable" ||
			fail "kvm detail does not say unusable"
	fi
	# The same probe with TCG must see the kernel: the probe can tell a working boot.
	[ -x "$ORCH_BUILDDIR/tests/ops/orch-boot-probe" ] &&
		{ "$ORCH_BUILDDIR/tests/ops/orch-boot-probe" "$IMAGE/vmlinuz" tcg ||
			fail "the boot probe did not see a TCG boot reach the kernel"; }
	echo "ok: the boot probe recognises a kernel that runs (TCG)"
fi
# Every non-ok item names a fix.
n=$(echo "$out" | jq '[.items[] | select(.status != "ok" and .fix == "")] | length')
[ "$n" = 0 ] || fail "$n non-ok items without a fix"
echo "ok: every degraded/missing item has a fix"

# A libvirt VM makes the libvirt pieces and the image required; a world-readable key
# file and a world-writable state dir are missing items, so doctor fails.
mkdir -m 0777 "$T/state"
echo sk-test >"$T/key"
chmod 0644 "$T/key"
cat >"$T/orchd.json" <<CFG
{
  "state_dir": "$T/state",
  "vms": { "dev": { "backend": "libvirt", "slots": 1 } },
  "llm": {
    "upstreams": { "a": { "kind": "anthropic", "key_file": "$T/key" } },
    "models": { "m": { "upstream": "a", "input_usd_per_mtok": 1, "output_usd_per_mtok": 1 } }
  }
}
CFG
out=$(d --no-boot --config "$T/orchd.json" 2>/dev/null); rc=$?
[ $rc = 1 ] || fail "exit $rc with a bad key file and state dir"
[ "$(echo "$out" | jq .ok)" = false ] || fail ".ok is not false"
expect keys missing
expect state-dir missing
[ "$(echo "$out" | jq -r '.items[] | select(.id == "keys") | .required')" = true ] || fail "keys not required"
[ "$(echo "$out" | jq -r '.items[] | select(.id == "image") | .required')" = true ] || fail "image not required for a libvirt VM"
echo "$out" | jq -r '.items[] | select(.id == "keys") | .fix' | grep -q "chmod 0600 $T/key" || fail "key fix"
chmod 0600 "$T/key"
chmod 0711 "$T/state"
out=$(d --no-boot --config "$T/orchd.json" 2>/dev/null)
expect keys ok
expect state-dir ok
# Human output: one line per item and the verdict.
"$ORCH" doctor --no-boot >"$T/human" 2>/dev/null
grep -q '^ok  *bubblewrap' "$T/human" || fail "human output: $(cat "$T/human")"
grep -q '^orch can run here' "$T/human" || fail "human verdict: $(cat "$T/human")"
echo PASS
