# expect: users alice bob have uids inside the agents' range
{ ... }: {
  services.orch = {
    enable = true;
    uidBase = 100000;
    vms.dev.slots = 8;
    uidCount = 256;
  };
  users.users.alice.uid = 100007;
  users.users.bob.uid = 100008;
}
