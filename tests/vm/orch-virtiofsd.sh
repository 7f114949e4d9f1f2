#!/usr/bin/env bash
# orch-virtiofsd (host/libvirt/orch-virtiofsd, the build tree's copy) against stand-in
# virtiofsds: the C one's and the Rust one's options, --print-capabilities passed through
# untouched, and a virtiofsd without modcaps refused. The real virtiofsd under libvirt is
# checked by virtiofs-hostile (suite e2e).
set -uo pipefail
build=${ORCH_BUILDDIR:?ORCH_BUILDDIR not set (run through meson test)}
wrapper=$build/host/libvirt/orch-virtiofsd
[ -x "$wrapper" ] || { echo "FAIL: $wrapper is not executable"; exit 1; }
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
failures=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }

# fake NAME HELP: a virtiofsd whose --help prints HELP and which records its argv.
fake() {
	cat >"$t/$1" <<SH
#!/bin/sh
if [ "\$1" = --help ]; then printf '%s\n' '$2'; exit 0; fi
printf '%s\n' "\$*" >"$t/$1.args"
SH
	chmod 0755 "$t/$1"
}
fake c "-o modcaps=CAPLIST   Modify the list of capabilities
-o killpriv_v2/no_killpriv_v2   Enable/Disable FUSE_HANDLE_KILLPRIV_V2
-o sandbox=namespace|chroot"
fake rust "--modcaps <MODCAPS>   Modify the list of capabilities
--killpriv-v2   Enable KILLPRIV V2 support
--sandbox <SANDBOX>"
fake old "--sandbox <SANDBOX>   Sandbox mechanism"

args() { cat "$t/$1.args" 2>/dev/null; }
ORCH_VIRTIOFSD=$t/c "$wrapper" --fd=32 -o source=/ws
[ "$(args c)" = "--fd=32 -o source=/ws -o sandbox=namespace -o modcaps=-mknod:-setfcap:-fsetid -o killpriv_v2" ] &&
	ok "C virtiofsd: -o options appended" || fail "C virtiofsd got '$(args c)'"
ORCH_VIRTIOFSD=$t/rust "$wrapper" --fd=32 -o source=/ws
[ "$(args rust)" = "--fd=32 -o source=/ws --sandbox=namespace --modcaps=-mknod:-setfcap:-fsetid --killpriv-v2" ] &&
	ok "Rust virtiofsd: long options appended" || fail "Rust virtiofsd got '$(args rust)'"
rm -f "$t/c.args"
ORCH_VIRTIOFSD=$t/c "$wrapper" --print-capabilities
[ "$(args c)" = "--print-capabilities" ] && ok "--print-capabilities passed through as is" ||
	fail "--print-capabilities became '$(args c)'"
if out=$(ORCH_VIRTIOFSD=$t/old "$wrapper" --fd=32 -o source=/ws 2>&1); then
	fail "a virtiofsd without modcaps was started"
else
	case "$out" in *"has no modcaps option"*) ok "a virtiofsd without modcaps is refused: $out" ;;
	*) fail "refusal message: '$out'" ;; esac
fi
[ ! -e "$t/old.args" ] || fail "the old virtiofsd ran: $(args old)"
if out=$(ORCH_VIRTIOFSD=$t/missing "$wrapper" --fd=32 2>&1); then
	fail "a missing virtiofsd did not fail"
else
	ok "a missing virtiofsd fails: $out"
fi
[ "$failures" = 0 ]
