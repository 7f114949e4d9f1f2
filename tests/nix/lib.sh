# Shared by the tests/nix scripts (sourced). Exit 77 is meson's SKIP.
set -euo pipefail
export LC_ALL=C

src=${ORCH_SOURCEDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
build=${ORCH_BUILDDIR:-$src/build}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

need_nix() {
	command -v nix-instantiate >/dev/null ||
		skip "nix-instantiate not found (install nix-bin: scripts/install-deps)"
}

# The nixpkgs lib to evaluate the module with: $ORCH_NIXPKGS_LIB, a checkout of
# nixpkgs or of nix-community/nixpkgs.lib (the directory holding lib/, or lib/ itself).
need_lib() {
	[ -n "${ORCH_NIXPKGS_LIB:-}" ] ||
		skip "ORCH_NIXPKGS_LIB is not set; point it at a nixpkgs (or nixpkgs.lib) checkout to evaluate nix/module.nix and nix/guest.nix"
	[ -f "$ORCH_NIXPKGS_LIB/lib/default.nix" ] || [ -f "$ORCH_NIXPKGS_LIB/default.nix" ] ||
		fail "ORCH_NIXPKGS_LIB=$ORCH_NIXPKGS_LIB holds neither lib/default.nix nor default.nix"
	nixpkgs_lib=$(realpath "$ORCH_NIXPKGS_LIB")
}

# eval_module CONFIG.nix WHAT: prints the JSON of tests/nix/eval.nix (see there).
eval_module() {
	nix-instantiate --readonly-mode --eval --strict --json "$src/tests/nix/eval.nix" \
		--arg nixpkgsLib "$nixpkgs_lib" --arg config "$(realpath "$1")" --argstr what "$2" \
		2> >(grep -v "build-users-group" >&2)
}
