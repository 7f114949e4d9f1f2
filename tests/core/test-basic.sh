#!/bin/bash
# dispatch / --wait / --follow / result / logs / cancel / tasks / status, exit codes, and
# the message when orchd is not running.
. "$(dirname "$0")/../lib/orchd.sh"

# orchd not running: a clear message and exit code 3
set +e
out=$(o status 2>&1); rc=$?
set -e
[ $rc = 3 ] || fail "status without orchd: exit $rc"
echo "$out" | grep -q "orchd is not running at $SOCK; start it with \`orchd --foreground\`" ||
	fail "unexpected message: $out"

start_orchd

# --wait prints the output and exits with the task's code
out=$(o dispatch --wait -- echo hello)
[ "$out" = hello ] || fail "dispatch --wait printed '$out'"
set +e
o dispatch --wait -- sh -c 'echo out; echo err >&2; exit 7' >"$T/o" 2>"$T/e"; rc=$?
set -e
[ $rc = 7 ] || fail "exit code $rc, expected 7"
[ "$(cat "$T/o")" = out ] || fail "stdout: $(cat "$T/o")"
grep -qx err "$T/e" || fail "stderr: $(cat "$T/e")"

# plain dispatch prints the id; result and logs find it
id=$(o dispatch -- sh -c 'echo a; echo b >&2; echo c')
[[ $id =~ ^[0-9]+$ ]] || fail "dispatch printed '$id'"
o --json dispatch --wait -- true >/dev/null
wait_for 10 "task $id succeeded" state_is $id succeeded
[ "$(o logs "$id" 2>/dev/null)" = "$(printf 'a\nc')" ] || fail "logs stdout"
x=$(o logs "$id" 2>&1 >/dev/null)
echo "$x" | grep -qx b || fail "logs stderr: $x"
o --json logs "$id" | jq -r .stream | grep -qx stderr || fail "logs --json streams"
# resume from a seq: nothing lost, nothing repeated
n=$(o --json logs "$id" | jq -s length)
want=$(seq 1 $((n - 1)) | tr '\n' ' ')
[ "$(o --json logs --from-seq 1 "$id" | jq -r .seq | tr '\n' ' ')" = "$want" ] || fail "from-seq"
o result "$id" | grep -q "^state *succeeded" || fail "result"

# --follow streams live output of a running task, then exits with its code
set +e
out=$(o dispatch --follow -- sh -c 'for i in 1 2 3; do echo line$i; sleep 0.1; done; exit 4'); rc=$?
set -e
[ $rc = 4 ] || fail "--follow exit $rc"
[ "$(echo $out)" = "line1 line2 line3" ] || fail "--follow output '$out'"

# logs -f attaches to a running task and ends with it
id=$(o dispatch -- sh -c 'echo first; sleep 0.5; echo second')
out=$(o logs -f "$id")
[ "$(echo $out)" = "first second" ] || fail "logs -f: '$out'"

# --env, --timeout
[ "$(o dispatch --wait --env FOO=bar -- sh -c 'echo $FOO')" = bar ] || fail "--env"
set +e
o dispatch --wait --timeout 300ms -- sleep 5; rc=$?
set -e
[ $rc = 124 ] || fail "--timeout: exit $rc"
# the slot of a timed-out task takes the next task normally
out=$(o dispatch --wait -- echo after-timeout 2>"$T/err") || true
[ "$out" = after-timeout ] || fail "the task after a timed-out one: $out $(cat "$T/err")"

# cancel: a running task ends cancelled
id=$(o dispatch -- sleep 30)
wait_for 10 "task $id running" state_is $id running
o cancel "$id" >/dev/null
wait_for 10 "task $id cancelled" state_is $id cancelled
# cancel a queued task: fill the 4 slots first
for i in 1 2 3 4; do o dispatch -- sleep 30 >/dev/null; done
q=$(o dispatch -- echo never)
[ "$(task_field "$q" state)" = queued ] || fail "expected queued, got $(task_field "$q" state)"
o cancel "$q" >/dev/null
[ "$(task_field "$q" state)" = cancelled ] || fail "queued cancel"
set +e
o cancel "$q" 2>/dev/null; rc=$?
o result 99999 2>/dev/null; rc2=$?
o dispatch 2>/dev/null; rc3=$?
set -e
[ $rc = 1 ] || fail "cancel of a finished task: exit $rc"
[ $rc2 = 4 ] || fail "result of a missing task: exit $rc2"
[ $rc3 = 2 ] || fail "dispatch without a command: exit $rc3"
for t in $(o --json tasks --state running | jq -r '.[].id'); do o cancel "$t" >/dev/null; done

# listings
o tasks | head -1 | grep -q "^ID *STATE" || fail "tasks header"
[ "$(o --json tasks --state cancelled | jq length)" -ge 2 ] || fail "tasks --state"
o status | grep -q "^local *local *ready" || fail "status"
[ "$(o --json status | jq -r '.vms[0].slots | length')" = 4 ] || fail "status slots"
for c in dispatch status tasks result logs cancel; do
	o $c --help | grep -q "Usage: orch $c" || fail "$c --help"
done
echo PASS
