# The complete host configuration of docs/NIXOS.md (kept identical to it by
# tests/nix/check-config.sh), which renders it with nix/module.nix and has
# `orchd --check-config` judge the result.
{ ... }:

{
  services.orch = {
    enable = true;

    # Members of this group may use the `orch` CLI (the control socket is 0660 root:orch)
    # and open debug shells (orch shell).
    group = "orch";

    # Each VM has 256 uids of its own from here, in the order of their names (dev from
    # 100000, scratch from 100256): agent N of dev is uid/gid 100000 + N.
    uidBase = 100000;
    uidCount = 512;

    # Default limits of every task.
    limits = {
      timeoutMs = 3600000;
      memoryMiB = 4096;
      pids = 1024;
      cpuPercent = 200;
    };

    vms = {
      # A QEMU microVM booting the NixOS guest of this flake, four agents.
      dev = {
        vcpus = 4;
        memoryMiB = 8192;
        slots = 4;
        profiles = [ "claude" "shell" ];
        limits.memoryMiB = 2048;
      };
      # No VM: the supervisor runs on the host (bubblewrap jails only). Its agents are
      # host uids that pass through every directory above their workspace, so it lives
      # outside workspaceRoot, which stays private to root (docs/CONFIG.md, "Workspaces").
      scratch = {
        backend = "local";
        slots = 2;
        workspace = "/var/lib/orch/local/scratch";
      };
    };

    llm = {
      upstreams = {
        anthropic = {
          kind = "anthropic";
          # A path as a string: read when orchd starts, handed over as a systemd
          # credential, never copied into the Nix store.
          keyFile = "/run/secrets/anthropic-api-key";
        };
        openai = {
          kind = "openai";
          keyFile = "/run/secrets/openai-api-key";
        };
      };
      # The model allowlist and price table (USD per million tokens).
      models = {
        "claude-sonnet-4-5" = { upstream = "anthropic"; inputUsdPerMtok = 3.0; outputUsdPerMtok = 15.0; };
        "claude-haiku-4-5" = { upstream = "anthropic"; inputUsdPerMtok = 1.0; outputUsdPerMtok = 5.0; };
        "gpt-4.1" = { upstream = "openai"; inputUsdPerMtok = 2.0; outputUsdPerMtok = 8.0; };
      };
      budgets = {
        agentUsd = 20.0;
        taskUsd = 5.0;
      };
    };

    # Everything else of docs/CONFIG.md, verbatim.
    settings = {
      log_level = "info";
      scheduler.retries = 1;
      profiles = {
        claude = {
          description = "Claude Code, non-interactive";
          command = [ "claude" "-p" ];
          env.DISABLE_AUTOUPDATER = "1";
          limits.timeout_ms = 7200000;
        };
        shell = {
          description = "plain shell command";
          command = [ "/bin/sh" "-c" ];
        };
      };
      llm.rate_limits = { agent_rpm = 60; task_rpm = 60; };
    };
  };

  # Who may dispatch tasks.
  users.users.alice.extraGroups = [ "orch" ];
}
