# A node of a cluster: the store in a local PostgreSQL server (the module runs it, with
# the role orch reached by peer authentication), the metrics on a loopback port too.
# expect-settings: .store.postgresql.conninfo == "host=/run/postgresql dbname=orch user=orch" and .store.postgresql.node == "node-a" and (.store.postgresql | has("password_file") | not) and .metrics.tcp_port == 9464
# expect-system: .postgresql == true
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a-dev = { slots = 2; };
    store.postgresql = { enable = true; node = "node-a"; createLocally = true; };
    metrics.tcpPort = 9464;
  };
}
