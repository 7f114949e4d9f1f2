# expect-settings: .vms.batch.isolation == "vm-per-task" and .vms.batch.slots == 1 and .vms.batch.pool == {"ready": 2, "max": 6, "keep_workspaces": 4} and .vms.batch.snapshot == true and .vms.warm.pool == {} and (.vms.warm | has("snapshot") | not)
# expect-system: (.tmpfiles | index("d /var/lib/orch/workspaces/batch 0700 root root - -") != null) and (.tmpfiles | all(test("/batch/agent-|/warm/agent-") | not))
# Pools (docs/VM.md, "Pools"): a VM per task from a warm pool restored from a snapshot,
# and a shared pool with the default size.
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "libvirt";
    vms.batch = { isolation = "vm-per-task"; pool = { ready = 2; max = 6; keepWorkspaces = 4; }; snapshot = true; kernel = "/boot/vmlinuz"; initrd = "/boot/initrd"; };
    vms.warm = { pool = { }; kernel = "/boot/vmlinuz"; initrd = "/boot/initrd"; };
  };
}
