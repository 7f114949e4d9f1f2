# expect: passwordFile is inside the Nix store
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a-dev = { slots = 1; };
    store.postgresql = {
      enable = true;
      conninfo = "host=db.example.internal dbname=orch user=orch";
      # What "${./pg-password}" would give: the password copied into the store.
      passwordFile = "/nix/store/00000000000000000000000000000000-pg-password";
    };
  };
}
