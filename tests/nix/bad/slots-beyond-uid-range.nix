# expect: services.orch.vms.big: 8 agent slots do not fit the agents' uid range of 4 uids
{ ... }: {
  services.orch = {
    enable = true;
    uidCount = 4;
    vms.big.slots = 8;
    vms.small.slots = 4;
  };
}
