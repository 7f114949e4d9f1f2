# expect: services.orch.egress.inject (api.github.com:443).keyFile is inside the Nix store
{ ... }: {
  services.orch = {
    enable = true;
    egress.inject = [ { host = "api.github.com:443"; header = "Authorization"; keyFile = "/nix/store/00000000000000000000000000000000-token"; } ];
  };
}
