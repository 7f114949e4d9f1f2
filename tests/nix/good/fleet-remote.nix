# A node of a cluster whose PostgreSQL server is another host: the password reaches orchd
# as the credential pg-password (rendered as its path in the credentials directory), the
# node name is the host name (none rendered).
# expect-settings: .store.postgresql.conninfo == "host=db.example.internal dbname=orch user=orch sslmode=verify-full" and .store.postgresql.password_file == "/run/credentials/orchd.service/pg-password" and (.store.postgresql | has("node") | not) and (has("metrics") | not)
# expect-system: .postgresql == false
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.b-dev = { slots = 2; };
    store.postgresql = {
      enable = true;
      conninfo = "host=db.example.internal dbname=orch user=orch sslmode=verify-full";
      passwordFile = "/run/secrets/orch-pg";
    };
  };
}
