#!/bin/bash
# What orchd leaves on disk is its own: the store (task argv, env, prompts), its WAL and
# shared-memory files, the spool and its files are readable by root only (orchd runs
# with umask 077); the state directory is 0711 (the local backend's jails traverse it);
# the control socket is 0660 from the moment it exists; a socket directory that others
# may write to is refused.
. "$(dirname "$0")/../lib/orchd.sh"
command -v runuser >/dev/null || skip "runuser is not installed"

mode() { stat -c %a "$1"; }
private() { # no bits for group or others
	[ $(($(stat -c '0%a' "$1") & 077)) = 0 ] || fail "$1 has mode $(mode "$1")"
}

umask 022 # what a shell or service manager usually gives orchd
start_orchd
o dispatch --wait -- sh -c 'echo secret-output' >/dev/null || fail "task failed"
[ "$(mode "$T/state")" = 711 ] || fail "state dir mode $(mode "$T/state")"
for f in orch.db orch.db-wal orch.db-shm spool; do
	[ -e "$T/state/$f" ] || fail "$T/state/$f is missing"
	private "$T/state/$f"
done
for f in "$T"/state/spool/*; do private "$f"; done
[ "$(mode "$SOCK")" = 660 ] || fail "socket mode $(mode "$SOCK")"

# Task output on a terminal has its control bytes made visible (colours kept); through
# a pipe it is the task's bytes exactly.
id=$(o dispatch -- printf '\033]0;owned\007\033[31mred\033[0m\n')
wait_for 10 "the escape task" state_is "$id" succeeded
if command -v script >/dev/null; then
	tty=$(script -qec "$ORCH --socket $SOCK logs $id" /dev/null)
	case "$tty" in
	*'^[]0;owned^G'$'\033''[31mred'$'\033''[0m'*) ;;
	*) fail "logs on a terminal: $(printf %s "$tty" | od -c | head -5)" ;;
	esac
else
	echo "note: script(1) is not installed; the terminal case is not checked"
fi
[ "$(o logs "$id" | od -An -c | tr -d ' \n')" = '033]0;owned\a033[31mred033[0m\n' ] ||
	fail "logs through a pipe: $(o logs "$id" | od -c | head -3)"
# an unprivileged user can read none of it
if runuser -u nobody -- cat "$T/state/orch.db" >/dev/null 2>&1; then fail "nobody read orch.db"; fi
if runuser -u nobody -- ls "$T/state/spool" >/dev/null 2>&1; then fail "nobody listed the spool"; fi
kill "$ORCHD_PID"
wait "$ORCHD_PID" 2>/dev/null || true
ORCHD_PID=

# A socket directory others may write to is refused, with the reason.
mkdir -m 0777 "$T/open"
chmod 0777 "$T/open"
set +e
"$ORCHD" --foreground --config "$T/base.json" --state-dir "$T/state2" --socket "$T/open/orch.sock" \
	>"$T/refused.log" 2>&1
rc=$?
set -e
[ $rc != 0 ] || fail "orchd started with its socket in a world-writable directory"
grep -q "may be written by others" "$T/refused.log" || fail "no reason given: $(cat "$T/refused.log")"
[ ! -e "$T/open/orch.sock" ] || fail "the socket was created"
echo PASS
