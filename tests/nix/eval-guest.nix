# Evaluates nix/guest.nix with nixpkgs' lib alone: every NixOS option it sets lands in a
# freeform attribute set, the few values it reads from NixOS (toplevel, kernel, initrd)
# and the packages are fake store paths. This checks the module's own logic (what it
# sets, the supervisor's start script and configuration, the image's command line), not
# that the NixOS options exist: checks.vm-test does that with nixpkgs.
#   nix-instantiate --eval --strict --json tests/nix/eval-guest.nix --arg nixpkgsLib DIR
{ nixpkgsLib, extraModule ? { } }:

let
  libDir = if builtins.pathExists (nixpkgsLib + "/lib/default.nix") then nixpkgsLib + "/lib" else nixpkgsLib;
  lib = import libDir;
  fake = name: attrs: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // attrs;
  toolNames = [
    "bashInteractive" "coreutils" "findutils" "gnugrep" "gnused" "gawk" "diffutils" "patch"
    "gnutar" "gzip" "xz" "which" "procps" "less" "file" "gnumake" "git" "jq" "ripgrep" "curl"
    "bubblewrap"
  ];
  pkgs = lib.genAttrs toolNames (n: fake n { }) // {
    writeText = name: text: fake name { inherit text; };
    writeShellScript = name: text: fake name { inherit text; };
    callPackage = path: args: fake "squashfs.img" { inherit args; };
    makeInitrdNG = args: fake "initrd" { inherit args; };
    runCommand = name: env: script: fake name ({ inherit script; } // (env.passthru or { }));
    linkFarm = name: entries: fake name { inherit entries; };
  };
  eval = lib.evalModules {
    specialArgs.modulesPath = ./stub-modules;
    modules = [
      { config._module.freeformType = lib.types.lazyAttrsOf lib.types.anything; }
      {
        _module.args.pkgs = pkgs;
        system.build.toplevel = fake "nixos-system-orch-guest" { };
        system.build.kernel = fake "linux" { };
        system.build.initialRamdisk = fake "initrd-stage1" { };
        system.boot.loader.kernelFile = "bzImage";
        services.orch-supervisor.package = fake "orch-supervisor" { meta.mainProgram = "orch-supervisor"; };
      }
      ../../nix/guest.nix
      extraModule
    ];
  };
  c = eval.config;
  sup = c.systemd.services.orch-supervisor;
in
{
  fileSystems = c.fileSystems;
  kernelModules = c.boot.kernelModules;
  initrdModules = c.boot.initrd.availableKernelModules ++ c.boot.initrd.kernelModules;
  networking = c.networking;
  openssh = c.services.openssh.enable;
  nixEnabled = c.nix.enable;
  systemPackages = map (p: p.name) c.environment.systemPackages;
  tmpfiles = c.systemd.tmpfiles.rules;
  supervisor = {
    inherit (sup) wantedBy after unitConfig;
    serviceConfig = builtins.removeAttrs sup.serviceConfig [ "ExecStart" ];
    start = sup.serviceConfig.ExecStart.text;
    config = builtins.fromJSON c.system.build.orchSupervisorConfig.text;
  };
  image = {
    inherit (c.system.build.orchImage) cmdline kernelFile initrdFile script;
    initrdContents = map (x: x.target) c.system.build.orchInitrd.args.contents;
    initrdCompressor = c.system.build.orchInitrd.args.compressor;
    store = c.system.build.orchStore.args;
  };
}
