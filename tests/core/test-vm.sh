#!/bin/bash
# orch vm list/down/up/restart on the local backend: a stopped VM takes no tasks, a
# stop loses the running task (re-queued and run after `vm restart`), pruning works.
. "$(dirname "$0")/../lib/orchd.sh"

start_orchd
o vm list | grep -q "^local *local *ready" || fail "vm list: $(o vm list)"
o vm down local >/dev/null
[ "$(o --json vm list | jq -r '.[0].state')" = stopped ] || fail "not stopped"
id=$(o dispatch -- echo after-up)
sleep 0.3
[ "$(task_field "$id" state)" = queued ] || fail "a stopped VM took a task"
set +e
o vm up nosuchvm 2>/dev/null; rc=$?
set -e
[ $rc = 4 ] || fail "unknown vm: exit $rc"
o vm up local >/dev/null
wait_for 10 "task $id" state_is "$id" succeeded
[ "$(o logs "$id")" = after-up ] || fail "output"

id=$(o dispatch --retries 1 -- sh -c 'sleep 1; echo again')
wait_for 10 "task $id running" state_is "$id" running
o vm down local >/dev/null
o vm restart local >/dev/null
wait_for 20 "task $id" state_is "$id" succeeded
[ "$(task_field "$id" lost_count)" = 1 ] || fail "vm down did not count a loss"
grep -q "msg=\"task lost, re-queued\" vm=local task=$id reason=\"orch vm down\"" "$T/orchd.log" ||
	fail "no loss logged for vm down"
o vm console local 2>&1 | grep -q "has no console log" || fail "console message"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed (scripts/install-deps)"
[ "$(sqlite3 "$T/state/orch.db" "SELECT state FROM vms WHERE name = 'local'")" = ready ] ||
	fail "vms table: $(sqlite3 "$T/state/orch.db" "SELECT * FROM vms")"

# keep_finished: at start (and every minute) only the newest N finished tasks are kept,
# with their spool files
for i in 1 2 3; do o dispatch --wait -- echo $i >/dev/null; done
n=$(o --json tasks --limit 1000 | jq length)
[ "$n" -gt 2 ] || fail "expected more than 2 tasks, got $n"
kill "$ORCHD_PID"; wait "$ORCHD_PID" || true
echo "{ \"uid_base\": $UIDB, \"scheduler\": { \"keep_finished\": 2 } }" >"$T/keep.json"
start_orchd --config "$T/keep.json"
[ "$(o --json tasks --limit 1000 | jq length)" = 2 ] || fail "pruning kept $(o --json tasks | jq length)"
[ "$(ls "$T/state/spool" | wc -l)" = 2 ] || fail "spool files: $(ls "$T/state/spool")"
grep -q "pruned $((n - 2)) finished task" "$T/orchd.log" || fail "no pruning log line"
echo PASS
