# An example host configuration (the one of docs/NIXOS.md, and the same setup as
# host/orchd.example.json). tests/nix renders it with nix/module.nix and checks the
# result against example-settings.json, which `orchd --check-config` must accept.
{ ... }:

{
  services.orch = {
    enable = true;
    group = "orch";
    uidBase = 100000;

    limits = {
      timeoutMs = 3600000;
      memoryMiB = 4096;
      pids = 1024;
      cpuPercent = 200;
      nofile = 4096;
      fsizeMiB = 8192;
    };

    vms = {
      dev = {
        vcpus = 4;
        memoryMiB = 8192;
        slots = 4;
        profiles = [ "claude" "shell" ];
        limits.memoryMiB = 2048;
      };
      scratch = {
        backend = "local";
        slots = 2;
      };
    };

    llm = {
      upstreams = {
        anthropic = {
          kind = "anthropic";
          baseUrl = "https://api.anthropic.com";
          keyFile = "/run/secrets/anthropic-api-key";
        };
        openai = {
          kind = "openai";
          keyFile = "/run/secrets/openai-api-key";
        };
      };
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

    settings = {
      log_level = "info";
      scheduler = {
        retries = 1;
        heartbeat_ms = 2000;
      };
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
      llm = {
        max_tokens_cap = 32000;
        strip_tools = [ "web_search" "web_fetch" "code_execution" ];
        rate_limits = { agent_rpm = 60; task_rpm = 60; };
      };
    };
  };
}
