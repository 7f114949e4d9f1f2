# expect: services.orch.vms.small: its uids 100256..100511 are not inside the agents' uid range 100000..100255
{ ... }: {
  services.orch = {
    enable = true;
    uidCount = 256;
    vms.big.slots = 8;
    vms.small.slots = 4;
  };
}
