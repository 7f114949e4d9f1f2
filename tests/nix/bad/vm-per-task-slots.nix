# expect: a vm-per-task VM runs one task: slots must be 1
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a = { isolation = "vm-per-task"; slots = 2; };
  };
}
