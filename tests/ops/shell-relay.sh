#!/bin/bash
# Debug shells go through orchd (host/control/shell-relay.c), with the control socket's rule:
# root and members of orchd's group get a shell, anyone else is refused, and nobody but
# root reaches the supervisor's own socket. Every open, close and refusal is in orchd's
# log. A shell flooding output to a client that does not read neither grows orchd nor
# stalls it; the per-agent cap holds. Real orchd, orch-supervisor, bwrap, socat (local
# backend).
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (bwrap jails with per-agent uids, setpriv)"
need bwrap jq socat setpriv getent
getent group nogroup >/dev/null || skip "no group 'nogroup' on this host"
T=$(mktemp -d /tmp/orch-ops-relay.XXXXXX)
chmod 0711 "$T"
PIDS=()
# Background clients run in sessions of their own: killing one kills what socat started.
stop_clients() { for p in "${PIDS[@]}"; do kill -- -"$p" 2>/dev/null; done; PIDS=(); }
# Under ASan/UBSan builds a report from orchd fails the test (checked once it stopped).
finish() {
	local rc=$?
	stop_clients
	stop_orchd
	if grep -qE "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$T/orchd.log" 2>/dev/null; then
		grep -E -A20 "ERROR: AddressSanitizer|runtime error:|LeakSanitizer" "$T/orchd.log" | head -60
		echo "FAIL: sanitizer report in orchd's log"
		rc=1
	fi
	rm -rf "$T"
	exit $rc
}
trap finish EXIT

# shell_out [setpriv args...]: a non-terminal session on agent 0 printing "hi-42" and the uid.
shell_out() {
	(sleep 1.5; echo 'echo "hi-$((6*7))"; echo "uid-$(id -u)"'; sleep 1.5; echo exit) |
		timeout 20 setpriv "$@" socat -t 5 - "UNIX-CONNECT:$R/agent-0.sock" 2>&1
}
mode_of() { stat -c '%a %U:%G' "$1"; }

start_orchd
R=$T/state/shell/local
[ "$(mode_of "$T/state/shell")" = "700 root:root" ] || fail "shell dir: $(mode_of "$T/state/shell")"
[ "$(mode_of "$R")" = "700 root:root" ] || fail "VM's shell dir: $(mode_of "$R")"
[ "$(mode_of "$R/agent-0.sock")" = "660 root:root" ] || fail "socket: $(mode_of "$R/agent-0.sock")"
[ "$(mode_of "$T/state/vm/local/chan")" = "700 root:root" ] ||
	fail "the supervisor's socket directory: $(mode_of "$T/state/vm/local/chan")"
[ "$(o --json status | jq -r '.vms[0].shell[1]')" = "unix:$R/agent-1.sock" ] ||
	fail "status has no shell addresses: $(o --json status | jq -c '.vms[0].shell')"
echo "ok: no group: root-only directories (0700) and sockets; status names them"

out=$(shell_out --reuid 0 --regid 0 --keep-groups)
echo "$out" | grep -q 'hi-42' || fail "root's shell: $out"
uid=$(echo "$out" | grep -o 'uid-[0-9][0-9]*' | head -1 | cut -d- -f2)
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "shell uid '$uid': $out"
for i in $(seq 50); do grep -q 'msg="debug shell closed" vm=local agent=0 peer="uid=0 ' "$T/orchd.log" && break; sleep 0.1; done
grep -q 'msg="debug shell opened" vm=local agent=0 peer="uid=0 gid=0 pid=[0-9]*" backend=unix:.*/chan/shell-0.sock' "$T/orchd.log" ||
	fail "no audit line for the open: $(grep shell "$T/orchd.log")"
grep -q 'msg="debug shell closed" vm=local agent=0 peer="uid=0 .* why="the shell ended; [0-9]* bytes in, [0-9]* out' "$T/orchd.log" ||
	fail "no audit line for the close: $(grep shell "$T/orchd.log")"
echo "ok: root gets agent 0's shell through orchd (uid $uid); opened and closed are logged"

out=$(shell_out --reuid 65534 --regid 0 --clear-groups)
echo "$out" | grep -q 'Permission denied' || fail "uid 65534 gid 0 reached the relay: $out"
out=$(timeout 10 setpriv --reuid 65534 --regid 0 --clear-groups \
	socat - "UNIX-CONNECT:$T/state/vm/local/chan/shell-0.sock" </dev/null 2>&1)
echo "$out" | grep -q 'Permission denied' || fail "uid 65534 reached the supervisor's socket: $out"
echo "ok: no group: anyone else cannot reach the relay nor the supervisor's socket"

