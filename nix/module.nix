# NixOS host module: services.orch runs orchd (docs/CONFIG.md is the format it
# renders). See docs/NIXOS.md for a complete example.
{ config, lib, pkgs, ... }:

let
  inherit (lib)
    all attrNames attrValues concatLists filter genList hasPrefix
    literalExpression mapAttrsToList mkEnableOption mkIf mkOption optional
    optionals types unique;

  cfg = config.services.orch;
  render = import ./render.nix { inherit lib; };
  agentsLib = import ./agents.nix { inherit lib pkgs; };
  agentPackages = agentsLib.packagesFor cfg.agents.fromNixpkgs cfg.agents.packages;
  settingsFormat = pkgs.formats.json { };

  nameOk = n: builtins.match "[A-Za-z0-9_-]{1,32}" n != null;
  absPath = p: hasPrefix "/" p;
  # Also the literal /nix/store when the evaluator's store lives elsewhere (tests).
  inStore = p: lib.any (d: hasPrefix "${d}/" p || p == d) (unique [ builtins.storeDir "/nix/store" ]);

  uidMax = 4294967294; # 2^32-1 is the invalid uid

  vmBackend = vm: if vm.backend != null then vm.backend else cfg.settings.backend;
  usesLibvirt = cfg.vms != { } && lib.any (vm: vmBackend vm == "libvirt") (attrValues cfg.vms);
  vmWorkspace = name: vm: if vm.workspace != null then vm.workspace else "${cfg.workspaceRoot}/${name}";
  # docs/CONFIG.md "Workspaces": a libvirt VM's workspace has a parent private to root (its
  # guest's root can plant setuid files there); a local VM's agents are host uids that pass
  # through every directory above theirs.
  vmsOf = backend: lib.filterAttrs (_: vm: vmBackend vm == backend) cfg.vms;
  # A pooled class (docs/VM.md, "Pools"): orchd makes its VMs, each with the workspace
  # <class's workspace>/<class>.<n>, so the class's workspace is their parent.
  pooled = vm: vm.pool != null || vm.isolation == "vm-per-task";
  localWorkspaces = mapAttrsToList vmWorkspace (vmsOf "local");
  localBelow = dir: lib.any (p: p == dir || hasPrefix "${dir}/" p) localWorkspaces;
  vmParent = name: vm: if pooled vm then vmWorkspace name vm else dirOf (vmWorkspace name vm);
  libvirtParents = unique (mapAttrsToList vmParent (vmsOf "libvirt"));
  workspaceConflicts = attrNames (lib.filterAttrs (name: vm: localBelow (vmParent name vm)) (vmsOf "libvirt"));

  localPostgres = cfg.store.postgresql.enable && cfg.store.postgresql.createLocally;
  finalSettings = render.finalize cfg.settings;
  rawConfigFile = settingsFormat.generate "orchd.json" finalSettings;
  checkedConfigFile = pkgs.runCommand "orchd-checked.json" { nativeBuildInputs = [ cfg.package ]; } ''
    orchd --check-config ${rawConfigFile} --offline
    cp ${rawConfigFile} $out
  '';

  nullOrInt = lo: hi: types.nullOr (types.ints.between lo hi);

  limitsOptions = {
    options = {
      timeoutMs = mkOption { type = nullOrInt 0 604800000; default = null; description = "Wall-clock timeout of a task in ms (`timeout_ms`); 0: none, null: inherit."; };
      memoryMiB = mkOption { type = nullOrInt 0 1048576; default = null; description = "cgroup `memory.max` of a jail in MiB (`memory_mib`)."; };
      pids = mkOption { type = nullOrInt 0 1000000; default = null; description = "cgroup `pids.max` of a jail (`pids`)."; };
      cpuPercent = mkOption { type = nullOrInt 0 6400; default = null; description = "cgroup `cpu.max`, 100 = one CPU (`cpu_percent`)."; };
      nofile = mkOption { type = nullOrInt 0 1048576; default = null; description = "RLIMIT_NOFILE (`nofile`)."; };
      fsizeMiB = mkOption { type = nullOrInt 0 1048576; default = null; description = "RLIMIT_FSIZE in MiB (`fsize_mib`)."; };
    };
  };

  poolOptions = {
    options = {
      ready = mkOption { type = nullOrInt 0 64; default = null; description = "Shared: the class's VMs, kept up (1..64); vm-per-task: idle VMs kept booted (0..64). null: 1."; };
      max = mkOption { type = nullOrInt 1 256; default = null; description = "vm-per-task only: the most VMs of the class at once, busy ones included (at least `ready`). null: max(4, ready)."; };
      keepWorkspaces = mkOption { type = nullOrInt 0 1000000; default = null; description = "vm-per-task only: the workspaces of the class's retired VMs kept on the host, the newest ones; older ones are removed (`keep_workspaces`). null: 16."; };
    };
  };

  vmOptions = { name, config, ... }: {
    options = {
      backend = mkOption { type = types.nullOr (types.enum [ "local" "libvirt" ]); default = null; description = "`libvirt`: a QEMU microVM; `local`: the supervisor runs on the host (no VM). null: `settings.backend`."; };
      slots = mkOption { type = types.ints.between 1 64; default = if config.isolation == "vm-per-task" then 1 else 4; defaultText = literalExpression ''if isolation == "vm-per-task" then 1 else 4''; description = "Agent slots (concurrent tasks); agent N runs as uid `<the VM's uid base> + N`. A vm-per-task class has 1."; };
      isolation = mkOption { type = types.nullOr (types.enum [ "shared" "vm-per-task" ]); default = null; description = "`vm-per-task`: every task gets a VM no earlier task touched, destroyed after it, with a workspace of its own (`isolation`, docs/VM.md \"Pools\"). null: `shared`."; };
      pool = mkOption { type = types.nullOr (types.submodule poolOptions); default = null; example = literalExpression "{ ready = 2; }"; description = "Makes the class pooled: orchd makes and retires its VMs `<name>.<n>`, each with the workspace `<workspace>/<name>.<n>` (`pool`). null: not pooled, unless `isolation` is `vm-per-task`."; };
      snapshot = mkOption { type = types.bool; default = false; description = "Start the class's VMs from a snapshot taken right after the supervisor's hello (`snapshot`; libvirt backend, pooled classes)."; };
      uidBase = mkOption { type = nullOrInt 1000 4294000000; default = null; description = "The first of this VM's 256 uids (`uid_base`); null: `services.orch.uidBase` + 256 × the VM's place among the VMs sorted by name."; };
      vcpus = mkOption { type = types.ints.between 1 256; default = 2; description = "Virtual CPUs."; };
      memoryMiB = mkOption { type = types.ints.between 64 1048576; default = 2048; description = "Guest memory in MiB."; };
      bootMemoryMiB = mkOption { type = nullOrInt 64 1048576; default = null; example = 256; description = "Memory hot-plug (`boot_memory_mib`, docs/VM.md \"Memory hot-plug\"): the guest boots with this much, and the rest of `memoryMiB` is plugged while it runs tasks; `memoryMiB` minus it must be a multiple of 128. null: all of `memoryMiB` at boot."; };
      unplugIdleMs = mkOption { type = nullOrInt 1000 86400000; default = null; description = "With `bootMemoryMiB`: the hot-plugged memory is unplugged after the VM ran no task for this long (`unplug_idle_ms`). null: 30000."; };
      workspace = mkOption { type = types.nullOr types.str; default = null; defaultText = literalExpression ''"''${workspaceRoot}/<name>"''; description = "Host directory shared with the VM; agent N works in `<workspace>/agent-N`."; };
      autostart = mkOption { type = types.bool; default = true; description = "Start the VM with orchd (otherwise `orch vm up ${name}`)."; };
      profiles = mkOption { type = types.listOf types.str; default = [ ]; description = "Agent profiles allowed on this VM (names in `settings.profiles`); empty: all."; };
      transport = mkOption { type = types.nullOr (types.enum [ "auto" "vsock" "virtio-serial" ]); default = null; description = "Host-guest channel; null: orchd's default (`auto`)."; };
      accel = mkOption { type = types.nullOr (types.enum [ "auto" "kvm" "tcg" ]); default = null; description = "Accelerator; null: orchd's default (`auto`)."; };
      bootTimeoutMs = mkOption { type = nullOrInt 1000 3600000; default = null; description = "Boot to the supervisor's hello, in ms."; };
      kernel = mkOption { type = types.nullOr types.str; default = null; description = "Guest kernel; null: the one of `services.orch.guestImage`."; };
      initrd = mkOption { type = types.nullOr types.str; default = null; description = "Guest initrd; null: the one of `services.orch.guestImage`."; };
      cmdline = mkOption { type = types.nullOr types.str; default = null; description = "Kernel command line; null: the one of `services.orch.guestImage`."; };
      limits = mkOption { type = types.submodule limitsOptions; default = { }; description = "Task limits of this VM."; };
      egress = mkOption { type = types.listOf types.str; default = [ ]; example = [ "npm" "github" ]; description = "Egress sets (names in `services.orch.egress.sets`) tasks on this VM may use (`vms.<name>.egress`, docs/EGRESS.md); a task gets those it asks for (`orch dispatch --egress`). Empty: no way out."; };
    };
  };

  injectOptions = {
    options = {
      host = mkOption { type = types.str; example = "api.github.com:443"; description = "The intercepted host, `name:port`."; };
      header = mkOption { type = types.str; example = "Authorization"; description = "The header orchd adds to its requests."; };
      prefix = mkOption { type = types.str; default = ""; example = "Bearer "; description = "Put before the key in the header's value."; };
      keyFile = mkOption {
        type = types.str; # a string: a path value would be copied into the world-readable store
        example = "/run/secrets/github-token";
        description = "File holding the key (one line); it reaches orchd as a systemd credential (LoadCredential), never through the Nix store, the environment or a guest.";
      };
    };
  };

  gitCredentialOptions = {
    options = {
      url = mkOption { type = types.str; example = "https://github.com/acme/"; description = "The credentials are used for repository URLs that start with this."; };
      username = mkOption { type = types.nullOr types.str; default = null; description = "HTTP(S): the user name sent with the token (null: `x-access-token`)."; };
      tokenFile = mkOption {
        type = types.nullOr types.str; # a string: a path value would be copied into the store
        default = null;
        example = "/run/secrets/github-token";
        description = "HTTP(S): file holding the token (one line); it reaches orchd as a systemd credential, never a guest.";
      };
      sshKeyFile = mkOption { type = types.nullOr types.str; default = null; description = "SSH: a private key file, passed as a systemd credential."; };
      knownHosts = mkOption { type = types.nullOr types.str; default = null; description = "SSH: the known_hosts file the host key must be in (null: the first one seen is kept)."; };
    };
  };

  upstreamOptions = { name, ... }: {
    options = {
      kind = mkOption { type = types.enum [ "anthropic" "openai" "gemini" ]; description = "API dialect of upstream ${name}: Anthropic Messages, OpenAI (Chat Completions and Responses) or the Gemini API."; };
      baseUrl = mkOption { type = types.nullOr types.str; default = null; example = "https://api.anthropic.com"; description = "Base URL; null: the kind's public API."; };
      keyFile = mkOption {
        # A string, not a path: a path value would be copied into the world-readable store.
        type = types.str;
        example = "/run/secrets/anthropic-key";
        description = ''
          File holding the API key (one line), read when orchd starts. It reaches
          orchd as the systemd credential `${render.credentialName name}` (LoadCredential),
          never through the Nix store or the environment. Use a secrets manager
          (agenix, sops-nix) or a root-only file; never a Nix path literal.
        '';
      };
    };
  };

  modelOptions = {
    options = {
      upstream = mkOption { type = types.str; description = "Name of an upstream in `llm.upstreams`."; };
      inputUsdPerMtok = mkOption { type = types.addCheck types.number (x: x >= 0 && x <= 10000); description = "USD per million input tokens."; };
      outputUsdPerMtok = mkOption { type = types.addCheck types.number (x: x >= 0 && x <= 10000); description = "USD per million output tokens."; };
    };
  };

  nullOrNum = hi: types.nullOr (types.addCheck types.number (x: x >= 0 && x <= hi));

  vmAssertions = concatLists (mapAttrsToList (name: vm: [
    {
      assertion = nameOk name;
      message = "services.orch.vms.\"${name}\": VM names must match [A-Za-z0-9_-]{1,32}.";
    }
    {
      assertion = vmUidBase name >= cfg.uidBase && vmUidBase name + render.vmUids <= agentUidEnd;
      message = "services.orch.vms.${name}: its uids ${toString (vmUidBase name)}..${toString (vmUidBase name + render.vmUids - 1)} are not inside the agents' uid range ${toString cfg.uidBase}..${toString (agentUidEnd - 1)} (services.orch.uidBase, uidCount); raise uidCount or move the VM's uidBase.";
    }
    {
      assertion = vmBackend vm != "libvirt" || vm.kernel != null || cfg.guestImage != null;
      message = "services.orch.vms.${name} runs on the libvirt backend but has no guest image: set services.orch.guestImage (the flake's nixosModules.default does) or vms.${name}.kernel and .initrd.";
    }
    {
      assertion = vm.kernel == null || (absPath vm.kernel && (vm.initrd != null));
      message = "services.orch.vms.${name}.kernel must be an absolute path and comes with vms.${name}.initrd.";
    }
    {
      assertion = vm.isolation != "vm-per-task" || vm.slots == 1;
      message = "services.orch.vms.${name}.slots: a vm-per-task VM runs one task: slots must be 1.";
    }
    {
      assertion = vm.bootMemoryMiB == null || (vm.bootMemoryMiB < vm.memoryMiB && lib.mod (vm.memoryMiB - vm.bootMemoryMiB) 128 == 0);
      message = "services.orch.vms.${name}.bootMemoryMiB must be below memoryMiB, with memoryMiB - bootMemoryMiB a multiple of 128 (the guest adds memory in blocks of 128 MiB).";
    }
    {
      assertion = vm.unplugIdleMs == null || vm.bootMemoryMiB != null;
      message = "services.orch.vms.${name}.unplugIdleMs: only memory hot-plug (bootMemoryMiB) unplugs.";
    }
    {
      assertion = !vm.snapshot || (vmBackend vm == "libvirt" && pooled vm);
      message = "services.orch.vms.${name}.snapshot: snapshots need the libvirt backend and a pooled class (vms.${name}.pool, or isolation \"vm-per-task\").";
    }
    {
      assertion = all (p: (cfg.settings.profiles or { }) ? ${p}) vm.profiles;
      message = "services.orch.vms.${name}.profiles names profiles that are not in services.orch.settings.profiles: ${toString (filter (p: !((cfg.settings.profiles or { }) ? ${p})) vm.profiles)}.";
    }
  ]) cfg.vms);

  upstreamAssertions = concatLists (mapAttrsToList (name: u: [
    {
      assertion = nameOk name;
      message = "services.orch.llm.upstreams.\"${name}\": upstream names must match [A-Za-z0-9_-]{1,32} (the name becomes a systemd credential id).";
    }
    {
      assertion = !inStore u.keyFile;
      message = "services.orch.llm.upstreams.${name}.keyFile is inside the Nix store (${u.keyFile}), where every user can read it: keep the key outside the store (e.g. /run/secrets/${name}) and give its path as a string.";
    }
    {
      assertion = absPath u.keyFile;
      message = "services.orch.llm.upstreams.${name}.keyFile must be an absolute path, not \"${u.keyFile}\".";
    }
  ]) cfg.llm.upstreams);

  egressAssertions = concatLists (mapAttrsToList (name: vm: map (set: {
    assertion = cfg.egress.sets ? ${set};
    message = "services.orch.vms.${name}.egress: \"${set}\" is not in services.orch.egress.sets.";
  }) vm.egress) cfg.vms)
  ++ concatLists (lib.imap0 (i: inj: [
    {
      assertion = !inStore inj.keyFile;
      message = "services.orch.egress.inject (${inj.host}).keyFile is inside the Nix store (${inj.keyFile}), where every user can read it: keep the key outside the store and give its path as a string.";
    }
    {
      assertion = absPath inj.keyFile;
      message = "services.orch.egress.inject (${inj.host}).keyFile must be an absolute path, not \"${inj.keyFile}\".";
    }
  ]) cfg.egress.inject);

  gitAssertions = concatLists (lib.imap0 (i: c: let f = if c.tokenFile != null then c.tokenFile else c.sshKeyFile; in [
    {
      assertion = (c.tokenFile == null) != (c.sshKeyFile == null);
      message = "services.orch.git.credentials (${c.url}): set one of tokenFile and sshKeyFile.";
    }
    {
      assertion = f == null || (!inStore f && absPath f);
      message = "services.orch.git.credentials (${c.url}): the key file must be an absolute path outside the Nix store (every user can read the store).";
    }
  ]) cfg.git.credentials);
  pg = cfg.store.postgresql;
  storeAssertions = optionals (pg.enable && pg.passwordFile != null) [
    {
      assertion = !inStore pg.passwordFile;
      message = "services.orch.store.postgresql.passwordFile is inside the Nix store (${pg.passwordFile}), where every user can read it: keep the password outside the store (e.g. /run/secrets/orch-pg) and give its path as a string.";
    }
    {
      assertion = absPath pg.passwordFile;
      message = "services.orch.store.postgresql.passwordFile must be an absolute path, not \"${pg.passwordFile}\".";
    }
  ];

  modelAssertions = mapAttrsToList (model: m: {
    assertion = cfg.llm.upstreams ? ${m.upstream};
    message = "services.orch.llm.models.\"${model}\".upstream: \"${m.upstream}\" is not in services.orch.llm.upstreams.";
  }) cfg.llm.models;

  vmUidBase = render.vmUidBase cfg;
  # Users declared with a fixed uid inside the agents' uid range would share files with agents.
  agentUidEnd = cfg.uidBase + cfg.uidCount; # exclusive
  # systemd's DynamicUser= range (61184..65519).
  dynamicUidsOverlap = cfg.uidBase <= 65519 && agentUidEnd > 61184;
  clashingUsers = attrNames (lib.filterAttrs (_: u: (u.uid or null) != null && u.uid >= cfg.uidBase && u.uid < agentUidEnd) config.users.users);

  workspaceRules = concatLists (mapAttrsToList (name: vm:
    let ws = vmWorkspace name vm; in
    # A pooled class's workspace holds its VMs' (orchd makes them and their agent-N): for
    # libvirt it is their parent, private to root (libvirtParents); for local, passable.
    if pooled vm then optional (vmBackend vm != "libvirt") "d ${ws} 0755 root root - -"
    else [ "d ${ws} ${if vmBackend vm == "libvirt" then "0711" else "0755"} root root - -" ]
    ++ genList (n: let uid = toString (vmUidBase name + n); in "d ${ws}/agent-${toString n} 0700 ${uid} ${uid} - -") vm.slots
  ) cfg.vms);

  writablePaths = unique ([ cfg.stateDir cfg.workspaceRoot (dirOf cfg.socket) ]
    ++ mapAttrsToList vmWorkspace cfg.vms);
