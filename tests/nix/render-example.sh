#!/usr/bin/env bash
# Regenerates nix/tests/example-settings.json from nix/tests/example.nix with the
# module (needs ORCH_NIXPKGS_LIB). Check the result with
# `build/host/orchd --check-config nix/tests/example-settings.json`.
. "$(dirname "$0")/lib.sh"
need_nix
need_lib
out=$src/nix/tests/example-settings.json
eval_module "$src/nix/tests/example.nix" settings | jq -S . >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
