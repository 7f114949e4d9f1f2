#!/bin/bash
# Control socket authorisation: root and members of the configured group only. A peer
# that can reach the socket but is not authorised gets a JSON-RPC error (-32005) and
# nothing happens; one that cannot open the socket gets a clear message. Exit code 3.
. "$(dirname "$0")/../lib/orchd.sh"
command -v setpriv >/dev/null || skip "setpriv is not installed"

start_orchd   # no "group": root only
ls -l "$SOCK" | grep -q '^srw-rw----' || fail "socket mode: $(ls -l "$SOCK")"
n0=$(o --json tasks | jq length)

# nobody with gid 0: may open the socket (group root), refused by SO_PEERCRED
set +e
out=$(setpriv --reuid 65534 --regid 0 --clear-groups "$ORCH" --socket "$SOCK" dispatch -- touch "$T/pwned" 2>&1); rc=$?
set -e
[ $rc = 3 ] || fail "refused peer: exit $rc ($out)"
echo "$out" | grep -q "permission denied: uid 65534 is not root" || fail "message: $out"
[ ! -e "$T/pwned" ] || fail "the refused request ran"
[ "$(o --json tasks | jq length)" = "$n0" ] || fail "the refused request created a task"
grep -q 'msg="client refused" peer="uid=65534' "$T/orchd.log" || fail "no log line"

# raw: the answer is a JSON-RPC error with code -32005
resp=$(printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"status"}' |
	setpriv --reuid 65534 --regid 0 --clear-groups socat -t 2 - "UNIX-CONNECT:$SOCK")
[ "$(echo "$resp" | jq .error.code)" = -32005 ] || fail "raw answer: $resp"

# nobody:nogroup cannot even open the socket (mode 0660)
set +e
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$ORCH" --socket "$SOCK" status 2>&1); rc=$?
set -e
[ $rc = 3 ] || fail "no access: exit $rc"
echo "$out" | grep -q "permission denied on $SOCK" || fail "message: $out"

# with "group": "nogroup", nobody (primary group nogroup) is a member and may use it
kill "$ORCHD_PID"; wait "$ORCHD_PID" || true
echo "{ \"uid_base\": $UIDB, \"group\": \"nogroup\" }" >"$T/orchd.json"
start_orchd --config "$T/orchd.json"
ls -ln "$SOCK" | awk '{print $4}' | grep -qx 65534 || fail "socket group: $(ls -ln "$SOCK")"
out=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$ORCH" --socket "$SOCK" dispatch --wait -- echo member)
[ "$out" = member ] || fail "group member: $out"
# root still works
[ "$(o dispatch --wait -- echo root)" = root ] || fail "root"

# an unknown group is a clear start-up error
echo '{ "group": "no-such-group-orch" }' >"$T/bad.json"
set +e
"$ORCHD" --state-dir "$T/state2" --socket "$T/s2" --config "$T/bad.json" 2>"$T/err"; rc=$?
set -e
[ $rc = 1 ] || fail "unknown group: exit $rc"
grep -q 'no group named \\"no-such-group-orch\\"' "$T/err" || fail "message: $(cat "$T/err")"
echo PASS
