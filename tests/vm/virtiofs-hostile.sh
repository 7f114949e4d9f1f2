#!/usr/bin/env bash
# A hostile guest root against the virtio-fs workspace (meson suite 'e2e'): orchd boots a
# libvirt VM whose guest root (a test-only initrd, tests/vm/guest-root/: the image's own
# initramfs and root, plus one sysinit step) tries to make device nodes and to plant
# setuid-root executables in the shared workspace. Checked on the host: no device node
# exists, no host user but root can reach anything planted (every directory above the
# workspace is checked, and access is tried as nobody and as the agent's uid), virtiofsd
# runs with the options orch-virtiofsd adds (its command line and its capabilities), and in
# the guest the workspace is mounted nosuid,nodev but not noexec (agents build and run
# there). Exits 77 (skip) with a reason when libvirt/QEMU cannot run here.
set -uo pipefail
. "$(dirname "$0")/../lib/vm.sh"
vm_need setpriv cpio
vm_setup "libvirt's system instance, virtiofsd" soft

st=$(mktemp -d /tmp/orch-vfs-e2e.XXXXXX)
# A state directory anyone may enter: what keeps the host's users out must be orchd's own
# doing below it.
chmod 0755 "$st"
vm=vfs$$
orchd_pid=
failures=0
cleanup() {
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 30 "$st/orchd.log"
		echo "--- guest console"; tail -n 40 "$st/vm/$vm/console.log" 2>/dev/null
	fi
	vm_unmount_below "$st"
	rm -rf "$st"
}
trap cleanup EXIT
passed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# The test initrd: the image's initrd.img with a second cpio archive appended (the kernel
# unpacks both), booted with rdinit=/orch-test/init. The image itself is not changed.
kit=$st/kit
mkdir -p "$kit/root/orch-test"
install -m 0755 "$src/tests/vm/guest-root/init" "$src/tests/vm/guest-root/hostile" "$kit/root/orch-test/"
install -m 0644 "$src/tests/vm/guest-root/prep" "$kit/root/orch-test/"
cp "$image/initrd.img" "$kit/initrd.img"
(cd "$kit/root" && find . -mindepth 1 | sort | cpio -o -H newc -R 0:0 --quiet) >>"$kit/initrd.img"
chmod 0755 "$kit"
chmod 0644 "$kit/initrd.img"

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 1, "memory_mib": 512, "slots": 1,
                    "initrd": "$kit/initrd.img",
                    "cmdline": "console=ttyS0 panic=-1 quiet rdinit=/orch-test/init",
                    "autostart": true, "boot_timeout_ms": 180000 } }
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do [ -S "$st/orch.sock" ] && break; sleep 0.1; done
o() { "$orch" --socket "$st/orch.sock" "$@"; }

# An agent works as before: writes, and runs what it built in its workspace (no noexec).
out=$(timeout 300 "$orch" --socket "$st/orch.sock" dispatch --vm "$vm" --agent 0 --wait -- \
	sh -c 'echo agent0 > /workspace/f0; cp /bin/busybox /workspace/echo && /workspace/echo "ran-$(id -u)"')
rc=$?
[ "$rc" = 0 ] && [ "$out" = ran-10000 ] && ok "agent 0 writes and executes in its workspace" ||
	fail "agent 0: rc $rc out '$out'"
ws=$st/workspaces/$vm
console=$st/vm/$vm/console.log
grep -q '^orch-hostile: done' "$console" 2>/dev/null && ok "the guest's root ran its attacks" ||
	fail "no 'orch-hostile: done' on the console"
grep '^orch-hostile:' "$console" 2>/dev/null | sed 's/^/# /'

# In the guest: /workspace is nosuid,nodev, not noexec.
mnt=$(sed -n 's/^orch-hostile: mount //p' "$console" | tr -d '\r')
opts=$(echo "$mnt" | awk '{print $4}')
has() { case ",$opts," in *",$1,"*) return 0 ;; esac; return 1; }
if [ -z "$opts" ] || ! has nosuid || ! has nodev; then
	fail "guest mount of /workspace: '$mnt' (want nosuid,nodev)"
