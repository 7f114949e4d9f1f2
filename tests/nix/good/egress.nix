# The egress gateway: sets, a VM allowed some, an intercepted host whose key arrives as a
# credential (rendered as its path in the credentials directory), limits, the upstream CA
# file and the log's size. orchd accepts the rendering (module-eval.sh runs orchd
# --check-config on it).
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.dev = { slots = 2; egress = [ "npm" "github" ]; };
    egress = {
      sets = {
        npm = [ "registry.npmjs.org:443" ];
        github = [ "github.com:443" "*.githubusercontent.com:443" ];
      };
      inject = [ { host = "api.github.com:443"; header = "Authorization"; prefix = "Bearer "; keyFile = "/run/secrets/github-token"; } ];
      dlpPatterns = [ "ghp_[A-Za-z0-9]{36}" ];
      limits = { connections = 16; connectTimeoutMs = 5000; };
      upstreamCaFile = "/etc/ssl/certs/ca-certificates.crt";
      logKeep = 5000;
    };
  };
}
