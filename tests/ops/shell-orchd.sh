#!/bin/bash
# orch shell against the real orchd and orch-supervisor (local backend): the shell of
# agent 0 sees what agent 0's tasks wrote, runs as its uid, and survives a finished task.
# Skips while orchd's local backend does not ask the supervisor for debug shells. ORCH_OPS_ORCHD_ARGS adds orchd
# arguments (e.g. --config with another "supervisor").
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (bwrap jails with per-agent uids)"
need bwrap jq tmux socat
T=$(mktemp -d /tmp/orch-ops-shorchd.XXXXXX)
chmod 0711 "$T"
TMUX_SOCK=$T/tmux.sock
trap 'tmux -S "$TMUX_SOCK" kill-server 2>/dev/null; stop_orchd; rm -rf "$T"' EXIT
start_orchd ${ORCH_OPS_ORCHD_ARGS:-}
S=$T/state/shell/local/agent-0.sock
for i in $(seq 20); do [ -S "$S" ] && break; sleep 0.1; done
[ -S "$S" ] || fail "orchd offers no debug shell at $S"

o dispatch --agent 0 --wait -- sh -c 'echo "from-task" >/workspace/task-file' || fail "task"
tmux -S "$TMUX_SOCK" -f /dev/null new-session -d -s t -x 100 -y 30 "$ORCH --socket $SOCK shell local 0; echo shell-ended; sleep 60"
pane_wait t 'agent-0:.*\$ ?$' 30
tmux -S "$TMUX_SOCK" send-keys -t t 'cat /workspace/task-file; echo "uid-$(id -u)"' Enter
pane_wait t '^from-task'
pane_wait t '^uid-[0-9]+$'
uid=$(tmux -S "$TMUX_SOCK" capture-pane -p -t t | sed -n 's/^uid-\([0-9]*\)$/\1/p' | tail -1)
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "shell uid '$uid'"
echo "ok: orch shell local 0 sees agent 0's workspace as uid $uid"
o dispatch --agent 0 --wait -- true || fail "second task"
tmux -S "$TMUX_SOCK" send-keys -t t 'echo "still-$((4*4))"' Enter
pane_wait t '^still-16'
echo "ok: the shell survives a task that finished normally"
echo PASS
