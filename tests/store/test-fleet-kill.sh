#!/bin/bash
# A node that dies and a node that stalls, with three nodes on one PostgreSQL database.
#  1. kill -9 of a node mid-run: once its lease expires another node declares it dead; its
#     tasks are lost and retried on the others (retries as for a VM that went away), none
#     duplicated or lost; output and results of the dead node's tasks stay readable from
#     the others.
#  2. a stalled node (SIGSTOP) whose lease expired: its tasks run again elsewhere; when it
#     wakes, its late exits and output are refused (the attempt is not its any more), it
#     learns it was fenced and registers again.
. "$(dirname "$0")/fleet-lib.sh"

pg_start
for n in na nb nc; do start_node "$n" 4; done

# a task that ran on nb before it dies
early=$(on na dispatch --vm nb-v -- sh -c 'echo from-nb; echo to-stderr >&2')
wait_for 20 "task $early done" all_done

# 1. kill -9 of nb while it runs tasks
submit na 48 1 'sleep 1; echo "k-$1"' >"$T/ids" || fail "cannot submit"
running_on() { [ "$(sql "SELECT count(*) FROM tasks WHERE node = '$1' AND state = 'running'")" -ge "$2" ]; }
wait_for 60 "tasks running on nb" running_on nb 3
kill -9 "${NODE_PID[nb]}"
wait "${NODE_PID[nb]}" 2>/dev/null || true
unset 'NODE_PID[nb]'
sql "SELECT id FROM tasks WHERE node = 'nb' AND state IN ('leased', 'running')" >"$T/on-nb"
[ -s "$T/on-nb" ] || fail "no task was on nb when it died"
wait_for 30 "nb's tasks lost" grep -q "node(s) stopped renewing their lease" "$T"/node-na.log "$T"/node-nc.log
grep -hq 'reason="lost: node nb stopped renewing its lease"\|lost: node nb stopped renewing its lease' \
	"$T"/node-*.log || [ "$(sql "SELECT count(*) FROM tasks WHERE lost_count = 1")" -gt 0 ] ||
	fail "no task was lost with nb"
wait_for 120 "all tasks finished after nb died" all_done
[ "$(sql "SELECT state FROM nodes WHERE name = 'nb'")" = dead ] || fail "nb is $(sql "SELECT state FROM nodes WHERE name = 'nb'")"
[ "$(sql "SELECT count(*) FROM tasks WHERE state = 'succeeded' AND exit_code = 0")" = 49 ] ||
	fail "not all succeeded: $(sql "SELECT id, state, attempts, node, reason FROM tasks WHERE state <> 'succeeded'")"
for id in $(cat "$T/on-nb"); do
	row=$(sql "SELECT attempts, lost_count, node FROM tasks WHERE id = $id")
	case "$row" in
	"2|1|na" | "2|1|nc") ;;
	*) fail "task $id after nb died: $row" ;;
	esac
	n=$(sql "SELECT argv::json->>4 FROM tasks WHERE id = $id")
	[ "$(on nc logs "$id")" = "k-$n" ] || fail "logs of retried task $id: $(on nc logs "$id")"
done
# every other task ran once; none was run three times
[ "$(sql "SELECT count(*) FROM tasks WHERE attempts > 2 OR (attempts = 2 AND lost_count <> 1)")" = 0 ] ||
	fail "tasks run too often: $(sql "SELECT id, attempts, lost_count FROM tasks WHERE attempts > 1")"
# output per attempt, each task's final attempt complete
[ "$(sql "SELECT count(*) FROM tasks t WHERE (SELECT string_agg(convert_from(data, 'UTF8'), '' ORDER BY seq)
	FROM output o WHERE o.task = t.id AND o.attempt = t.attempts) IS DISTINCT FROM
	'k-' || (argv::json->>4) || E'\n' AND t.id <> $early")" = 0 ] || fail "final attempts' output incomplete"
# the dead node's finished task: result and logs from the others
[ "$(on na logs "$early" 2>/dev/null)" = from-nb ] || fail "logs of nb's task from na: $(on na logs "$early")"
[ "$(on nc logs "$early" 2>&1 >/dev/null)" = to-stderr ] || fail "stderr of nb's task from nc"
[ "$(on nc --json result "$early" | jq -r '.state + " " + .vm')" = "succeeded nb-v" ] || fail "result of nb's task"
on na nodes | grep -Eq '^nb +dead' || fail "orch nodes does not show nb dead: $(on na nodes)"

# 2. a stalled node: its late exits do not overwrite the re-run
for d in "$T"/state-nc/workspaces/nc-v/agent-*; do touch "$d/stale-marker"; done
submit na 12 1 'sleep 2; [ -e /workspace/stale-marker ] && { echo STALE; exit 7; }; echo "s-$1"' >"$T/ids2"
wait_for 60 "tasks running on nc" running_on nc 2
kill -STOP "${NODE_PID[nc]}"
sql "SELECT id FROM tasks WHERE node = 'nc' AND state IN ('leased', 'running')" >"$T/on-nc"
[ -s "$T/on-nc" ] || fail "no task was on nc when it stalled"
wait_for 60 "nc declared dead" sh -c "[ \"\$('$PGS' psql '$PG' -tAc \"SELECT state FROM nodes WHERE name = 'nc'\")\" = dead ]"
wait_for 60 "the stalled node's tasks re-run" all_done
sql "SELECT id, state, exit_code, attempts, node, finished_at FROM tasks WHERE id IN
	($(paste -sd, "$T/on-nc")) ORDER BY id" >"$T/rerun"
# by now nc's supervisor has finished its runs (exit 7, "STALE") and waits for nc
sleep 2.5
kill -CONT "${NODE_PID[nc]}"
wait_for 30 "nc fenced" grep -q "lease was taken away" "$T/node-nc.log"
wait_for 30 "nc registered again" sh -c "[ \"\$('$PGS' psql '$PG' -tAc \"SELECT state || incarnation FROM nodes WHERE name = 'nc'\")\" = up2 ]"
sleep 1 # whatever nc still had queued from its supervisor has been handled
[ "$(sql "SELECT id, state, exit_code, attempts, node, finished_at FROM tasks WHERE id IN
	($(paste -sd, "$T/on-nc")) ORDER BY id")" = "$(cat "$T/rerun")" ] ||
	fail "the stalled node changed re-run tasks: $(cat "$T/rerun") -> $(sql "SELECT id, state, exit_code, attempts, node FROM tasks WHERE id IN ($(paste -sd, "$T/on-nc"))")"
grep -q "^.*|succeeded|0|2|na|" "$T/rerun" || fail "re-runs: $(cat "$T/rerun")"
[ "$(sql "SELECT count(*) FROM output WHERE convert_from(data, 'UTF8') LIKE '%STALE%'")" = 0 ] ||
	fail "the stalled node's output reached the store"
[ "$(sql "SELECT count(*) FROM tasks WHERE state <> 'succeeded'")" = 0 ] || fail "a task did not succeed"
# the woken node runs tasks again
for d in "$T"/state-nc/workspaces/nc-v/agent-*; do rm -f "$d/stale-marker"; done
id=$(on nb 2>/dev/null dispatch --vm nc-v -- echo back || on na dispatch --vm nc-v -- echo back)
wait_for 30 "nc runs tasks again" all_done
[ "$(on nc logs "$id")" = back ] || fail "nc after its fence: $(on nc --json result "$id")"
echo PASS
