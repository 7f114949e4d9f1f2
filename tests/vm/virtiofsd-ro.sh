#!/usr/bin/env bash
# orch-virtiofsd-ro: virtiofsd runs with its source directory read-only in a mount
# namespace of its own (the agents share), while the directory stays writable for the
# host; nothing that virtiofsd does can write there; it runs through orch-virtiofsd (its
# options). Runs the real virtiofsd.
set -uo pipefail
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || skip "needs root (mount namespaces, virtiofsd)"
ro=$build/host/libvirt/orch-virtiofsd-ro
[ -x "$ro" ] || skip "orch-virtiofsd-ro is not built"
[ -x /usr/lib/qemu/virtiofsd ] || [ -x /usr/libexec/virtiofsd ] || skip "no virtiofsd installed"
command -v nsenter >/dev/null || skip "nsenter (util-linux) is not installed"

d=$(mktemp -d /tmp/orch-virtiofsd-ro.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$d"' EXIT
mkdir "$d/src"
echo data >"$d/src/f"
# What libvirt would run: virtiofsd's own arguments.
"$ro" --socket-path="$d/sock" -o source="$d/src" -o cache=none 2>"$d/log" &
pid=$!
for _ in $(seq 1 100); do [ -S "$d/sock" ] && break; sleep 0.05; done
[ -S "$d/sock" ] || fail "virtiofsd did not start: $(cat "$d/log")"
[ "$(readlink "/proc/$pid/exe")" != "$(readlink -f "$ro")" ] || fail "the wrapper did not exec virtiofsd"
if [ -x "$build/host/libvirt/orch-virtiofsd" ]; then
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'modcaps=-mknod:-setfcap:-fsetid' ||
		fail "virtiofsd did not get orch-virtiofsd's options: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
	echo "ok - through orch-virtiofsd: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
fi
opts=$(awk -v p="$d/src" '$5 == p { print $6 }' "/proc/$pid/mountinfo" | tail -1)
case ",$opts," in
*,ro,*) echo "ok - virtiofsd's view of $d/src is mounted $opts" ;;
*) fail "virtiofsd's view of $d/src is not read-only: '$opts'" ;;
esac
if err=$(nsenter -t "$pid" -m sh -c "echo x > '$d/src/g'" 2>&1); then
	fail "a write in virtiofsd's mount namespace succeeded"
fi
echo "$err" | grep -q "Read-only file system" || fail "unexpected error: $err"
echo "ok - a write there fails: $err"
echo host >"$d/src/h" || fail "the host cannot write its own directory any more"
echo "ok - the host's own view stays writable"
# Without a source it refuses, rather than sharing anything writable.
if "$ro" --socket-path="$d/sock2" 2>"$d/log2"; then fail "started without -o source"; fi
grep -q "no -o source=DIR" "$d/log2" || fail "no reason given: $(cat "$d/log2")"
echo "ok - refused without -o source=DIR"
echo PASS
