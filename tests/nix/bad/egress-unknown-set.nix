# expect: services.orch.vms.dev.egress: "pypi" is not in services.orch.egress.sets
{ ... }: {
  services.orch = {
    enable = true;
    vms.dev.egress = [ "pypi" ];
    egress.sets.npm = [ "registry.npmjs.org:443" ];
  };
}
