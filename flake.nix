{
  description = "orch: LLM coding agents in QEMU microVMs, one bubblewrap jail per agent";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      lib = nixpkgs.lib;
      pkgs = nixpkgs.legacyPackages.${system};

      orch = pkgs.callPackage ./nix/package.nix { };
      orch-supervisor = pkgs.callPackage ./nix/supervisor.nix { inherit orch; };

      # The guest NixOS system; its system.build.orchImage is what orchd boots.
      guest = lib.nixosSystem {
        inherit system;
        modules = [ self.nixosModules.guest ];
      };

      # Runs a tests/nix script with nixpkgs' lib and the Nix evaluator in the sandbox.
      nixScriptCheck = name: script: pkgs.runCommand "orch-${name}"
        {
          nativeBuildInputs = [ pkgs.nix pkgs.jq pkgs.git ];
          ORCH_SOURCEDIR = self;
          ORCH_NIXPKGS_LIB = nixpkgs;
        } ''
        # A private, empty Nix store for the evaluator (as nixpkgs' lib tests do).
        export HOME=$TMPDIR NIX_BUILD_HOOK= PAGER=cat
        export NIX_CONF_DIR=$TMPDIR/nix/etc NIX_LOCALSTATE_DIR=$TMPDIR/nix/var
        export NIX_STATE_DIR=$TMPDIR/nix/var/nix NIX_LOG_DIR=$TMPDIR/nix/var/log/nix
        export NIX_STORE_DIR=$TMPDIR/nix/store
        mkdir -p $NIX_CONF_DIR
        nix-store --init
        bash ${self}/tests/nix/${script}
        touch $out
      '';
    in
    {
      packages.${system} = {
        default = orch;
        inherit orch orch-supervisor;
        orch-guest = guest.config.system.build.orchImage;
      };

      overlays.default = final: _prev: {
        orch = final.callPackage ./nix/package.nix { };
        orch-supervisor = final.callPackage ./nix/supervisor.nix { };
      };

      # Host: services.orch, with the package and guest image of this flake.
      nixosModules.default = { lib, pkgs, ... }: {
        imports = [ ./nix/module.nix ];
        services.orch.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.orch;
        services.orch.guestImage = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.orch-guest;
      };

      # Guest: the NixOS configuration of the VMs (extend it with more modules and
      # build the image with lib.nixosSystem, see docs/NIXOS.md).
      nixosModules.guest = { lib, pkgs, ... }: {
        imports = [ ./nix/guest.nix ];
        services.orch-supervisor.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.orch-supervisor;
      };

      devShells.${system}.default = pkgs.mkShell {
        inputsFrom = [ orch ];
        packages = with pkgs; [
          check
          clang
          clang-tools # clang-format
          gdb
          bubblewrap
          socat
          tmux
          sqlite
          qemu
          libvirt
          virtiofsd
          erofs-utils
          squashfsTools
          cpio
          jq
          nodejs
          nix
        ];
        # tests/nix evaluates the module with this nixpkgs' lib.
        ORCH_NIXPKGS_LIB = "${nixpkgs}";
      };

      checks.${system} = {
        inherit orch orch-supervisor;
        orch-unit = orch.override { doCheck = true; };
        guest-image = self.packages.${system}.orch-guest;
        nix-parse = nixScriptCheck "nix-parse" "parse.sh";
        module-eval = nixScriptCheck "module-eval" "module-eval.sh";
        guest-eval = nixScriptCheck "guest-eval" "guest-eval.sh";
        # A NixOS host running orchd dispatches tasks into a NixOS guest (TCG inside
        # the test VM).
        vm-test = import ./nix/tests/vm-test.nix { inherit pkgs self; };
      };
    };
}
