# expect: services.orch.vms.dev.profiles names profiles that are not in services.orch.settings.profiles: codex
{ ... }: {
  services.orch = {
    enable = true;
    vms.dev.profiles = [ "shell" "codex" ];
    settings.profiles.shell.command = [ "/bin/sh" "-c" ];
  };
}
