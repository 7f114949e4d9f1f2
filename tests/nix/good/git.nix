# expect-settings: .git.workspace_mib == 2048 and .git.max_repo_mib == 1024 and .git.max_diff_mib == 8 and .git.credentials[0].token_file == "/run/credentials/orchd.service/git-0" and .git.credentials[1].ssh_key_file == "/run/credentials/orchd.service/git-1" and .git.push.refs == ["orch/*", "agent/*"] and .git.remotes.fork == "https://github.com/me/p.git"
# Repository tasks: the workspace size, credentials as systemd credentials, the push gate.
{ ... }: {
  services.orch = {
    enable = true;
    settings.backend = "local";
    vms.a = { slots = 2; };
    git = {
      workspaceMiB = 2048;
      keepWorkspaces = 3;
      maxRepoMiB = 1024;
      maxDiffMiB = 8;
      credentials = [
        { url = "https://github.com/acme/"; tokenFile = "/run/secrets/github-token"; }
        { url = "ssh://git@github.com/acme/"; sshKeyFile = "/run/secrets/deploy-key"; knownHosts = "/etc/orch/known_hosts"; }
      ];
      remotes.fork = "https://github.com/me/p.git";
      push.refs = [ "orch/*" "agent/*" ];
    };
  };
}
