#!/usr/bin/env bash
# Evaluates nix/guest.nix with nixpkgs' lib (tests/nix/eval-guest.nix) and checks what
# the guest configuration promises: no network, read-only store from the initrd,
# workspace over virtio-fs, vsock and virtio-fs modules, the supervisor started early
# and restarted, its jails' read-only paths; and runs the supervisor's start script
# against fake kernel command lines and virtio-serial ports.
. "$(dirname "$0")/lib.sh"
need_nix
need_lib
command -v jq >/dev/null || skip "jq is not installed (scripts/install-deps)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

eval_guest() {
	nix-instantiate --readonly-mode --eval --strict --json "$src/tests/nix/eval-guest.nix" \
		--arg nixpkgsLib "$nixpkgs_lib" "$@" 2> >(grep -v "build-users-group" >&2)
}
eval_guest >"$tmp/guest.json" || fail "cannot evaluate nix/guest.nix"

check() { # check DESCRIPTION JQ-EXPRESSION
	jq -e "$2" "$tmp/guest.json" >/dev/null || fail "$1: $(jq -c "${3:-.}" "$tmp/guest.json")"
	echo "ok: $1"
}
check "no DHCP, no SSH, no nix daemon, no interfaces" \
	'.networking.useDHCP == false and .networking.dhcpcd.enable == false and .openssh == false
	 and .nixEnabled == false and (.networking | has("interfaces") | not)' '[.networking, .openssh]'
check "/ is a tmpfs, the store a read-only squashfs from the initrd" \
	'.fileSystems["/"].fsType == "tmpfs" and .fileSystems["/nix/store"].fsType == "squashfs"
	 and (.fileSystems["/nix/store"].options | index("ro")) and .fileSystems["/nix/store"].neededForBoot
	 and .image.initrdContents == ["/nix-store.squashfs"]' .fileSystems
check "the workspace is virtio-fs tag 'workspace' on /workspace, nosuid,nodev, not noexec" \
	'.fileSystems["/workspace"] | .fsType == "virtiofs" and .device == "workspace"
	 and (.options | index("nosuid")) and (.options | index("nodev")) and (.options | index("noexec") | not)' .fileSystems
check "vsock, virtio-serial and virtio-fs modules" \
	'.kernelModules as $m | ["vsock", "vmw_vsock_virtio_transport", "virtio_console", "virtiofs"] | all(. as $x | $m | index($x))' .kernelModules
check "the supervisor starts early and is restarted" \
	'.supervisor | (.wantedBy == ["sysinit.target"]) and .unitConfig.DefaultDependencies == false
	 and .serviceConfig.Restart == "always" and (.unitConfig.RequiresMountsFor | index("/workspace"))' .supervisor
check "jails see the store and the tools read-only; bwrap by absolute path" \
	'.supervisor.config | (.ro_paths | index("/nix/store")) and (.ro_paths | index("/run/current-system"))
	 and (.bwrap | startswith("/nix/store/")) and .workspace_root == "/workspace" and .uid_base == 100000' .supervisor.config
check "bubblewrap and the agents' tools are installed; /usr/local/bin is their PATH entry" \
	'(.systemPackages | index("bubblewrap")) and (.systemPackages | index("git"))
	 and (.tmpfiles | index("L+ /usr/local/bin - - - - /run/current-system/sw/bin"))' '[.systemPackages, .tmpfiles]'
check "the image boots the system's init on the serial console" \
	'.image.cmdline | startswith("init=/nix/store/") and contains("console=ttyS0") and contains("panic=-1")' .image.cmdline

eval_guest --arg extraModule '{ services.orch-supervisor.agents.claude = { type = "derivation"; name = "claude-code"; outPath = "/nix/store/x-claude-code"; }; }' |
	jq -e '.image.store.storeContents | map(sub("^/nix/store/[0-9a-z]{32}-"; "")) == ["nixos-system-orch-guest", "orch-agents"]' >/dev/null ||
	fail "the agents directory is not in the guest's store"
echo "ok: services.orch-supervisor.agents puts the agents directory in the guest's store"
eval_guest --arg extraModule '{ services.orch-supervisor.uidBase = 200000; }' | jq -e '.supervisor.config.uid_base == 200000' >/dev/null ||
	fail "services.orch-supervisor.uidBase does not reach the supervisor's configuration"
echo "ok: uidBase reaches the supervisor"

# The start script, with /proc/cmdline, sysfs and the final exec replaced.
jq -r .supervisor.start "$tmp/guest.json" |
	sed -e 's|/proc/cmdline|$FAKE_CMDLINE|' -e 's|/sys/class/virtio-ports|$FAKE_SYS|' \
		-e 's|^exec [^ ]*|echo|' >"$tmp/start.sh"
bash -n "$tmp/start.sh" || fail "the start script has a syntax error"
mkdir -p "$tmp/sys/vport1p1" "$tmp/sys/vport1p2" "$tmp/nosys"
echo other >"$tmp/sys/vport1p1/name"
echo org.orch.control >"$tmp/sys/vport1p2/name"
run_start() { # run_start CMDLINE SYSDIR
	echo "$1" >"$tmp/cmdline"
	FAKE_CMDLINE=$tmp/cmdline FAKE_SYS=$2 bash "$tmp/start.sh"
}
expect_start() { # expect_start CMDLINE SYSDIR EXPECTED-ARGS
	got=$(run_start "$1" "$2")
	case "$got" in
	*"$3"*) echo "ok: '$1' -> $got" ;;
	*) fail "start script with '$1': expected '$3' in '$got'" ;;
	esac
}
expect_start "quiet orch.name=dev orch.connect=serial:/dev/virtio-ports/org.orch.control orch.slots=4 orch.workspace=workspace" \
	"$tmp/sys" "--connect serial:/dev/vport1p2 --slots 4"
expect_start "quiet" "$tmp/sys" "--connect serial:/dev/vport1p2"
expect_start "quiet" "$tmp/nosys" "--connect vsock:2:700"
expect_start "orch.connect=vsock:2:700 orch.uidbase=200000" "$tmp/sys" "--connect vsock:2:700 --uid-base 200000"
if run_start "orch.slots=2" "$tmp/sys" | grep -q -- "--uid-base"; then
	fail "the start script passes --uid-base without orch.uidbase"
fi
# what orchd's lv_kernel_cmdline writes for the LLM channel and the debug shells
expect_start "orch.connect=vsock:2:5004 orch.llm=vsock:2:5005 orch.shell=vsock" "$tmp/nosys" \
	"--llm-connect vsock:2:5005 --shell-listen vsock"
expect_start "orch.shell=serial orch.loglevel=debug" "$tmp/sys" \
	"--log-level debug --shell-listen serial:/dev/virtio-ports/org.orch.shell.%u"
