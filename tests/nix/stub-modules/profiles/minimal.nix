# Stand-in for nixpkgs' nixos/modules/profiles/minimal.nix (tests/nix/eval-guest.nix).
{ }
