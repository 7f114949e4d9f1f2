# expect-settings: .vms.small.memory_mib == 2048 and .vms.small.boot_memory_mib == 256 and .vms.small.unplug_idle_ms == 60000 and (.vms.plain | has("boot_memory_mib") | not) and (.vms.plain | has("unplug_idle_ms") | not)
# Memory hot-plug (docs/VM.md, "Memory hot-plug"): a VM that boots with 256 MiB of its
# 2048 and gets the rest while it runs tasks; another with all of it at boot.
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "libvirt";
    vms.small = { bootMemoryMiB = 256; unplugIdleMs = 60000; kernel = "/boot/vmlinuz"; initrd = "/boot/initrd"; };
    vms.plain = { kernel = "/boot/vmlinuz"; initrd = "/boot/initrd"; };
  };
}
