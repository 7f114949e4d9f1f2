# expect: outside the Nix store
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a = { };
    git.credentials = [ { url = "https://github.com/"; tokenFile = "/nix/store/0000-token"; } ];
  };
}