elif has noexec; then
	fail "/workspace is noexec in the guest: $mnt"
else
	ok "the guest mounts /workspace nosuid,nodev (not noexec): $opts"
fi

# On the host: no device node in the workspace, whatever the guest did.
devs=$(find "$ws" \( -type b -o -type c \) 2>&1)
[ -z "$devs" ] && ok "no device node in the workspace" || fail "device nodes on the host: $devs"
for dev in mem disk kvm null; do
	grep -q "^orch-hostile: mknod-$dev failed" "$console" && ok "mknod of $dev fails in the guest" ||
		fail "mknod of $dev did not fail in the guest"
done

# The setuid-root files exist (the guest's root owns what it writes) but nobody else on
# the host reaches them.
planted=("$ws/hostile-suid" "$ws/hostile-dir/suid" "$ws/agent-0/hostile-suid")
for f in "${planted[@]}"; do
	[ -f "$f" ] || fail "the guest did not plant $f"
done
echo "# modes from the workspace up:"
d=$ws
while :; do
	echo "#   $(stat -c '%A %U %n' "$d")"
	[ "$d" = / ] && break
	d=$(dirname "$d")
done
[ "$(stat -c '%a %u' "$(dirname "$ws")")" = "700 0" ] &&
	ok "the workspace's parent $(dirname "$ws") is 0700 root" ||
	fail "the workspace's parent: $(stat -c '%a %U' "$(dirname "$ws")") (want 0700 root)"
for who in 65534 10000; do
	reached=
	for f in "${planted[@]}" "$ws"; do
		if setpriv --reuid="$who" --regid="$who" --clear-groups -- stat -- "$f" >/dev/null 2>&1; then
			reached="$reached $f"
		fi
	done
	[ -z "$reached" ] && ok "uid $who on the host reaches none of the planted files" ||
		fail "uid $who on the host reaches:$reached"
done
# A setuid bit set before a write is gone after it (virtiofsd has no CAP_FSETID).
m=$(stat -c %a "$ws/hostile-suid2" 2>/dev/null)
[ "$m" = 755 ] && ok "a write clears the setuid bit the guest set before it" ||
	fail "hostile-suid2 mode on the host: '$m' (want 755)"

# virtiofsd of this VM: started with orch-virtiofsd's options, without CAP_MKNOD,
# CAP_SETFCAP and CAP_FSETID.
n=0
for p in /proc/[0-9]*; do
	cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
	case "$cmd" in *virtiofsd*"source=$ws "* | *virtiofsd*"source=$ws") ;; *) continue ;; esac
	n=$((n + 1))
	echo "# virtiofsd ${p#/proc/}: $cmd"
	for want in "sandbox=namespace" "modcaps=-mknod:-setfcap:-fsetid" "killpriv_v2"; do
		case " $cmd " in *"-o $want "*) ;; *) fail "virtiofsd ${p#/proc/} runs without -o $want" ;; esac
	done
	prm=$(awk '/^CapPrm:/ {print $2}' "$p/status")
	bad=
	for bit in 4:fsetid 27:mknod 31:setfcap; do
		(((0x$prm >> ${bit%%:*}) & 1)) && bad="$bad ${bit#*:}"
	done
	[ -z "$bad" ] && ok "virtiofsd ${p#/proc/}: no fsetid, mknod, setfcap (CapPrm $prm)" ||
		fail "virtiofsd ${p#/proc/} holds:$bad (CapPrm $prm)"
done
[ "$n" -gt 0 ] && ok "$n virtiofsd process(es) for $ws checked" || fail "no virtiofsd for $ws found"
grep -q -- "-o sandbox=namespace -o modcaps=-mknod:-setfcap:-fsetid -o killpriv_v2" <(
	for p in /proc/[0-9]*; do tr '\0' ' ' 2>/dev/null <"$p/cmdline"; echo; done | grep "source=$ws") ||
	fail "orch-virtiofsd's options did not reach virtiofsd"

echo "$passed passed, $failures failed"
[ "$failures" = 0 ]
