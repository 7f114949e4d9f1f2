# Stand-ins for the NixOS options and packages nix/module.nix uses, so the module
# can be evaluated with nixpkgs' lib alone (no nixpkgs, no NixOS): the options take
# any value, the packages are fake store paths. Only for tests/nix/eval.nix.
{ lib, ... }:

let
  inherit (lib) mkOption types;
  any = mkOption { type = types.anything; default = null; };
  listOfAny = mkOption { type = types.listOf types.anything; default = [ ]; };
  listOfStr = mkOption { type = types.listOf types.str; default = [ ]; };

  fakeDrv = name: attrs: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  } // attrs;

  jsonType =
    let
      valueType = types.nullOr (types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        (types.attrsOf valueType)
        (types.listOf valueType)
      ]) // { description = "JSON value"; };
    in
    valueType;

  service = {
    freeformType = types.attrsOf types.anything;
    options = {
      wantedBy = listOfStr;
      wants = listOfStr;
      after = listOfStr;
      requires = listOfStr;
      path = listOfAny;
      restartTriggers = listOfAny;
      environment = mkOption { type = types.attrsOf types.anything; default = { }; };
      serviceConfig = mkOption { type = types.attrsOf types.anything; default = { }; };
      unitConfig = mkOption { type = types.attrsOf types.anything; default = { }; };
    };
  };
in
{
  options = {
    assertions = listOfAny;
    warnings = listOfStr;
    users.users = mkOption {
      type = types.attrsOf (types.submodule {
        freeformType = types.attrsOf types.anything;
        options.uid = mkOption { type = types.nullOr types.int; default = null; };
      });
      default = { };
    };
    users.groups = mkOption { type = types.attrsOf (types.attrsOf types.anything); default = { }; };
    environment.systemPackages = listOfAny;
    virtualisation.libvirtd.enable = mkOption { type = types.bool; default = false; };
    virtualisation.libvirtd.qemu.vhostUserPackages = listOfAny;
    boot.kernelModules = listOfStr;
    services.postgresql = mkOption { type = types.attrsOf types.anything; default = { }; };
    systemd.tmpfiles.rules = listOfStr;
    systemd.services = mkOption { type = types.attrsOf (types.submodule service); default = { }; };
    stub.unused = any;
  };

  config._module.args.pkgs = {
    formats.json = { }: {
      type = jsonType;
      generate = name: value: fakeDrv name { inherit value; };
    };
    runCommand = name: env: script: fakeDrv name { inherit script; };
    linkFarm = name: entries: fakeDrv name { inherit entries; };
    claude-code = fakeDrv "claude-code" { };
    codex = fakeDrv "codex" { };
    gemini-cli = fakeDrv "gemini-cli" { };
    opencode = fakeDrv "opencode" { };
    orch = fakeDrv "orch" { };
    virtiofsd = fakeDrv "virtiofsd" { };
    bubblewrap = fakeDrv "bubblewrap" { };
    orch-guest = fakeDrv "orch-guest-image" {
      kernelFile = "bzImage";
      initrdFile = "initrd";
      cmdline = "console=ttyS0 panic=-1 init=/nix/store/00000000000000000000000000000000-nixos-system-orch-guest/init";
    };
  };
}
