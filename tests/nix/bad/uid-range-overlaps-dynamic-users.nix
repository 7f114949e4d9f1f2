# expect: overlaps systemd's DynamicUser range
{ ... }: {
  services.orch = {
    enable = true;
    uidBase = 61000;
    uidCount = 256;
  };
}
