# Renders the typed parts of services.orch into orchd's JSON configuration
# (docs/CONFIG.md). Pure functions of the module's config; no pkgs.
{ lib }:

let
  inherit (lib) filterAttrs mapAttrs optionalAttrs;

  # Credentials reach orchd through systemd's LoadCredential; for a system
  # service their directory is /run/credentials/<unit> ($CREDENTIALS_DIRECTORY).
  credentialsDir = "/run/credentials/orchd.service";

  dropNulls = filterAttrs (_: v: v != null);
in
rec {
  inherit credentialsDir;

  # The credential id of the database password (store.postgresql.passwordFile).
  pgCredentialName = "pg-password";

  # The credential id of an upstream's key file (a file name in credentialsDir).
  credentialName = name: "llm-${name}";

  # `name:path` entries for LoadCredential.
  loadCredentials = upstreams:
    lib.mapAttrsToList (name: u: "${credentialName name}:${u.keyFile}") upstreams;

  # orchd gives each VM 256 uids (docs/CONFIG.md, vms.<name>.uid_base): its own uidBase,
  # else the top level's plus 256 per place among the VMs (sorted by name, as rendered).
  vmUids = 256;
  vmUidBase = cfg: name:
    let
      vm = cfg.vms.${name};
      place = lib.lists.findFirstIndex (n: n == name) 0 (lib.attrNames cfg.vms);
    in
    if vm.uidBase != null then vm.uidBase else cfg.uidBase + vmUids * place;

  renderLimits = l: dropNulls {
    timeout_ms = l.timeoutMs;
    memory_mib = l.memoryMiB;
    pids = l.pids;
    cpu_percent = l.cpuPercent;
    nofile = l.nofile;
    fsize_mib = l.fsizeMiB;
  };

  # guestImage: the package built from nix/guest.nix (or null); a VM on the
  # libvirt backend that names no kernel boots it.
  renderVm = { backend, guestImage, uidBase }: name: vm:
    let
      effectiveBackend = if vm.backend != null then vm.backend else backend;
      useImage = effectiveBackend == "libvirt" && guestImage != null;
      pick = own: fromImage: if own != null then own else if useImage then fromImage else null;
    in
    dropNulls {
      backend = vm.backend;
      slots = vm.slots;
      vcpus = vm.vcpus;
      memory_mib = vm.memoryMiB;
      boot_memory_mib = vm.bootMemoryMiB;
      unplug_idle_ms = vm.unplugIdleMs;
      workspace = vm.workspace;
      autostart = vm.autostart;
      profiles = vm.profiles;
      transport = vm.transport;
      accel = vm.accel;
      boot_timeout_ms = vm.bootTimeoutMs;
      uid_base = uidBase name;
      kernel = pick vm.kernel "${guestImage}/${guestImage.kernelFile or "vmlinuz"}";
      initrd = pick vm.initrd "${guestImage}/${guestImage.initrdFile or "initrd"}";
      cmdline = pick vm.cmdline (guestImage.cmdline or null);
      egress = if vm.egress == [ ] then null else vm.egress;
      isolation = vm.isolation;
      pool = if vm.pool == null then null else dropNulls { inherit (vm.pool) ready max; keep_workspaces = vm.pool.keepWorkspaces; };
      snapshot = if vm.snapshot then true else null;
    }
    // optionalAttrs (renderLimits vm.limits != { }) { limits = renderLimits vm.limits; };

  # The key files of egress.inject, as credentials egress-0, egress-1, ... in the order of
  # the list.
  egressCredentialName = i: "egress-${toString i}";
  egressCredentials = inject:
    lib.imap0 (i: inj: "${egressCredentialName i}:${inj.keyFile}") inject;

  renderEgress = e:
    {
      sets = e.sets;
    }
    // optionalAttrs (e.allowPrivate != [ ]) { allow_private = e.allowPrivate; }
    // optionalAttrs (e.resolve != { }) { resolve = e.resolve; }
    // optionalAttrs (e.dlpPatterns != [ ]) { dlp_patterns = e.dlpPatterns; }
    // optionalAttrs (e.inject != [ ]) {
      inject = lib.imap0 (i: inj: {
        inherit (inj) host header prefix;
        key_file = "${credentialsDir}/${egressCredentialName i}";
      }) e.inject;
    }
    // dropNulls { upstream_ca_file = e.upstreamCaFile; log_keep = e.logKeep; }
    // optionalAttrs (renderEgressLimits e.limits != { }) { limits = renderEgressLimits e.limits; };

  renderEgressLimits = l: dropNulls {
    connections = l.connections;
    bytes = l.bytes;
    duration_ms = l.durationMs;
    connect_timeout_ms = l.connectTimeoutMs;
  };

  # The key files of git.credentials (a token or an SSH key each), as credentials git-0,
  # git-1, ... in the order of the list.
  gitCredentialName = i: "git-${toString i}";
  gitCredentials = creds:
    lib.imap0 (i: c: "${gitCredentialName i}:${if c.tokenFile != null then c.tokenFile else c.sshKeyFile}") creds;

  renderGit = g:
    dropNulls {
      dir = g.dir;
      workspace_mib = g.workspaceMiB;
      workspace_inodes = g.workspaceInodes;
      min_free_mib = g.minFreeMiB;
      keep_workspaces = g.keepWorkspaces;
      fetch_interval_ms = g.fetchIntervalMs;
      timeout_ms = g.timeoutMs;
      max_result_mib = g.maxResultMiB;
      max_repo_mib = g.maxRepoMiB;
      max_diff_mib = g.maxDiffMiB;
    }
    // optionalAttrs (g.credentials != [ ]) {
      credentials = lib.imap0 (i: c: dropNulls {
        inherit (c) url;
        username = c.username;
        known_hosts = c.knownHosts;
        token_file = if c.tokenFile != null then "${credentialsDir}/${gitCredentialName i}" else null;
        ssh_key_file = if c.sshKeyFile != null then "${credentialsDir}/${gitCredentialName i}" else null;
      }) g.credentials;
    }
    // optionalAttrs (g.remotes != { }) { remotes = g.remotes; }
    // optionalAttrs (dropNulls (renderPush g.push) != { }) { push = dropNulls (renderPush g.push); };

  renderPush = p: {
    refs = p.refs;
    protected_paths = p.protectedPaths;
    secret_patterns = p.secretPatterns;
    max_files = p.maxFiles;
    max_bytes = p.maxBytes;
    max_file_bytes = p.maxFileBytes;
  };

  renderUpstream = name: u: dropNulls {
    kind = u.kind;
    base_url = u.baseUrl;
    key_file = "${credentialsDir}/${credentialName name}";
  };

  renderModel = _: m: {
    upstream = m.upstream;
    input_usd_per_mtok = m.inputUsdPerMtok;
    output_usd_per_mtok = m.outputUsdPerMtok;
  };

  renderBudgets = b: dropNulls {
    agent_usd = b.agentUsd;
    task_usd = b.taskUsd;
    agent_tokens = b.agentTokens;
    task_tokens = b.taskTokens;
  };

  # The typed options as a fragment of the configuration file; merged with
  # services.orch.settings (the freeform part) by the module system.
  settingsFragment = cfg:
    {
      state_dir = cfg.stateDir;
      socket = cfg.socket;
      group = cfg.group;
      workspace_root = cfg.workspaceRoot;
      agents_dir = cfg.agents.directory;
      uid_base = cfg.uidBase;
      vms = mapAttrs (renderVm {
        inherit (cfg) guestImage;
        backend = cfg.settings.backend;
        uidBase = vmUidBase cfg;
      }) cfg.vms;
    }
    // optionalAttrs (cfg.llm.upstreams != { } || cfg.llm.models != { }) {
      llm = {
        upstreams = mapAttrs renderUpstream cfg.llm.upstreams;
        models = mapAttrs renderModel cfg.llm.models;
      }
      // optionalAttrs (renderBudgets cfg.llm.budgets != { }) {
        budgets = renderBudgets cfg.llm.budgets;
      };
    }
    // optionalAttrs (cfg.egress.sets != { } || cfg.egress.inject != [ ]) {
      egress = renderEgress cfg.egress;
    }
    // optionalAttrs (renderGit cfg.git != { }) {
      git = renderGit cfg.git;
    }
    // optionalAttrs cfg.store.postgresql.enable {
      store.postgresql = dropNulls {
        conninfo = cfg.store.postgresql.conninfo;
        node = cfg.store.postgresql.node;
        password_file =
          if cfg.store.postgresql.passwordFile == null then null
          else "${credentialsDir}/${pgCredentialName}";
      };
    }
    // optionalAttrs (dropNulls { socket = cfg.metrics.socket; tcp_port = cfg.metrics.tcpPort; } != { }) {
      metrics = dropNulls { socket = cfg.metrics.socket; tcp_port = cfg.metrics.tcpPort; };
    };

  # Removes the nulls that stand for "not set" in the options. orchd's keys that
  # accept null (supervisor, kernel, initrd, cmdline) default to null, so leaving
  # them out means the same.
  finalize = settings: lib.filterAttrsRecursive (_: v: v != null) settings;
}
