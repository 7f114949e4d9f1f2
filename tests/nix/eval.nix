# Evaluates nix/module.nix with the option stubs of stubs.nix and nixpkgs' lib.
#   nix-instantiate --eval --strict --json tests/nix/eval.nix \
#     --arg nixpkgsLib /path/to/nixpkgs-lib --arg config ./nix/tests/example.nix --argstr what settings
# what: "settings" (the rendered orchd configuration), "assertions" (messages of the
# failed assertions), "unit" (the orchd service), "system" (what the module sets
# outside services.orch).
{ nixpkgsLib, config, what ? "settings" }:

let
  libDir = if builtins.pathExists (nixpkgsLib + "/lib/default.nix") then nixpkgsLib + "/lib" else nixpkgsLib;
  lib = import libDir;
  eval = lib.evalModules {
    modules = [
      ./stubs.nix
      ../../nix/module.nix
      config
      ({ pkgs, ... }: { services.orch.guestImage = lib.mkDefault pkgs.orch-guest; })
    ];
  };
  c = eval.config;
  failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  unit = c.systemd.services.orchd;
in
{
  settings = if failed == [ ] then c.services.orch.renderedSettings else throw (builtins.concatStringsSep "\n" failed);
  assertions = failed;
  unit = {
    inherit (unit) wantedBy wants after environment serviceConfig unitConfig;
  };
  system = {
    groups = builtins.attrNames c.users.groups;
    libvirtd = c.virtualisation.libvirtd.enable;
    kernelModules = c.boot.kernelModules;
    tmpfiles = c.systemd.tmpfiles.rules;
    postgresql = c.services.postgresql.enable or false;
  };
}.${what}