in
{
  options.services.orch = {
    enable = mkEnableOption "orch, LLM coding agents in QEMU microVMs (orchd)";

    package = lib.mkPackageOption pkgs "orch" { };

    guestImage = mkOption {
      type = types.nullOr types.package;
      default = null;
      defaultText = literalExpression "the flake's packages.\${system}.orch-guest";
      description = ''
        The guest image (kernel, initrd and its command line in passthru `cmdline`) that
        VMs on the libvirt backend boot unless they name their own kernel. The flake's
        `nixosModules.default` sets it to the image built from `nixosModules.guest`.
      '';
    };

    stateDir = mkOption { type = types.str; default = "/var/lib/orch"; description = "SQLite store, output spool and console logs (`state_dir`)."; };
    socket = mkOption { type = types.str; default = "/run/orch/orch.sock"; description = "Control socket of the `orch` CLI (`socket`), mode 0660, group `group`."; };
    group = mkOption { type = types.str; default = "orch"; description = "Group whose members may use the `orch` CLI (the control socket) and open debug shells (`orch shell`); created by the module."; };
    workspaceRoot = mkOption { type = types.str; default = "${cfg.stateDir}/workspaces"; defaultText = literalExpression ''"''${stateDir}/workspaces"''; description = "Agent workspaces live in `<workspaceRoot>/<vm>/agent-N` (`workspace_root`)."; };
    uidBase = mkOption { type = types.ints.between 1000 4294000000; default = 100000; description = "Where the VMs' uids begin (`uid_base`): each VM has 256 (its agents and the supervisor's unprivileged helpers), by default `uidBase + 256 ×` its place among the VMs sorted by name."; };
    uidCount = mkOption {
      type = types.ints.between 256 16777216;
      default = lib.max 256 (256 * lib.length (attrNames cfg.vms));
      defaultText = literalExpression "256 * (number of VMs)";
      description = ''
        Size of the uid/gid range reserved for agents and helpers, from `uidBase`: every
        VM's 256 uids must lie in it; no user declared in `users.users` may have a uid in
        it, and it must not overlap systemd's DynamicUser range (61184-65519).
      '';
    };
    checkConfig = mkOption { type = types.bool; default = true; description = "Validate the rendered file with `orchd --check-config` at build time."; };

    limits = mkOption { type = types.submodule limitsOptions; default = { }; description = "Default task limits (`limits`)."; };

    agents = {
      fromNixpkgs = mkOption {
        type = types.listOf (types.enum agentsLib.names);
        default = [ ];
        example = [ "claude" "codex" "gemini" "opencode" ];
        description = ''
          Agent CLIs taken from nixpkgs (claude: claude-code, codex, gemini: gemini-cli,
          opencode; pi has no nixpkgs package): they make `agents.directory` a store path
          with the layout of `orch agents install` (docs/AGENTS.md). Some are unfree
          (nixpkgs.config.allowUnfree). Give the guest image the same ones
          (services.orch-supervisor.agents) so that VMs see them at the same path.
        '';
      };
      packages = mkOption {
        type = types.attrsOf types.package;
        default = { };
        example = literalExpression "{ claude = pkgs.claude-code; }";
        description = "Agent CLIs by the name profiles use (their `agent`), each a package with bin/COMMAND; wins over `fromNixpkgs`.";
      };
      directory = mkOption {
        type = types.str;
        default = if agentPackages != { } then "${agentsLib.directory agentPackages}" else "/opt/orch/agents";
        defaultText = literalExpression ''the store path of fromNixpkgs and packages, else "/opt/orch/agents" (`orch agents install`)'';
        description = "orchd's `agents_dir`: where profiles find their agent CLIs.";
      };
    };

    vms = mkOption {
      type = types.attrsOf (types.submodule vmOptions);
      default = { default = { }; };
      example = literalExpression ''{ dev = { vcpus = 4; memoryMiB = 8192; slots = 4; profiles = [ "claude" ]; }; }'';
      description = "The VMs orchd manages, by name (`vms`).";
    };

    llm = {
      upstreams = mkOption { type = types.attrsOf (types.submodule upstreamOptions); default = { }; description = "LLM upstream APIs by name (`llm.upstreams`); their keys stay on the host."; };
      models = mkOption { type = types.attrsOf (types.submodule modelOptions); default = { }; description = "Model allowlist and price table (`llm.models`); models not listed are refused."; };
      budgets = {
        agentUsd = mkOption { type = nullOrNum 1000000; default = null; description = "Spend per agent slot in USD (`llm.budgets.agent_usd`); 0: unlimited."; };
        taskUsd = mkOption { type = nullOrNum 1000000; default = null; description = "Spend per task in USD (`llm.budgets.task_usd`); 0: unlimited."; };
        agentTokens = mkOption { type = nullOrInt 0 1000000000000; default = null; description = "Tokens per agent slot (`llm.budgets.agent_tokens`)."; };
        taskTokens = mkOption { type = nullOrInt 0 1000000000000; default = null; description = "Tokens per task (`llm.budgets.task_tokens`)."; };
      };
    };

    store.postgresql = {
      enable = mkOption { type = types.bool; default = false; description = "Keep orchd's store in PostgreSQL, shared by the orchd nodes of a cluster (`store.postgresql`, docs/FLEET.md), instead of SQLite in stateDir."; };
      conninfo = mkOption { type = types.str; default = "host=/run/postgresql dbname=orch user=orch"; description = "libpq connection string, without a password (`store.postgresql.conninfo`): a local server's Unix socket or a remote host."; };
      passwordFile = mkOption { type = types.nullOr types.str; default = null; description = "File holding the database password (one line); it reaches orchd as the systemd credential `pg-password`, never through the Nix store. null: peer or .pgpass authentication."; };
      node = mkOption { type = types.nullOr types.str; default = null; description = "This host's node name in the cluster (`store.postgresql.node`); null: the host name."; };
      createLocally = mkOption { type = types.bool; default = false; description = "Run the PostgreSQL server on this host (services.postgresql) with the database and role `orch`, which orchd (root) reaches by peer authentication over the Unix socket."; };
    };

    metrics = {
      socket = mkOption { type = types.nullOr types.str; default = null; description = "Unix socket of the Prometheus exposition (`metrics.socket`); null: metrics.sock beside the control socket."; };
      tcpPort = mkOption { type = types.nullOr types.port; default = null; description = "Also serve the metrics on 127.0.0.1:<port> (`metrics.tcp_port`), for a Prometheus on this host; any local user can read them there."; };
    };

    egress = {
      sets = mkOption {
        type = types.attrsOf (types.listOf types.str);
        default = { };
        example = literalExpression ''{ npm = [ "registry.npmjs.org:443" ]; github = [ "github.com:443" "*.githubusercontent.com:443" ]; }'';
        description = "Egress allow sets (`egress.sets`, docs/EGRESS.md): rules `host:port`, `*.domain:port` or an IP literal with port. Any set (or `inject`) turns the egress gateway on; without them jails have no way out.";
      };
      allowPrivate = mkOption { type = types.listOf types.str; default = [ ]; description = "Names allowed to resolve to loopback, private and link-local addresses (`egress.allow_private`)."; };
      resolve = mkOption { type = types.attrsOf (types.either types.str (types.listOf types.str)); default = { }; description = "Addresses used instead of DNS for these names (`egress.resolve`)."; };
      inject = mkOption { type = types.listOf (types.submodule injectOptions); default = [ ]; description = "Intercepted hosts whose requests get a header with a key orchd holds (`egress.inject`); orchd's CA is made under the state directory."; };
      dlpPatterns = mkOption { type = types.listOf types.str; default = [ ]; description = "POSIX extended regular expressions refused in requests to intercepted hosts (`egress.dlp_patterns`)."; };
      limits = {
        connections = mkOption { type = nullOrInt 1 1024; default = null; description = "Open connections per agent slot (`egress.limits.connections`, 32)."; };
        bytes = mkOption { type = types.nullOr types.ints.unsigned; default = null; description = "Bytes per task, both ways (`egress.limits.bytes`); 0: none."; };
        durationMs = mkOption { type = nullOrInt 0 604800000; default = null; description = "Duration of one connection in ms (`egress.limits.duration_ms`, 1 h); 0: none."; };
        connectTimeoutMs = mkOption { type = nullOrInt 100 600000; default = null; description = "Time to resolve and connect to a host in ms (`egress.limits.connect_timeout_ms`, 10 s)."; };
      };
      upstreamCaFile = mkOption { type = types.nullOr types.str; default = null; description = "CA file (absolute path) for verifying intercepted hosts (`egress.upstream_ca_file`); null: the system's trust store."; };
      logKeep = mkOption { type = nullOrInt 100 100000000; default = null; description = "Egress log rows kept, the newest (`egress.log_keep`, 100000)."; };
    };

    git = {
      dir = mkOption { type = types.nullOr types.str; default = null; description = "Repository caches, results and task workspace images (`git.dir`); null: `<stateDir>/git`."; };
      workspaceMiB = mkOption { type = nullOrInt 16 16777216; default = null; description = "Size of a repository task's workspace (`git.workspace_mib`, 4096): a loop-mounted ext4 image; writing past it fails with ENOSPC in the jail."; };
      workspaceInodes = mkOption { type = nullOrInt 0 1073741824; default = null; description = "Files in a task workspace (`git.workspace_inodes`); 0: one per 16 KiB."; };
      minFreeMiB = mkOption { type = nullOrInt 0 16777216; default = null; description = "Free space the host keeps beyond what the workspaces may still take (`git.min_free_mib`, 1024)."; };
      keepWorkspaces = mkOption { type = nullOrInt 0 100000; default = null; description = "Finished tasks' workspaces kept (`git.keep_workspaces`, 10)."; };
      fetchIntervalMs = mkOption { type = nullOrInt 0 86400000; default = null; description = "A repository cache fetched this recently is not fetched again (`git.fetch_interval_ms`, 60000)."; };
      timeoutMs = mkOption { type = nullOrInt 1000 86400000; default = null; description = "One git operation (`git.timeout_ms`, 600000)."; };
      maxResultMiB = mkOption { type = nullOrInt 1 1048576; default = null; description = "A task's result at most (`git.max_result_mib`, 512)."; };
      maxRepoMiB = mkOption { type = nullOrInt 1 16777216; default = null; description = "One fetched pack at most (`git.max_repo_mib`, 8192)."; };
      maxDiffMiB = mkOption { type = nullOrInt 1 1048576; default = null; description = "`orch diff`'s output at most, cut beyond (`git.max_diff_mib`, 64)."; };
      credentials = mkOption { type = types.listOf (types.submodule gitCredentialOptions); default = [ ]; description = "Credentials orchd fetches and pushes with (`git.credentials`), by URL prefix; the jails never see them."; };
      remotes = mkOption { type = types.attrsOf types.str; default = { }; example = literalExpression ''{ fork = "https://github.com/me/project.git"; }''; description = "Remotes `orch push --remote NAME` may push to (`git.remotes`)."; };
      push = {
        refs = mkOption { type = types.nullOr (types.listOf types.str); default = null; description = "Patterns of the refs a push may name (`git.push.refs`, `[\"orch/*\"]`)."; };
        protectedPaths = mkOption { type = types.nullOr (types.listOf types.str); default = null; description = "Paths that may change only with `orch push --allow` (`git.push.protected_paths`; default CI workflows and hooks)."; };
        secretPatterns = mkOption { type = types.nullOr (types.listOf types.str); default = null; description = "POSIX extended regular expressions no added line may match (`git.push.secret_patterns`)."; };
        maxFiles = mkOption { type = types.nullOr types.ints.unsigned; default = null; description = "Changed files per push (`git.push.max_files`)."; };
        maxBytes = mkOption { type = types.nullOr types.ints.unsigned; default = null; description = "Bytes of new and changed files per push (`git.push.max_bytes`)."; };
        maxFileBytes = mkOption { type = types.nullOr types.ints.unsigned; default = null; description = "Bytes of one file (`git.push.max_file_bytes`)."; };
      };
    };

    settings = mkOption {
      type = types.submodule {
        freeformType = settingsFormat.type;
        options = {
          log_level = mkOption { type = types.enum [ "error" "warn" "info" "debug" ]; default = "warn"; description = "orchd's stderr log level (in the journal)."; };
          backend = mkOption { type = types.enum [ "local" "libvirt" ]; default = "libvirt"; description = "Backend of VMs that name none."; };
          profiles = mkOption { type = types.attrsOf settingsFormat.type; default = { }; description = "Agent profiles (`profiles`, see docs/CONFIG.md)."; };
        };
      };
      default = { };
      example = literalExpression ''{ scheduler.retries = 2; llm.rate_limits.agent_rpm = 60; }'';
      description = ''
        orchd's configuration (docs/CONFIG.md), rendered to JSON. The typed options above
        fill their keys; anything else (scheduler, llm.rate_limits, strip_tools, ...) goes
        here verbatim.
      '';
    };

    configFile = mkOption {
      type = types.package;
      readOnly = true;
      description = "The rendered configuration file orchd runs with.";
    };
    renderedSettings = mkOption {
      type = settingsFormat.type;
      readOnly = true;
      internal = true;
      description = "The configuration as it is written to `configFile`.";
    };
  };

  config = mkIf cfg.enable {
    services.orch.settings = render.settingsFragment cfg
      // lib.optionalAttrs (render.renderLimits cfg.limits != { }) { limits = render.renderLimits cfg.limits; };
    services.orch.renderedSettings = finalSettings;
    services.orch.configFile = if cfg.checkConfig then checkedConfigFile else rawConfigFile;

    assertions = vmAssertions ++ upstreamAssertions ++ modelAssertions ++ egressAssertions ++ gitAssertions ++ storeAssertions ++ [
      {
        assertion = builtins.all (n: agentsLib.nixpkgsAttrs ? ${n} || cfg.agents.packages ? ${n}) cfg.agents.fromNixpkgs;
        message = "services.orch.agents.fromNixpkgs: nixpkgs has no package for ${toString (builtins.filter (n: !(agentsLib.nixpkgsAttrs ? ${n})) cfg.agents.fromNixpkgs)}; give one in services.orch.agents.packages, or install it with `orch agents install` into a writable services.orch.agents.directory.";
      }
      { assertion = cfg.vms != { }; message = "services.orch.vms is empty: orchd needs at least one VM."; }
      {
        assertion = clashingUsers == [ ];
        message = "services.orch: users ${toString clashingUsers} have uids inside the agents' range ${toString cfg.uidBase}..${toString (agentUidEnd - 1)} (services.orch.uidBase, uidCount); move the range or the users.";
      }
      {
        assertion = !dynamicUidsOverlap;
        message = "services.orch: the agents' uid range ${toString cfg.uidBase}..${toString (agentUidEnd - 1)} overlaps systemd's DynamicUser range 61184..65519; move services.orch.uidBase.";
      }
      {
        assertion = agentUidEnd - 1 <= uidMax;
        message = "services.orch: the agents' uid range ends at ${toString (agentUidEnd - 1)}, beyond the last valid uid ${toString uidMax}; lower services.orch.uidBase or uidCount.";
      }
      { assertion = all absPath ([ cfg.stateDir cfg.socket cfg.workspaceRoot ] ++ mapAttrsToList vmWorkspace cfg.vms); message = "services.orch: stateDir, socket, workspaceRoot and vms.*.workspace must be absolute paths."; }
      {
        assertion = workspaceConflicts == [ ];
        message = "services.orch: the workspaces of the libvirt VMs ${toString workspaceConflicts} lie in a directory the agents of local VMs pass through, but it must be private to root (docs/CONFIG.md, \"Workspaces\"); give them or the local VMs a workspace elsewhere (services.orch.vms.<name>.workspace).";
      }
    ];

    users.groups.${cfg.group} = { };

    environment.systemPackages = [ cfg.package ];

    virtualisation.libvirtd = mkIf usesLibvirt {
      enable = true;
      # libvirt starts virtiofsd for the workspace share.
      qemu.vhostUserPackages = [ pkgs.virtiofsd ];
    };
    boot.kernelModules = optionals usesLibvirt [ "vhost_vsock" ];

    # A local database for the store: role and database orch, reached by root (orchd)
    # over the Unix socket with peer authentication mapped to the role.
    services.postgresql = mkIf localPostgres {
      enable = true;
      ensureDatabases = [ "orch" ];
      ensureUsers = [ { name = "orch"; ensureDBOwnership = true; } ];
      identMap = ''
        orch root orch
      '';
      authentication = lib.mkBefore ''
        local orch orch peer map=orch
      '';
    };

    systemd.tmpfiles.rules = [
      "d ${cfg.stateDir} 0750 root ${cfg.group} - -"
      "d ${cfg.workspaceRoot} ${if localBelow cfg.workspaceRoot then "0711" else "0700"} root root - -"
      "d ${dirOf cfg.socket} 0755 root root - -"
    ] ++ map (p: "d ${p} 0700 root root - -") (filter (p: p != cfg.workspaceRoot) libvirtParents)
    ++ workspaceRules
    # orchd's libvirt backend names virtiofsd by its Debian path and the configuration
    # has no key for it yet; give it that path on NixOS.
    ++ optional usesLibvirt "L+ /usr/lib/qemu/virtiofsd - - - - ${pkgs.virtiofsd}/bin/virtiofsd";

    systemd.services.orchd = {
      description = "orch daemon: LLM coding agents in microVMs";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ] ++ optional usesLibvirt "libvirtd.service"
        ++ optional localPostgres "postgresql.service";
      after = [ "network-online.target" "systemd-tmpfiles-setup.service" ] ++ optional usesLibvirt "libvirtd.service"
        ++ optional localPostgres "postgresql.service";
      # The local backend's supervisor finds bwrap in PATH; repository tasks run git,
      # mkfs.ext4, mount and setpriv (docs/WORKSPACES.md).
      path = [ pkgs.bubblewrap pkgs.git pkgs.e2fsprogs pkgs.util-linux ];
      restartTriggers = [ config.services.orch.configFile ];
      unitConfig = {
        StartLimitIntervalSec = 300;
        StartLimitBurst = 10;
      };
      serviceConfig = {
        ExecStart = "${cfg.package}/bin/orchd --config ${config.services.orch.configFile}";
        Restart = "on-failure";
        RestartSec = "2s";
        # API keys: copied by systemd to /run/credentials/orchd.service/llm-<name>,
        # readable by this service only; the file names are in the rendered config.
        LoadCredential = render.loadCredentials cfg.llm.upstreams
          ++ render.egressCredentials cfg.egress.inject
          ++ render.gitCredentials cfg.git.credentials
          ++ optional (cfg.store.postgresql.enable && cfg.store.postgresql.passwordFile != null)
            "${render.pgCredentialName}:${cfg.store.postgresql.passwordFile}";
        # Task workspaces are loop mounts orchd makes below the VMs' workspace shares;
        # libvirt's virtiofsd (outside this unit's mount namespace) must see them.
        MountFlags = "shared";
        UMask = "0027";
        LimitNOFILE = 65536;
        # orchd stays root: it talks to qemu:///system and, for the local backend,
        # runs bubblewrap jails that switch to the agents' uids and make cgroups.
        Delegate = true;
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ReadWritePaths = writablePaths;
        ProtectHome = "read-only";
        PrivateTmp = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        SystemCallArchitectures = "native";
        RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" "AF_VSOCK" ];
        # Not set on purpose: PrivateDevices (libvirt and bwrap need /dev), RestrictNamespaces
        # and ProtectControlGroups (jails need namespaces and cgroups), ProtectKernelTunables,
        # ProtectProc and ProtectHostname (they would confine the jails' own /proc and UTS
        # namespaces), MemoryDenyWriteExecute (inherited by agents; breaks JITs like node),
        # PrivateNetwork (the LLM proxy calls the upstream), PrivateUsers.
      };
    };
  };
}
