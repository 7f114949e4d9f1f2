#!/bin/bash
# Every VM has uids of its own (agent 0 of two VMs is not one uid). The limits of
# orchd's config reach the jail through orchd, with their precedence
# (host/core/scheduler.c): a task's own (dispatch --timeout) over its profile's over its VM's
# over the top level. Observed from inside a real jail: RLIMIT_NOFILE (ulimit -n),
# RLIMIT_FSIZE (a write past it fails), the wall-clock timeout, and where the host has a
# memory controller (cgroup v2 or v1) the memory limit (a task that allocates past it
# is killed).
. "$(dirname "$0")/../lib/orchd.sh"

cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB,
  "limits": { "nofile": 111, "fsize_mib": 1, "memory_mib": 64, "timeout_ms": 20000 },
  "vms": { "plain": { "slots": 1 },
           "tight": { "slots": 1, "limits": { "nofile": 222, "fsize_mib": 2, "timeout_ms": 600 } } },
  "profiles": { "p": { "command": ["/bin/sh", "-c"], "limits": { "nofile": 333 } } } }
JSON
start_orchd --config "$T/orchd.json"

run() { # run VM ARGS...: the task's stdout (it must succeed)
	local vm=$1
	shift
	o dispatch --wait --vm "$vm" "$@" || fail "task on $vm ($*) failed"
}

# every VM has its own uids: agent 0 of "plain" (first in the config) is uid_base, of
# "tight" uid_base + 256
[ "$(run plain -- id -u)" = "$UIDB" ] || fail "plain: agent 0 is uid $(run plain -- id -u)"
[ "$(run tight -- id -u)" = "$((UIDB + 256))" ] || fail "tight: agent 0 is uid $(run tight -- id -u)"

# nofile: top level 111, the VM's 222, the profile's 333 over the VM's
[ "$(run plain -- sh -c 'ulimit -n')" = 111 ] || fail "plain: nofile $(run plain -- sh -c 'ulimit -n')"
[ "$(run tight -- sh -c 'ulimit -n')" = 222 ] || fail "tight: nofile"
[ "$(run tight --profile p -- 'ulimit -n')" = 333 ] || fail "tight + profile p: nofile"

# fsize: 1 MiB at the top, 2 MiB on tight; a write past it fails inside the jail
out=$(run plain -- sh -c 'head -c 1048576 /dev/zero >/tmp/a && echo one-ok; head -c 1048577 /dev/zero >/tmp/b 2>/dev/null || echo two-refused')
[ "$out" = "$(printf 'one-ok\ntwo-refused')" ] || fail "plain: fsize: $out"
out=$(run tight -- sh -c 'head -c 2097152 /dev/zero >/tmp/a && echo two-ok')
[ "$out" = two-ok ] || fail "tight: fsize 2 MiB: $out"

# timeout: tight's 600 ms ends a sleeper; a task's own --timeout wins over it
id=$(o dispatch --vm tight -- sleep 5)
wait_for 10 "task $id timed out" state_is "$id" timed_out
id=$(o dispatch --vm tight --timeout 3s -- sh -c 'sleep 1; echo survived')
wait_for 10 "task $id" state_is "$id" succeeded
[ "$(o logs "$id")" = survived ] || fail "dispatch --timeout did not win over the VM's"

# memory: enforced only where the host has a memory controller; then a task that
# allocates 200 MiB against 64 MiB does not succeed
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null ||
	grep -q '^memory[[:space:]].*[[:space:]]1$' /proc/cgroups; then
	id=$(o dispatch --vm plain -- sh -c 'head -c 209715200 /dev/zero | tail -c 1 >/dev/null; x=$(head -c 209715200 /dev/zero | tr "\\0" a); echo "${#x}"')
	wait_for 60 "task $id ended" sh -c "'$ORCH' --socket '$SOCK' --json result $id | jq -e '.state != \"running\" and .state != \"queued\" and .state != \"leased\"' >/dev/null"
	st=$(task_field "$id" state)
	[ "$st" != succeeded ] || fail "a 200 MiB allocation succeeded under memory_mib 64"
	echo "memory: the 200 MiB task ended $st ($(task_field "$id" reason))"
else
	echo "note: no memory controller on this host; memory_mib is not enforced here (the supervisor says so in hello)"
fi
echo PASS