# With "group": members get shells; a user who reaches the socket without being a member
# (a supplementary group that /etc/group does not give them) is refused by SO_PEERCRED.
stop_orchd
echo '{ "group": "nogroup" }' >"$T/orchd.json"
start_orchd --config "$T/orchd.json"
[ "$(mode_of "$R")" = "750 root:nogroup" ] || fail "VM's shell dir with a group: $(mode_of "$R")"
[ "$(mode_of "$R/agent-0.sock")" = "660 root:nogroup" ] || fail "socket: $(mode_of "$R/agent-0.sock")"
out=$(shell_out --reuid 65534 --regid 65534 --clear-groups)
echo "$out" | grep -q 'hi-42' || fail "group member's shell: $out"
p=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$ORCH" --socket "$SOCK" shell --print local 0 </dev/null)
[ "$p" = "socat - UNIX-CONNECT:$R/agent-0.sock" ] || fail "orch shell --print: $p"
echo "ok: a member of the group gets a shell; orch shell points at orchd's socket"

daemon_uid=$(id -u daemon 2>/dev/null) || skip "no user 'daemon'"
daemon_gid=$(id -g daemon)
id -nG daemon | grep -qw nogroup && skip "daemon is a member of nogroup here"
out=$(shell_out --reuid "$daemon_uid" --regid "$daemon_gid" --groups 65534)
echo "$out" | grep -q "orch: permission denied: uid $daemon_uid is not root or a member of group nogroup" ||
	fail "a non-member with the socket's group was not refused: $out"
echo "$out" | grep -q 'hi-42' && fail "the refused peer got a shell"
grep -q "msg=\"debug shell refused\" vm=local agent=0 peer=\"uid=$daemon_uid gid=$daemon_gid pid=[0-9]*\" why=\"permission denied" "$T/orchd.log" ||
	fail "no audit line for the refusal: $(grep shell "$T/orchd.log")"
out=$(timeout 10 setpriv --reuid "$daemon_uid" --regid "$daemon_gid" --groups 65534 \
	socat - "UNIX-CONNECT:$T/state/vm/local/chan/shell-0.sock" </dev/null 2>&1)
echo "$out" | grep -q 'Permission denied' || fail "a group member reached the supervisor's socket: $out"
echo "ok: a non-member who can open the socket is refused by SO_PEERCRED (and logged); the supervisor's socket stays root's"

# A flooding shell whose client never reads: orchd's memory stays put, it keeps answering.
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$ORCHD_PID/status"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$ORCHD_PID/stat"; } # utime + stime, in ticks
setsid socat -u SYSTEM:'sleep 1.5; echo yes; sleep 60' "UNIX-CONNECT:$R/agent-1.sock" </dev/null >/dev/null 2>&1 &
PIDS+=($!)
sleep 4
r0=$(rss)
c0=$(cpu)
sleep 4
r1=$(rss)
c1=$(cpu)
hz=$(getconf CLK_TCK)
[ $((c1 - c0)) -lt "$hz" ] || fail "orchd used $((c1 - c0)) ticks of CPU in 4 s while a shell floods (a busy loop?)"
t0=$(date +%s%N)
o status >/dev/null || fail "orch status while a shell floods"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 3000 ] || fail "orch status took $ms ms while a shell floods"
[ $((r1 - r0)) -lt 2048 ] || fail "orchd grew from $r0 to $r1 KiB while a shell floods"
grep -q 'msg="debug shell opened" vm=local agent=1' "$T/orchd.log" || fail "the flood's shell did not open"
echo "ok: a flooding shell with a client that does not read: orchd ${r0}->${r1} KiB, $((c1 - c0)) ticks of CPU in 4 s, status in $ms ms"

# The cap per agent: the flood's session and three more are the most agent 1 gets.
for i in 1 2 3; do
	setsid socat -u EXEC:"sleep 60" "UNIX-CONNECT:$R/agent-1.sock" </dev/null >/dev/null 2>&1 &
	PIDS+=($!)
done
sleep 1
out=$(timeout 10 socat -t 2 - "UNIX-CONNECT:$R/agent-1.sock" </dev/null 2>&1)
echo "$out" | grep -q 'orch: too many debug shells for this agent' || fail "fifth session: $out"
echo "ok: at most 4 sessions per agent"
stop_clients
for _ in $(seq 100); do
	[ "$(grep -c 'msg="debug shell closed" vm=local agent=1' "$T/orchd.log")" -ge 4 ] && break
	sleep 0.1
done
[ "$(grep -c 'msg="debug shell closed" vm=local agent=1' "$T/orchd.log")" -ge 4 ] ||
	fail "the sessions did not close: $(grep agent=1 "$T/orchd.log")"
echo "ok: closing the clients ends their sessions"
echo PASS
