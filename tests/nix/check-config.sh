#!/usr/bin/env bash
# orchd accepts the configuration nix/module.nix renders from nix/tests/example.nix,
# rendered here by the module itself (no committed copy to drift), and that example is
# the one of docs/NIXOS.md.
. "$(dirname "$0")/lib.sh"

# The example is the one docs/NIXOS.md shows (compared without leading comments).
doc_block=$(sed -n '/^# orch.nix: a complete host configuration/,/^```/p' "$src/docs/NIXOS.md" | sed '1d;$d')
file_body=$(sed -n '/^[^#]/,$p' "$src/nix/tests/example.nix")
[ -n "$doc_block" ] || fail "docs/NIXOS.md has no '# orch.nix: a complete host configuration' block"
if [ "$doc_block" != "$file_body" ]; then
	diff -u <(echo "$doc_block") <(echo "$file_body") || true
	fail "nix/tests/example.nix and the example in docs/NIXOS.md differ (diff above)"
fi
echo "ok: nix/tests/example.nix is the example of docs/NIXOS.md"

orchd=$build/host/orchd
[ -x "$orchd" ] || fail "$orchd does not exist (orchd is not built)"
need_nix
need_lib
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json=$tmp/example-settings.json
eval_module "$src/nix/tests/example.nix" settings | jq -S . >"$json" ||
	fail "cannot render nix/tests/example.nix with the module"

if ! out=$("$orchd" --check-config "$json" 2>&1); then
	fail "orchd --check-config rejects the module's rendering: $out"
fi
echo "$out"

# And a broken rendering is refused, so the check above means something.
jq '.vms.dev.slots = 0' "$json" >"$tmp/bad.json"
if out=$("$orchd" --check-config "$tmp/bad.json" 2>&1); then
	fail "orchd --check-config accepted vms.dev.slots = 0: $out"
fi
case "$out" in
*vms.dev.slots*) echo "refused as expected: $out" ;;
*) fail "orchd --check-config refused vms.dev.slots = 0 without naming the key: $out" ;;
esac
