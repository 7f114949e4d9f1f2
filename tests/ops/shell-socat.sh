#!/bin/bash
# Debug shells through real socat in a real terminal (tmux): type commands, see output,
# the jailed uid, window size, line editing, ^C, isolation from other agents, and that
# closing the connection kills everything the shell started.
set -u
. "$(dirname "$0")/lib.sh"
TESTD=$1
[ "$(id -u)" = 0 ] || skip "needs root (agent uids, namespaces)"
need bwrap socat tmux pgrep
UID_BASE=47100

T=$(mktemp -d /tmp/orch-ops-shell.XXXXXX)
TMUX_SOCK=$T/tmux.sock
cleanup() {
	tmux -S "$TMUX_SOCK" kill-server 2>/dev/null
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	pkill -KILL -u $UID_BASE 2>/dev/null; pkill -KILL -u $((UID_BASE + 1)) 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/ws" "$T/sock"
chmod 755 "$T"

mkfifo "$T/ready"
"$TESTD" "$T/ws" "$T/sock" 2 $UID_BASE >"$T/ready" 2>"$T/testd.err" &
PID=$!
read -r -t 30 line <"$T/ready" || { cat "$T/testd.err"; fail "shell server did not start"; }
[ "$line" = ready ] || fail "shell server said '$line'"
echo "agent-one-secret" >"$T/ws/agent-1/secret"
chown $((UID_BASE + 1)) "$T/ws/agent-1/secret"

tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s t -x 100 -y 30 \
	"socat -,raw,echo=0 UNIX-CONNECT:$T/sock/shell-0.sock; echo socat-ended; sleep 60"
pane_wait t 'agent-0:.*\$ ?$' 30
echo "ok: prompt"

k() { tmux -S "$TMUX_SOCK" send-keys -t t "$@"; }
# The session's byte relay: a child of the server, as uid base+128+slot, without
# privileges (guest/privsep.h); the server itself never reads the session's bytes.
RELAY=$(pgrep -x -P "$PID" orch-shell-0)
[ -n "$RELAY" ] || fail "no relay process for the session"
R=$((UID_BASE + 128))
st=$(cat /proc/"$RELAY"/status)
echo "$st" | grep -qP "^Uid:\t$R\t$R\t$R\t$R$" || fail "relay uid: $(echo "$st" | grep ^Uid)"
echo "$st" | grep -qP "^Gid:\t$R\t$R\t$R\t$R$" || fail "relay gid: $(echo "$st" | grep ^Gid)"
for f in CapInh CapPrm CapEff CapBnd CapAmb; do
	echo "$st" | grep -qP "^$f:\t0{16}$" || fail "relay $f: $(echo "$st" | grep "^$f")"
done
echo "$st" | grep -qP '^NoNewPrivs:\t1$' || fail "relay without no_new_privs"
echo "$st" | grep -qP '^Seccomp:\t2$' || fail "relay without a seccomp filter"
echo "$st" | grep -qP '^Groups:\t ?$' || fail "relay groups: $(echo "$st" | grep ^Groups)"
case "$(readlink /proc/"$RELAY"/root)" in *orch-privsep.*"(deleted)") ;; *) fail "relay root: $(readlink /proc/"$RELAY"/root)" ;; esac
echo "ok: the session's relay runs as uid $R, no capabilities, no_new_privs, seccomp, empty root"

k 'id' Enter
pane_wait t "uid=$UID_BASE\\b"
echo "ok: id shows the agent's uid $UID_BASE"

k 'echo "size-$(stty size | tr " " x)"' Enter
pane_wait t 'size-30x100'
echo "ok: window size 30x100 from the client's terminal"

k 'echo abX' BSpace 'c-$((6*7))' Enter
pane_wait t '^abc-42'
echo "ok: line editing"

k 'sleep 300' Enter
sleep 0.5
k C-c
k 'echo "after-$((40+2))"' Enter
pane_wait t '^after-42'
echo "ok: ^C interrupts the foreground job"

k "cat $T/ws/agent-1/secret; echo cat-rc-\$?" Enter
pane_wait t 'cat-rc-1'
tmux -S "$TMUX_SOCK" capture-pane -p -t t | grep -q agent-one-secret && fail "agent 0 read agent 1's file"
k 'echo "procs-$(ls /proc | grep -c "^[0-9]")"; echo "ws-$(ls -A /workspace | wc -l)"' Enter
pane_wait t '^ws-0'
n=$(tmux -S "$TMUX_SOCK" capture-pane -p -t t | sed -n 's/^procs-\([0-9]*\)$/\1/p' | tail -1)
[ -n "$n" ] && [ "$n" -lt 10 ] || fail "the shell sees $n processes (expected only its own jail)"
echo "ok: cannot see agent 1's workspace nor other processes ($n pids visible)"

# The agent's jail: seccomp (unshare denied), its own network namespace with only lo,
# the agent's rlimits.
k 'unshare -r true 2>/dev/null; echo "unshare-rc-$?"' Enter
pane_wait t '^unshare-rc-[1-9]'
k 'echo "ifs-$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" ,)"' Enter
pane_wait t '^ifs-lo,$'
k 'echo "nofile-$(ulimit -n)"' Enter
pane_wait t '^nofile-1024$'
echo "ok: seccomp denies unshare, only lo in its network namespace, the agent's rlimits"

