# The NixOS guest of an orch VM: booted directly (kernel + initrd, no boot loader,
# no disk), no network interface, no DHCP, no SSH. The whole system closure is a
# squashfs inside the initrd, mounted read-only on /nix/store; / is a tmpfs; the
# workspace comes from the host over virtio-fs. orch-supervisor starts as early as
# its channel and the workspace allow, and dials the host.
#
# Kernel command line (set by orchd; all optional):
#   orch.connect=ADDR   vsock:2:700 | serial:/dev/virtio-ports/NAME (default: the
#                       virtio-serial port org.orch.control when the VM has one, else
#                       vsock:2:700)
#   orch.name=NAME      (hostname; not used here), orch.workspace=TAG (this guest
#                       always mounts the tag "workspace", orchd's default)
#   orch.slots=N        agent slots
#   orch.uidbase=UID    first agent uid (default services.orch-supervisor.uidBase)
#   orch.llm=ADDR       the LLM channel of its own (serial:/dev/virtio-ports/org.orch.llm
#                       or vsock:2:PORT); without it LLM calls use the control channel
#   orch.egress=ADDR    the egress lane (serial:/dev/virtio-ports/org.orch.egress or
#                       vsock:2:PORT); without it the jails have no way out
#   orch.shell=serial|vsock  per-agent debug shells (virtio-serial org.orch.shell.N,
#                       or vsock port 6000+N)
#   orch.loglevel=L     the supervisor's log level
#
# system.build.orchImage is the image orchd boots: bzImage, initrd, cmdline (also
# as passthru: kernelFile, initrdFile, cmdline).
{ config, lib, pkgs, modulesPath, ... }:

