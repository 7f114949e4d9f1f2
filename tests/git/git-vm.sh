#!/usr/bin/env bash
# Repository tasks in a real VM (meson suite 'e2e'), one boot: the task workspace is
# loop-mounted on the host below the VM's workspace share after the VM started and
# reaches the guest through the shared mount; an agent in the VM edits, commits and
# deletes; the result is recorded on the host with the agent's changes only; a writer
# past the workspace's size gets ENOSPC in the VM; two concurrent tasks on one repository
# do not see each other's work; orch push lands on the upstream. Exits 77 (skip) with a
# reason when libvirt/QEMU cannot run.
set -uo pipefail
. "$(dirname "$0")/../lib/vm.sh"
vm_need git jq
[ -w /dev/loop-control ] || skip "no loop devices"
vm_setup "libvirt's system instance, loop devices"

st=$(mktemp -d /tmp/orch-git-vm.XXXXXX)
chmod 0755 "$st"
vm=gv$$
orchd_pid=
failures=0
cleanup() {
	local rc=$?
	[ -z "$orchd_pid" ] || { kill -TERM "$orchd_pid" 2>/dev/null; wait "$orchd_pid" 2>/dev/null; }
	virsh -c qemu:///system destroy "orch-$vm" >/dev/null 2>&1
	vm_sanitizer_report "$st/orchd.log" || rc=1 # under ASan/UBSan builds
	if [ "$failures" != 0 ]; then
		echo "--- orchd log"; tail -n 40 "$st/orchd.log"
		echo "--- guest console"; tail -n 30 "$st/vm/$vm/console.log" 2>/dev/null
	fi
	vm_unmount_below "$st"
	find "$st" -maxdepth 5 -type d -name 'task-*' -exec chattr -i {} + 2>/dev/null
	rm -rf "$st"
	exit $rc
}
trap cleanup EXIT
passed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME=$st
g() { git -c user.name=t -c user.email=t@example.invalid -c init.defaultBranch=main "$@"; }

g init -q --bare "$st/up.git"
g init -q "$st/seed"
printf 'hello\n' >"$st/seed/a.txt"
printf 'keep\n' >"$st/seed/b.txt"
g -C "$st/seed" add -A && g -C "$st/seed" commit -qm init && g -C "$st/seed" push -q "$st/up.git" HEAD:main
g --git-dir="$st/up.git" symbolic-ref HEAD refs/heads/main

cat >"$st/orchd.json" <<JSON
{
  "state_dir": "$st",
  "uid_base": 10000,
  "scheduler": { "retries": 0, "heartbeat_ms": 1000, "heartbeat_misses": 5 },
  "vms": { "$vm": { "backend": "libvirt", "vcpus": 2, "memory_mib": 512, "slots": 2,
                    "transport": "${ORCH_E2E_TRANSPORT:-auto}",
                    "autostart": true, "boot_timeout_ms": 180000 } },
  "git": { "workspace_mib": 48, "min_free_mib": 0 }
}
JSON
ORCH_VM_IMAGE=$image "$orchd" -v -c "$st/orchd.json" -s "$st" -S "$st/orch.sock" \
	2>"$st/orchd.log" &
orchd_pid=$!
for _ in $(seq 1 600); do [ -S "$st/orch.sock" ] && break; sleep 0.1; done
o() { "$orch" --socket "$st/orch.sock" "$@"; }

grep -q "shared:" <(awk -v w="$st/workspaces/$vm" '$5 == w' /proc/self/mountinfo) &&
	ok "the VM's workspace is a shared mount" || fail "the VM's workspace is not a shared mount"

out=$(timeout 600 "$orch" --socket "$st/orch.sock" --json dispatch --vm "$vm" --repo "$st/up.git" --wait -- sh -c '
	set -e
	echo "in=$(uname -n) ws=$(pwd) branch=$(git rev-parse --abbrev-ref HEAD)"
	grep -q hello a.txt
	echo changed >> a.txt; rm b.txt; echo new > n.txt
	git add n.txt && git commit -qm "agent in a VM"
	echo after >> n.txt' 2>&1)
id=$(echo "$out" | jq -r .id 2>/dev/null)
if echo "$out" | jq -e '.state == "succeeded" and .git.state == "recorded" and .git.files_changed == 3' >/dev/null 2>&1; then
	ok "a repository task in the VM: its result recorded on the host"
else
	fail "repository task in the VM: $out $(o logs "$id" 2>&1 | tail -5)"
fi
o logs "$id" 2>/dev/null | grep -q "in=agent-" && ok "it ran in the VM's jail" || fail "where it ran: $(o logs "$id" 2>&1)"
o push "$id" >/dev/null 2>&1 && base=$(echo "$out" | jq -r .git.base) &&
	[ "$(g --git-dir="$st/up.git" diff --name-status "$base" "orch/task-$id" | sort | tr '\n\t' ' _')" = "A_n.txt D_b.txt M_a.txt " ] &&
	ok "orch push: exactly the agent's changes on the upstream" || fail "push: $(g --git-dir="$st/up.git" log --oneline --all 2>&1)"

out=$(timeout 300 "$orch" --socket "$st/orch.sock" --json dispatch --vm "$vm" --repo "$st/up.git" --wait -- sh -c '
	dd if=/dev/zero of=fill bs=1M count=100 2>&1; rm -f fill' 2>&1)
fid=$(echo "$out" | jq -r .id 2>/dev/null)
o logs "$fid" 2>&1 | grep -q "No space left on device" && ok "ENOSPC in the VM at the workspace's size" ||
	fail "no ENOSPC in the VM: $(o logs "$fid" 2>&1 | tail -3)"

a=$(o dispatch --vm "$vm" --repo "$st/up.git" -- sh -c 'echo A > mine.txt; sleep 3; test ! -e theirs.txt')
b=$(o dispatch --vm "$vm" --repo "$st/up.git" -- sh -c 'echo B > theirs.txt; sleep 3; test ! -e mine.txt')
for t in "$a" "$b"; do
	for _ in $(seq 1 600); do
		s=$(o --json result "$t" 2>/dev/null | jq -r '.state + "/" + (.git.state // "")')
		case "$s" in */recorded | */failed | */none) break ;; esac
		sleep 0.5
	done
done
[ "$(o --json result "$a" | jq -r '.state + " " + (.git.files_changed|tostring)')" = "succeeded 1" ] &&
	[ "$(o --json result "$b" | jq -r '.state + " " + (.git.files_changed|tostring)')" = "succeeded 1" ] &&
	ok "two concurrent tasks in one VM on one repository are apart" ||
	fail "concurrent: $(o --json result "$a" | jq -c '{state,reason,git}') $(o --json result "$b" | jq -c '{state,reason,git}')"

echo "passed $passed, failed $failures"
[ "$failures" = 0 ]
