# Evaluates flake.nix against a stand-in nixpkgs input (nixpkgs' real lib, fake
# packages and builders), to check the flake's wiring without nixpkgs: which outputs
# exist, that the package and the supervisor come from nix/package.nix through meson,
# that nixosModules.default presets the package and the guest image, and what the
# checks are. Building anything needs the real nixpkgs (`nix flake check`).
{ nixpkgsLib }:

let
  libDir = if builtins.pathExists (nixpkgsLib + "/lib/default.nix") then nixpkgsLib + "/lib" else nixpkgsLib;
  realLib = import libDir;
  fake = name: attrs: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // attrs;

  mkDerivation = args:
    let name = args.pname or args.name; in
    fake name {
      inherit args;
      meta = args.meta or { };
      overrideAttrs = f: mkDerivation (args // f args);
    };

  callPackage = fn: overrides:
    let
      f = if builtins.isFunction fn then fn else import fn;
      auto = builtins.intersectAttrs (builtins.functionArgs f) pkgs;
      r = f (auto // overrides);
    in
    r // { override = o: callPackage fn (overrides // o); };

  names = [
    "meson" "ninja" "pkg-config" "jansson" "libbsd" "check" "libvirt" "libnl" "libseccomp"
    "curl" "sqlite" "libmicrohttpd" "bubblewrap" "clang" "clang-tools" "gdb" "socat" "tmux"
    "qemu" "virtiofsd" "erofs-utils" "squashfsTools" "cpio" "jq" "nodejs" "nix" "git"
  ];
  pkgs = realLib.genAttrs names (n: fake n { }) // {
    lib = realLib;
    stdenv = { inherit mkDerivation; hostPlatform.system = "x86_64-linux"; };
    inherit callPackage;
    runCommand = name: env: script: fake name { inherit env script; };
    mkShell = args: fake "shell" { inherit args; };
    testers.runNixOSTest = args: fake "vm-test-run-${args.name}" { inherit args; };
  };

  nixpkgs = {
    outPath = "/nix/store/00000000000000000000000000000000-nixpkgs-source";
    lib = realLib // {
      nixosSystem = args: {
        inherit args;
        config.system.build.orchImage = fake "orch-guest-image" { kernelFile = "bzImage"; initrdFile = "initrd"; cmdline = "init=/x"; };
      };
    };
    legacyPackages.x86_64-linux = pkgs;
  };

  flake = import ../../flake.nix;
  self = flake.outputs { inherit self nixpkgs; } // { outPath = toString ../..; };

  # The host module as a flake user gets it, with the NixOS option stubs.
  host = realLib.evalModules {
    modules = [
      ./stubs.nix
      self.nixosModules.default
      { services.orch.enable = true; }
      { _module.args.pkgs = realLib.mkForce ((import ./stubs.nix { lib = realLib; }).config._module.args.pkgs // { stdenv.hostPlatform.system = "x86_64-linux"; }); }
    ];
  };
  orch = self.packages.x86_64-linux.orch;
  sup = self.packages.x86_64-linux.orch-supervisor;
  vmTest = self.checks.x86_64-linux.vm-test.args;
in
{
  description = flake.description;
  inputs = builtins.attrNames flake.inputs;
  packages = builtins.attrNames self.packages.x86_64-linux;
  nixosModules = builtins.attrNames self.nixosModules;
  checks = builtins.attrNames self.checks.x86_64-linux;
  devShell = map (p: p.name) self.devShells.x86_64-linux.default.args.packages;
  devShellLib = self.devShells.x86_64-linux.default.args.ORCH_NIXPKGS_LIB;
  orch = {
    pname = orch.args.pname;
    mesonFlags = orch.args.mesonFlags;
    nativeBuildInputs = map (p: p.name) orch.args.nativeBuildInputs;
    buildInputs = map (p: p.name) orch.args.buildInputs;
    doCheck = orch.args.doCheck;
    unitCheck = self.checks.x86_64-linux.orch-unit.args.doCheck;
    unitCheckFlags = self.checks.x86_64-linux.orch-unit.args.mesonCheckFlags;
  };
  supervisor = {
    pname = sup.args.pname;
    disallowedReferences = map (p: p.name) sup.args.disallowedReferences;
    postInstall = sup.args.postInstall;
  };
  host = {
    package = host.config.services.orch.package.name;
    guestImage = host.config.services.orch.guestImage.name;
    kernel = host.config.services.orch.renderedSettings.vms.default.kernel;
  };
  guestImage = self.packages.x86_64-linux.orch-guest.name;
  vmTest = {
    name = vmTest.name;
    hasScript = builtins.stringLength vmTest.testScript > 0;
    nodes = builtins.attrNames vmTest.nodes;
  };
}
