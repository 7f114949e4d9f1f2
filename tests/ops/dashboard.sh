#!/bin/bash
# orch dashboard, headless: created in a detached private tmux server, its panes captured
# and asserted (live status, per-agent live output, the debug window and key binding),
# and a second call re-attaches instead of creating another session.
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root (bwrap jails with per-agent uids)"
need bwrap jq tmux
T=$(mktemp -d /tmp/orch-ops-dash.XXXXXX)
chmod 0711 "$T"
TMUX_SOCK=$T/tmux.sock
trap 'tmux -S "$T/outer.sock" kill-server 2>/dev/null; tmux -S "$TMUX_SOCK" kill-server 2>/dev/null; stop_orchd; rm -rf "$T"' EXIT
cat >"$T/orchd.json" <<CFG
{ "vms": { "local": { "backend": "local", "slots": 2 } } }
CFG
start_orchd --config "$T/orchd.json"

o dashboard --tmux-socket "$TMUX_SOCK" --no-attach --interval 1 2>"$T/dash.err" ||
	fail "orch dashboard: $(cat "$T/dash.err")"
grep -q "session 'orch' created" "$T/dash.err" || fail "no creation message: $(cat "$T/dash.err")"
wins=$(tmux -S "$TMUX_SOCK" list-windows -t orch -F '#{window_name}' | tr '\n' ' ')
[ "$wins" = "status vm:local debug " ] || fail "windows: '$wins'"
echo "ok: windows $wins"

pane_wait orch:status 'orchd .* pid [0-9]+' 20
pane_wait orch:status '^local +local +ready' 20
echo "ok: the status window shows orchd and the VM"

# One pane for the (local backend) console note and one per agent.
n=$(tmux -S "$TMUX_SOCK" list-panes -t orch:vm:local | wc -l)
[ "$n" = 3 ] || fail "vm:local has $n panes, expected 3"
pane_wait orch:vm:local.0 'local backend, no console' 10
for p in 1 2; do pane_wait "orch:vm:local.$p" 'waiting for a task' 10; done

# A task's live output appears in its agent's pane, then the next task's.
id=$(o dispatch --agent 1 -- sh -c 'echo "dash-$((6 * 7))"; sleep 1; echo "late-$((7 * 7))"')
pane=""
for p in 1 2; do
	tmux -S "$TMUX_SOCK" capture-pane -p -t "orch:vm:local.$p" | grep -q "agent 1 of" && pane=$p
done
[ -n "$pane" ] || fail "no pane follows agent 1"
pane_wait "orch:vm:local.$pane" "^--- task $id ---" 20
pane_wait "orch:vm:local.$pane" '^dash-42' 20
pane_wait "orch:vm:local.$pane" '^late-49' 20
pane_wait "orch:vm:local.$pane" "^--- task $id succeeded ---" 20
id2=$(o dispatch --agent 1 -- echo second-task)
pane_wait "orch:vm:local.$pane" "^--- task $id2 succeeded ---" 20
pane_wait "orch:vm:local.$pane" '^second-task' 5
echo "ok: agent 1's pane follows its tasks live"

# The debug window offers the agents; prefix+S is bound to orch shell.
pane_wait orch:debug 'shell for \(VM AGENT' 10
tmux -S "$TMUX_SOCK" list-keys | grep -q 'orch shell' || fail "no prefix+S binding"
tmux -S "$TMUX_SOCK" send-keys -t orch:debug 'local 0' Enter
pane_wait orch:debug 'agent-0:' 20
echo "ok: the debug window opened a shell in agent 0's jail (through orchd)"

# A second call finds the session: no second session, same windows.
j=$(o dashboard --json --tmux-socket "$TMUX_SOCK" --no-attach 2>"$T/dash2.err") || fail "second call"
grep -q "exists; attaching" "$T/dash2.err" || fail "second call: $(cat "$T/dash2.err")"
[ "$(echo "$j" | jq -c '[.created, .session, .windows]')" = '[false,"orch",["status","vm:local","debug"]]' ] ||
	fail "--json: $j"
[ "$(tmux -S "$TMUX_SOCK" list-sessions | wc -l)" = 1 ] || fail "a second session"
[ "$(tmux -S "$TMUX_SOCK" list-windows -t orch | wc -l)" = 3 ] || fail "windows changed"
echo "ok: a second call re-uses the session"

# Attaching for real, from a terminal (a pane of a second tmux server), shows the status.
OUTER=$T/outer.sock
tmux -S "$OUTER" -f /dev/null new-session -d -s outer -x 120 -y 40 \
	"$ORCH --socket $SOCK dashboard --tmux-socket $TMUX_SOCK; echo detached-rc-\$?; sleep 60"
TMUX_SOCK_SAVE=$TMUX_SOCK
TMUX_SOCK=$OUTER pane_wait outer 'orchd .* pid [0-9]+' 20
[ "$(tmux -S "$TMUX_SOCK_SAVE" list-clients | wc -l)" = 1 ] || fail "no client attached"
tmux -S "$TMUX_SOCK_SAVE" detach-client -s orch
TMUX_SOCK=$OUTER pane_wait outer 'detached-rc-0' 10
[ "$(tmux -S "$TMUX_SOCK_SAVE" list-windows -t orch | wc -l)" = 3 ] || fail "detaching changed the session"
tmux -S "$OUTER" kill-server
echo "ok: attach from a terminal, detach leaves everything running"
echo PASS
