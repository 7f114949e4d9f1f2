# Agent CLIs from nixpkgs as orchd's agents directory (docs/AGENTS.md): the layout
# `orch agents install` makes, NAME/current -> the package (bin/COMMAND inside), in the
# Nix store. The host module and the guest build it from the same packages, so both get
# the same store path (a VM's jails bind NAME/current from the guest's own store).
{ lib, pkgs }:

rec {
  # The agents' names (the profiles' "agent") and their nixpkgs attributes; pi is not
  # packaged in nixpkgs.
  nixpkgsAttrs = {
    claude = "claude-code";
    codex = "codex";
    gemini = "gemini-cli";
    opencode = "opencode";
  };
  names = [ "claude" "codex" "gemini" "opencode" "pi" ];

  # fromNixpkgs: names; packages: name -> package (wins over nixpkgs).
  packagesFor = fromNixpkgs: packages:
    lib.genAttrs (builtins.filter (n: nixpkgsAttrs ? ${n}) fromNixpkgs) (n: pkgs.${nixpkgsAttrs.${n}})
    // packages;

  directory = packages: pkgs.linkFarm "orch-agents"
    (lib.mapAttrsToList (name: pkg: { name = "${name}/current"; path = pkg; }) packages);
}
