#!/bin/bash
# PostgreSQL goes away under three busy nodes, twice: a clean restart and a crash
# (SIGKILL of the server, crash recovery at start). The nodes keep their loops (status
# answers while the database is down), reconnect with backoff and go on: every task ends
# once with all of its output, none is lost or run twice, no node declares another dead.
. "$(dirname "$0")/fleet-lib.sh"

HB_MS=200 # the supervisors re-send an unacknowledged exit with each heartbeat
pg_start
for n in na nb nc; do start_node "$n" 4; done

# each task prints before and after a pause, so that the outage catches output and exits
script='echo "a-$1"; sleep 0.6; echo "b-$1"'
round() { # ROUND_NAME STOP_COMMAND
	local what=$1 stop=$2 t0 t1
	submit na 30 1 "$script" >>"$T/ids" && submit nb 30 1 "$script" >>"$T/ids" ||
		fail "cannot submit ($what)"
	running() { [ "$(sql "SELECT count(*) FROM tasks WHERE state = 'running'")" -ge 6 ]; }
	wait_for 60 "tasks running ($what)" running
	"$PGS" "$stop" "$PG" >/dev/null || fail "pg-server $stop"
	# while the database is away the nodes answer (status has no store counts to give)
	t0=$(date +%s%N)
	on nc --json nodes >/dev/null 2>&1 || true
	on na status >/dev/null 2>&1 || true
	t1=$(date +%s%N)
	[ $(((t1 - t0) / 1000000)) -lt 8000 ] || fail "orchd stalled $(((t1 - t0) / 1000000)) ms while PostgreSQL was away"
	if [ "$stop" = kill ]; then # still away: the metrics say so, and still parse
		on na metrics | "$(dirname "$0")/../metrics/prom-parse" >"$T/m-away" ||
			fail "metrics while PostgreSQL is away"
		grep -qx 'orch_store_up{} 0.0' "$T/m-away" || fail "orch_store_up while away: $(grep store_up "$T/m-away")"
	fi
	sleep 2
	[ "$stop" = restart ] || pg_start
	wait_for 180 "all tasks finished after the $what" all_done
}
round "restart" restart
round "crash" kill

n=$(wc -l <"$T/ids")
[ "$n" = 120 ] || fail "$n tasks submitted"
[ "$(sql "SELECT count(*) FROM tasks WHERE state = 'succeeded' AND exit_code = 0")" = 120 ] ||
	fail "not all succeeded: $(sql "SELECT id, state, attempts, reason FROM tasks WHERE state <> 'succeeded'")"
[ "$(sql "SELECT count(*) FROM tasks WHERE attempts <> 1 OR lost_count <> 0")" = 0 ] ||
	fail "tasks lost or retried: $(sql "SELECT id, attempts, lost_count, node FROM tasks WHERE attempts <> 1")"
[ "$(sql "SELECT count(*) FROM nodes WHERE state = 'up'")" = 3 ] || fail "nodes: $(sql 'SELECT name, state FROM nodes')"
bad=$(sql "SELECT id FROM tasks t WHERE (SELECT string_agg(convert_from(data, 'UTF8'), '' ORDER BY seq)
	FROM output o WHERE o.task = t.id) IS DISTINCT FROM
	'a-' || (argv::json->>4) || E'\nb-' || (argv::json->>4) || E'\n'")
[ -z "$bad" ] || fail "tasks without all their output: $bad ($(on na logs "$(echo "$bad" | head -1)"))"
grep -ho 'msg="task started" task=[0-9]*\.[0-9]*' "$T"/node-*.log | sort >"$T/started"
[ "$(wc -l <"$T/started")" = 120 ] && [ "$(sort -u "$T/started" | wc -l)" = 120 ] ||
	fail "$(wc -l <"$T/started") runs started for 120 tasks"
grep -q "the store is back" "$T/node-na.log" || fail "na never noticed the store away and back"
on na metrics | "$(dirname "$0")/../metrics/prom-parse" | grep -qx 'orch_store_up{} 1.0' ||
	fail "orch_store_up after the store came back"
echo PASS
