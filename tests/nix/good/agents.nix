# expect-settings: .agents_dir == "/nix/store/00000000000000000000000000000000-orch-agents"
# Agent CLIs from nixpkgs (and one of the user's own): agents_dir is their store path.
{ pkgs, ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a = { slots = 2; };
    agents.fromNixpkgs = [ "claude" "codex" "gemini" "opencode" ];
    agents.packages.pi = pkgs.orch;
  };
}
