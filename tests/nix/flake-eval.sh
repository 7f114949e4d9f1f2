#!/usr/bin/env bash
# Evaluates flake.nix against a stand-in nixpkgs (tests/nix/eval-flake.nix) and checks
# its outputs: packages (orch, orch-supervisor, the guest image), nixosModules (default
# presets the package and the guest image), devShells, checks (including the NixOS VM
# test), and that the packages use the meson build. Building needs real nixpkgs.
. "$(dirname "$0")/lib.sh"
need_nix
need_lib
command -v jq >/dev/null || skip "jq is not installed (scripts/install-deps)"

out=$(nix-instantiate --readonly-mode --eval --strict --json "$src/tests/nix/eval-flake.nix" \
	--arg nixpkgsLib "$nixpkgs_lib" 2> >(grep -v "build-users-group" >&2)) ||
	fail "cannot evaluate flake.nix"

check() { # check DESCRIPTION JQ-EXPRESSION
	jq -e "$2" <<<"$out" >/dev/null || fail "$1: $(jq -c . <<<"$out")"
	echo "ok: $1"
}
check "input nixpkgs only" '.inputs == ["nixpkgs"]'
check "packages orch, orch-supervisor, orch-guest" \
	'.packages | (index("orch") and index("orch-supervisor") and index("orch-guest") and index("default"))'
check "nixosModules default and guest" '.nixosModules == ["default", "guest"]'
check "orch is built by meson with the project's dependencies" \
	'.orch | .pname == "orch" and (.nativeBuildInputs | index("meson") and index("ninja") and index("pkg-config"))
	 and (.buildInputs | index("libvirt") and index("jansson") and index("libseccomp") and index("sqlite") and index("curl"))
	 and .mesonFlags == ["-Dtests=disabled"] and .unitCheck and .unitCheckFlags == ["--suite", "unit"]'
check "orch-supervisor keeps libvirt, libcurl and SQLite out of the guest" \
	'.supervisor | .pname == "orch-supervisor" and .disallowedReferences == ["libvirt", "curl", "sqlite"]'
check "nixosModules.default presets the package and the guest image" \
	'.host | .package == "orch" and .guestImage == "orch-guest-image"
	 and .kernel == "/nix/store/00000000000000000000000000000000-orch-guest-image/bzImage"'
check "checks: packages, unit tests, guest image, evaluation tests, VM test" \
	'.checks | index("orch") and index("orch-supervisor") and index("orch-unit") and index("guest-image")
	 and index("nix-parse") and index("module-eval") and index("guest-eval") and index("vm-test")'
check "the VM test has a host node and a script" '.vmTest | .nodes == ["host"] and .hasScript'
check "the dev shell has the test tools and ORCH_NIXPKGS_LIB" \
	'(.devShell | index("bubblewrap") and index("socat") and index("tmux") and index("qemu") and index("libvirt") and index("clang-tools") and index("check"))
	 and (.devShellLib | startswith("/nix/store/"))'
