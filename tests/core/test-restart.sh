#!/bin/bash
# kill -9 of orchd in the middle of a run, then a restart on the same state dir: finished
# tasks keep their results, queued ones still run, the ones that were running are
# reconciled (lost, re-queued once, then finished). Every task is accounted for.
. "$(dirname "$0")/../lib/orchd.sh"

start_orchd
N=24
for i in $(seq 1 $N); do
	o dispatch -- sh -c "sleep 0.5; echo done-$i" >>"$T/ids"
done
sup=$(o --json status | jq -r '.vms[0].pid')
# let some finish while others run: the kill follows the one listing that shows both (a
# running task has most of its 0.5 s left; checking the two states one after the other
# could miss the running ones on a slow machine)
some_done_some_running() {
	o --json tasks --limit 1000 >"$T/now" &&
		jq -e '([.[] | select(.state == "succeeded")] | length) >= 4 and
		       ([.[] | select(.state == "running")] | length) >= 1' "$T/now" >/dev/null
}
wait_for 30 "some finished, some running" some_done_some_running
kill -9 "$ORCHD_PID"
jq '[.[] | select(.state == "succeeded")]' "$T/now" >"$T/before"
wait "$ORCHD_PID" 2>/dev/null || true
ORCHD_PID=
# the supervisor follows its parent (PR_SET_PDEATHSIG) and its jails with it
wait_for 10 "the orphaned supervisor to exit" sh -c "! kill -0 $sup 2>/dev/null"

start_orchd
wait_for 60 "all tasks final" no_active
o --json tasks --limit 1000 >"$T/after"
[ "$(jq length "$T/after")" = $N ] || fail "task count $(jq length "$T/after")"
[ "$(jq '[.[] | select(.state != "succeeded")] | length' "$T/after")" = 0 ] ||
	fail "not all succeeded: $(jq -c '[.[] | select(.state != "succeeded") | {id, state, reason}]' "$T/after")"
# finished before the crash: unchanged
for id in $(jq -r '.[].id' "$T/before"); do
	[ "$(jq -c ".[] | select(.id == $id) | [.finished_at, .attempts]" "$T/before")" = \
	  "$(jq -c ".[] | select(.id == $id) | [.finished_at, .attempts]" "$T/after")" ] ||
		fail "task $id changed across the restart"
done
# the ones running at the crash were lost once and retried
lost=$(jq '[.[] | select(.lost_count == 1)] | length' "$T/after")
[ "$lost" -ge 1 ] || fail "no task was reconciled as lost"
i=0
while read -r id; do
	i=$((i + 1))
	o logs "$id" | tail -1 | grep -qx "done-$i" || fail "output of task $id"
done <"$T/ids"
grep -q "await reconciliation" "$T/orchd.log" || fail "no reconciliation log line"
echo PASS
