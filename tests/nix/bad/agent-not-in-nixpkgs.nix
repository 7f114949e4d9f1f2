# expect: nixpkgs has no package for pi
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a = { };
    agents.fromNixpkgs = [ "claude" "pi" ];
  };
}
