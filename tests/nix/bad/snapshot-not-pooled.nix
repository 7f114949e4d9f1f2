# expect: snapshots need the libvirt backend and a pooled class
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "libvirt";
    vms.a = { snapshot = true; kernel = "/boot/vmlinuz"; initrd = "/boot/initrd"; };
  };
}
