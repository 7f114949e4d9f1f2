# expect: services.orch.vms is empty
{ lib, ... }: {
  services.orch = {
    enable = true;
    vms = lib.mkForce { };
  };
}