let
  inherit (lib) mkDefault mkForce mkOption types;
  cfg = config.services.orch-supervisor;
  agentsLib = import ./agents.nix { inherit lib pkgs; };

  supervisorConfig = pkgs.writeText "orch-supervisor.json" (builtins.toJSON {
    workspace_root = "/workspace";
    uid_base = cfg.uidBase;
    bwrap = "${pkgs.bubblewrap}/bin/bwrap";
    ro_paths = cfg.roPaths;
    log_level = cfg.logLevel;
  });

  start = pkgs.writeShellScript "orch-supervisor-start" ''
    connect=
    slots=
    uid_base=
    llm=
    egress=
    shell=
    loglevel=
    for arg in $(< /proc/cmdline); do
      case "$arg" in
        orch.connect=*) connect=''${arg#orch.connect=} ;;
        orch.slots=*) slots=''${arg#orch.slots=} ;;
        orch.uidbase=*) uid_base=''${arg#orch.uidbase=} ;;
        orch.llm=*) llm=''${arg#orch.llm=} ;;
        orch.egress=*) egress=''${arg#orch.egress=} ;;
        orch.shell=*) shell=''${arg#orch.shell=} ;;
        orch.loglevel=*) loglevel=''${arg#orch.loglevel=} ;;
      esac
    done
    # The supervisor may start before udev made /dev/virtio-ports/NAME: find the
    # named port in sysfs instead.
    port_dev() {
      for p in /sys/class/virtio-ports/*; do
        if [ -r "$p/name" ] && [ "$(< "$p/name")" = "$1" ]; then
          echo "/dev/''${p##*/}"
          return 0
        fi
      done
      return 1
    }
    case "$connect" in
      "")
        if dev=$(port_dev org.orch.control); then connect=serial:$dev; else connect=vsock:2:700; fi ;;
      serial:/dev/virtio-ports/*)
        name=''${connect#serial:/dev/virtio-ports/}
        if [ ! -e "/dev/virtio-ports/$name" ] && dev=$(port_dev "$name"); then connect=serial:$dev; fi ;;
    esac
    case "$llm" in
      serial:/dev/virtio-ports/*)
        name=''${llm#serial:/dev/virtio-ports/}
        if [ ! -e "/dev/virtio-ports/$name" ] && dev=$(port_dev "$name"); then llm=serial:$dev; fi ;;
    esac
    case "$egress" in
      serial:/dev/virtio-ports/*)
        name=''${egress#serial:/dev/virtio-ports/}
        if [ ! -e "/dev/virtio-ports/$name" ] && dev=$(port_dev "$name"); then egress=serial:$dev; fi ;;
    esac
    set -- --config ${supervisorConfig} --connect "$connect"
    [ -z "$slots" ] || set -- "$@" --slots "$slots"
    [ -z "$uid_base" ] || set -- "$@" --uid-base "$uid_base"
    [ -z "$llm" ] || set -- "$@" --llm-connect "$llm"
    [ -z "$egress" ] || set -- "$@" --egress-connect "$egress"
    [ -z "$loglevel" ] || set -- "$@" --log-level "$loglevel"
    case "$shell" in
      serial) set -- "$@" --shell-listen 'serial:/dev/virtio-ports/org.orch.shell.%u' ;;
      vsock) set -- "$@" --shell-listen vsock ;;
    esac
    exec ${lib.getExe' cfg.package "orch-supervisor"} "$@" ${lib.escapeShellArgs cfg.extraArgs}
  '';

  cmdline = "init=${config.system.build.toplevel}/init ${toString config.boot.kernelParams}";
in
{
  imports = [ (modulesPath + "/profiles/minimal.nix") ];

  options.services.orch-supervisor = {
    package = mkOption {
      type = types.package;
      defaultText = lib.literalExpression "the flake's packages.\${system}.orch-supervisor";
      description = "Package providing bin/orch-supervisor (and orch-jail-exec beside it or in libexec/).";
    };
    uidBase = mkOption {
      type = types.ints.between 1000 4294000000;
      default = 100000;
      description = "Agent N runs as uid `uidBase + N`; keep it equal to the host's services.orch.uidBase (files in the shared workspace carry these uids).";
    };
    agentPackages = mkOption {
      type = types.listOf types.package;
      default = with pkgs; [
        bashInteractive coreutils findutils gnugrep gnused gawk diffutils patch
        gnutar gzip xz which procps less file gnumake git jq ripgrep curl
      ];
      defaultText = lib.literalExpression "basic shell, text and build tools, git, jq, ripgrep, curl";
      example = lib.literalExpression "with pkgs; [ git nodejs python3 claude-code ]";
      description = ''
        Tools agents see in their jails (in PATH through /usr/local/bin). The guest has no
        network: agents reach only their LLM endpoint, so everything they run must be here.
      '';
    };
    agents = mkOption {
      type = types.attrsOf types.package;
      default = { };
      example = lib.literalExpression "{ claude = pkgs.claude-code; codex = pkgs.codex; }";
      description = ''
        Agent CLIs by the name profiles use, in the image's store as the directory the
        host's services.orch.agents makes from the same packages (the same store path, so
        orchd's agents_dir resolves in the guest as on the host; docs/AGENTS.md).
      '';
    };
    roPaths = mkOption {
      type = types.listOf types.str;
      default = [ "/nix/store" "/run/current-system" "/usr" "/bin" "/etc" ];
      description = "Read-only paths bound into every jail.";
    };
    logLevel = mkOption {
      type = types.enum [ "error" "warn" "info" "debug" ];
      default = "warn";
      description = "orch-supervisor's log level (the guest journal and console).";
    };
    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra orch-supervisor flags.";
    };
  };

  config = {
    # Direct kernel boot: no boot loader, root on tmpfs, the store from the initrd.
    boot.loader.grub.enable = false;
    boot.initrd.systemd.enable = mkDefault false; # the scripted stage 1 mounts the store below
    boot.initrd.includeDefaultModules = false;
    boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_console" "squashfs" ];
    boot.initrd.kernelModules = [ "loop" ];
    boot.initrd.checkJournalingFS = false;
    # virtio_mem: memory hot-plug (a class's boot_memory_mib), plugged only once tasks run.
    boot.kernelModules = [ "vsock" "vmw_vsock_virtio_transport" "virtio_console" "virtiofs" "fuse" "virtio_mem" ];
    boot.kernelParams = [
      "console=ttyS0"
      "panic=-1" # the host sees a crash as the domain going away, not a hang
      "quiet"
      "loglevel=4"
      "systemd.show_status=auto"
      "8250.nr_uarts=1"
      "i8042.noaux"
      "i8042.nopnp"
    ];

    fileSystems."/" = { fsType = "tmpfs"; options = [ "mode=0755" "size=50%" ]; };
    fileSystems."/nix/store" = {
      device = "../nix-store.squashfs"; # inside the initrd (see orchImage)
      fsType = "squashfs";
      options = [ "loop" "ro" ];
      neededForBoot = true;
    };
    fileSystems."/workspace" = {
      device = "workspace"; # the virtio-fs tag orchd gives the VM's workspace
      fsType = "virtiofs";
      # Without the share the supervisor does not start (RequiresMountsFor) and orchd
      # reports the boot timeout with the console's tail; no emergency shell.
      # nosuid,nodev: a setuid bit or a device node in the host's directory gives nothing
      # here; not noexec: agents build and run programs in their workspace.
      options = [ "nofail" "nosuid" "nodev" ];
    };

    system.build.orchSupervisorConfig = supervisorConfig;
    system.build.orchStore = pkgs.callPackage (modulesPath + "/../lib/make-squashfs.nix") {
      storeContents = [ config.system.build.toplevel ]
        ++ lib.optional (cfg.agents != { }) (agentsLib.directory cfg.agents);
      comp = "zstd -Xcompression-level 6";
    };
    system.build.orchInitrd = pkgs.makeInitrdNG {
      # The squashfs is compressed already; the kernel takes concatenated archives.
      compressor = "cat";
      prepend = [ "${config.system.build.initialRamdisk}/initrd" ];
      contents = [ { source = config.system.build.orchStore; target = "/nix-store.squashfs"; } ];
    };
    system.build.orchImage = pkgs.runCommand "orch-guest-image"
      {
        passthru = {
          kernelFile = "bzImage";
          initrdFile = "initrd";
          inherit cmdline;
        };
      } ''
      mkdir -p $out
      ln -s ${config.system.build.kernel}/${config.system.boot.loader.kernelFile} $out/bzImage
      ln -s ${config.system.build.orchInitrd}/initrd $out/initrd
      echo ${lib.escapeShellArg cmdline} > $out/cmdline
    '';

    # No network: orchd gives the VM no NIC; keep every network service out too.
    networking.hostName = mkDefault "orch-guest";
    networking.useDHCP = false;
    networking.dhcpcd.enable = false;
    networking.firewall.enable = false;
    networking.resolvconf.enable = false;
    services.openssh.enable = mkForce false;
    services.timesyncd.enable = false;
    services.nscd.enable = false;
    system.nssModules = mkForce [ ];

    # Trimmed for boot time and size.
    nix.enable = false;
    console.enable = false;
    security.sudo.enable = false;
    security.polkit.enable = false;
    services.udisks2.enable = false;
    services.lvm.enable = false;
    systemd.coredump.enable = false;
    services.journald.extraConfig = "Storage=volatile";
    environment.defaultPackages = [ ];
    system.switch.enable = false;
    users.mutableUsers = false;
    users.allowNoPasswordLogin = true; # nobody logs in; debug shells go through orch
    boot.enableContainers = false;
    system.stateVersion = mkDefault lib.trivial.release;

    environment.systemPackages = cfg.agentPackages ++ [ pkgs.bubblewrap ];
    # Jails get PATH=/usr/local/bin:/usr/bin:/bin; the agents' tools are in the system profile.
    systemd.tmpfiles.rules = [ "L+ /usr/local/bin - - - - /run/current-system/sw/bin" ];

    systemd.services.orch-supervisor = {
      description = "orch supervisor: agents in bubblewrap jails";
      wantedBy = [ "sysinit.target" ];
      after = [ "systemd-tmpfiles-setup.service" "systemd-modules-load.service" "systemd-udev-trigger.service" ];
      conflicts = [ "shutdown.target" ];
      before = [ "shutdown.target" ];
      unitConfig = {
        DefaultDependencies = false;
        RequiresMountsFor = [ "/workspace" ];
        StartLimitIntervalSec = 0;
      };
      serviceConfig = {
        ExecStart = start;
        Restart = "always";
        RestartSec = "200ms";
        # It makes one cgroup per agent (memory, pids, cpu) below its own.
        Delegate = "memory pids cpu";
        KillMode = "mixed";
        OOMScoreAdjust = -900;
      };
    };
  };
}
