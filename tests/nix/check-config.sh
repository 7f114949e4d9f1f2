#!/usr/bin/env bash
# orchd accepts the configuration nix/module.nix renders from nix/tests/example.nix
# (committed as nix/tests/example-settings.json; module-eval.sh keeps the two equal).
. "$(dirname "$0")/lib.sh"

orchd=$build/host/orchd
json=$src/nix/tests/example-settings.json
[ -x "$orchd" ] || skip "$orchd does not exist (orchd is not built yet)"
[ -f "$json" ] || fail "$json is missing; regenerate it with tests/nix/render-example.sh"

if ! out=$("$orchd" --check-config "$json" 2>&1); then
	fail "orchd --check-config rejects the module's rendering: $out"
fi
echo "$out"

# And a broken rendering is refused, so the check above means something.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
jq '.vms.dev.slots = 0' "$json" >"$tmp/bad.json"
if out=$("$orchd" --check-config "$tmp/bad.json" 2>&1); then
	fail "orchd --check-config accepted vms.dev.slots = 0: $out"
fi
case "$out" in
*vms.dev.slots*) echo "refused as expected: $out" ;;
*) fail "orchd --check-config refused vms.dev.slots = 0 without naming the key: $out" ;;
esac
