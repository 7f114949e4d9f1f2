# expect-system: .libvirtd == false and .kernelModules == [] and (.tmpfiles | all(startswith("L+ /usr/lib/qemu") | not))
# Only the local backend: no libvirtd, no vhost_vsock, no image keys.
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    stateDir = "/srv/orch";
    socket = "/run/orch-local/ctl.sock";
    uidBase = 200000;
    vms.a = { slots = 3; workspace = "/srv/work/a"; };
    vms.b = { slots = 1; autostart = false; limits = { timeoutMs = 60000; pids = 64; }; };
  };
}
