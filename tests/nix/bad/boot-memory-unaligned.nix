# expect: memoryMiB - bootMemoryMiB a multiple of 128
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "libvirt";
    vms.a = { memoryMiB = 1024; bootMemoryMiB = 300; kernel = "/boot/vmlinuz"; initrd = "/boot/initrd"; };
  };
}
