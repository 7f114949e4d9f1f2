# expect: services.orch.vms.dev runs on the libvirt backend but has no guest image
{ ... }: {
  services.orch = {
    enable = true;
    guestImage = null;
    vms.dev = { };
  };
}
