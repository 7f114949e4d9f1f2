# expect: the workspaces of the libvirt VMs dev lie in a directory the agents of local VMs pass through
{ ... }: {
  services.orch = {
    enable = true;
    vms.dev = { backend = "libvirt"; };
    vms.scratch = { backend = "local"; };
  };
}