k 'touch /workspace/made-by-shell; (sleep 1000 &) ; sleep 1000 &' Enter
sleep 0.5
[ "$(stat -c %u "$T/ws/agent-0/made-by-shell" 2>/dev/null)" = $UID_BASE ] ||
	fail "a file made in the shell is not owned by uid $UID_BASE on the host"
pgrep -u $UID_BASE -x sleep >/dev/null || fail "background sleep not running"
# Close the connection: kill socat only.
pkill -TERM -f "^socat -,raw,echo=0 UNIX-CONNECT:$T/sock/shell-0.sock"
pane_wait t 'socat-ended'
for i in $(seq 100); do
	pgrep -u $UID_BASE >/dev/null || break
	sleep 0.1
done
pgrep -u $UID_BASE -a && fail "processes of the agent survived the closed connection"
kill -0 "$RELAY" 2>/dev/null && fail "the relay outlived its session"
echo "ok: closing the connection killed the shell and its background jobs"

# A second connection to agent 1 works, and sees its own workspace.
tmux -S "$TMUX_SOCK" new-window -t t -n a1 \
	"socat -,raw,echo=0 UNIX-CONNECT:$T/sock/shell-1.sock"
pane_wait t:a1 'agent-1:.*\$ ?$' 30
tmux -S "$TMUX_SOCK" send-keys -t t:a1 'cat /workspace/secret; id -u' Enter
pane_wait t:a1 "^$((UID_BASE + 1))\$"
pane_wait t:a1 '^agent-one-secret'
echo "ok: agent 1's shell"

# orch shell runs the same socat: --print shows it, and it works in a terminal.
ORCH=${ORCH_BUILDDIR:?}/host/orch
if [ -x "$ORCH" ]; then
	p=$("$ORCH" shell --print --address "unix:$T/sock/shell-1.sock" test 1 </dev/null)
	[ "$p" = "socat - UNIX-CONNECT:$T/sock/shell-1.sock" ] || fail "orch shell --print: $p"
	tmux -S "$TMUX_SOCK" new-window -t t -n cli "$ORCH shell --address unix:$T/sock/shell-1.sock test 1"
	pane_wait t:cli 'Ctrl-\] quits' 10
	pane_wait t:cli 'agent-1:.*\$ ?$' 30
	tmux -S "$TMUX_SOCK" send-keys -t t:cli 'echo "cli-$((5*5))"' Enter
	pane_wait t:cli '^cli-25'
	echo "ok: orch shell --address opens the shell through socat"
fi

# A relay that dies takes its session with it: the jail is killed.
tmux -S "$TMUX_SOCK" new-window -t t -n kr \
	"socat -,raw,echo=0 UNIX-CONNECT:$T/sock/shell-0.sock; echo relay-cut; sleep 60"
pane_wait t:kr 'agent-0:.*\$ ?$' 30
tmux -S "$TMUX_SOCK" send-keys -t t:kr 'sleep 1000 &' Enter
sleep 0.5
# This session's jail, told apart from any other test's by its pid namespace.
JAIL=$(pgrep -P "$PID" -f -- "--hostname agent-0 " | head -1)
INIT=$(pgrep -P "$JAIL" | head -1)
NS=$(readlink /proc/"$INIT"/ns/pid)
[ -n "$NS" ] || fail "no jail for the session"
# Live ones: the jail's init may stay a zombie until the machine's init reaps it.
in_ns() {
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p"/ns/pid 2>/dev/null)" = "$NS" ] || continue
		[ "$(sed 's/.*) //' "$p"/stat 2>/dev/null | cut -c1)" = Z ] || return 0
	done
	return 1
}
in_ns || fail "the session's jail has no processes"
kill -KILL "$(pgrep -x -P "$PID" orch-shell-0)"
pane_wait t:kr 'relay-cut'
for i in $(seq 100); do
	in_ns || break
	sleep 0.1
done
if in_ns; then
	for p in /proc/[0-9]*; do [ "$(readlink "$p"/ns/pid 2>/dev/null)" = "$NS" ] && ps -o pid,ppid,user,stat,args -p "${p#/proc/}" | tail -1; done
	cat "$T/testd.err"
	fail "processes of the session's jail survived its relay"
fi
grep -q 'shell slot=0 event=closed detail="relay killed by signal 9"' "$T/testd.err" ||
	fail "no closed event for the killed relay: $(cat "$T/testd.err")"
echo "ok: killing the relay ends the session and kills the jail"

# A client that is not a terminal gets 24x80; its EOF ends the shell's input.
out=$(printf 'stty size\n' | timeout 20 socat -t 15 - UNIX-CONNECT:$T/sock/shell-0.sock 2>&1)
echo "$out" | grep -q "24 80" || fail "non-terminal client: '$out'"
echo "ok: non-terminal client gets 24x80 and exit ends the session"
grep -q 'shell slot=0 event=opened detail="pid [0-9]*"' "$T/testd.err" || fail "no opened event: $(cat "$T/testd.err")"
grep -q 'shell slot=0 event=closed detail="client disconnected"' "$T/testd.err" || fail "no closed event: $(cat "$T/testd.err")"
echo "ok: open and close events for the audit log"
echo PASS
