#!/bin/bash
# Group commit on PostgreSQL (fsync off, as every test): two nodes whose VMs stay down (only
# submission is exercised), three clients each pipelining 200 requests to each node:
# every submission answered in order and stored once, several in one transaction (rows
# sharing an xmin). Then PostgreSQL is stopped under a stream of pipelined submissions:
# the replies go on in order, those after the stop are errors saying the task was not
# stored, and every submission answered "queued" is in the database once the server is
# back (none is answered "queued" without being stored), none stored twice.
. "$(dirname "$0")/fleet-lib.sh"

PIPE=$(dirname "$0")/../control/pipeline-submit.py
pg_start
for n in na nb; do
	node_config "$n" 2
	# the VM stays down: nothing is leased, the rows keep the xmin of their insert
	sed -i -e "s/\"$n-v\": { \"slots\": 2 }/\"$n-v\": { \"slots\": 2, \"autostart\": false }/" \
		-e 's/"heartbeat_misses": 5 }/"heartbeat_misses": 5, "max_queue": 10000000 }/' "$T/$n.json"
	grep -q autostart "$T/$n.json" && grep -q max_queue "$T/$n.json" ||
		fail "config of $n: $(cat "$T/$n.json")"
	"$ORCHD" --foreground --config "$T/$n.json" --state-dir "$T/state-$n" \
		--socket "$T/$n.sock" -v 2>>"$T/node-$n.log" &
	NODE_PID[$n]=$!
done
answers() { on "$1" status >/dev/null 2>&1; }
wait_for 20 "node na" answers na
wait_for 20 "node nb" answers nb

/usr/bin/python3 "$PIPE" batch "$T/na.sock" 3 200 >"$T/ids-na" &
pa=$!
/usr/bin/python3 "$PIPE" batch "$T/nb.sock" 3 200 >"$T/ids-nb" &
pb=$!
wait $pa || fail "pipelined submissions to na"
wait $pb || fail "pipelined submissions to nb"
n=$((2 * (3 * 200 - 2)))
cat "$T/ids-na" "$T/ids-nb" | awk '{ print $2 }' | sort -n >"$T/ids"
[ "$(wc -l <"$T/ids")" = $n ] || fail "$(wc -l <"$T/ids") submissions answered, expected $n"
sql "SELECT id FROM tasks ORDER BY id" | cmp -s - "$T/ids" ||
	fail "stored tasks differ from the answers"
xacts=$(sql "SELECT count(DISTINCT xmin::text) FROM tasks")
[ "$xacts" -lt $((n / 4)) ] || fail "$n tasks stored in $xacts transactions: not grouped"
echo "batch: $n tasks in $xacts transactions"

# PostgreSQL stops under a stream of submissions
sql "SET client_min_messages = warning; TRUNCATE tasks CASCADE" >/dev/null
/usr/bin/python3 "$PIPE" stream "$T/na.sock" 40000 64 >"$T/stream" &
ps=$!
some() { [ "$(sql "SELECT count(*) FROM tasks")" -ge 1000 ]; }
wait_for 60 "submissions stored" some
"$PGS" stop "$PG" >/dev/null || fail "pg-server stop"
wait $ps || fail "the stream of submissions"
pg_start
grep -c '^ok ' "$T/stream" >/dev/null || fail "no submission answered queued"
grep -q '^err ' "$T/stream" || fail "no submission refused while PostgreSQL was stopped"
bad=$(grep '^err ' "$T/stream" | grep -v 'the task was not stored' | head -3)
[ -z "$bad" ] || fail "unclear errors: $bad"
# answered in order (checked by the client), and never "queued" after an error until the
# server is back (it is not back before the client ends)
awk '$1 == "err" { e = 1 } $1 == "ok" && e { print; exit 1 }' "$T/stream" >/dev/null ||
	fail "a submission answered queued after the store went away"
grep '^ok ' "$T/stream" | awk '{ print $3 " " $2 }' | sort >"$T/ok"
wait_for 20 "PostgreSQL back" sql "SELECT 1" >/dev/null
sql "SELECT id || ' ' || (argv::json->>1) FROM tasks" | sort >"$T/stored"
missing=$(join -v1 "$T/ok" "$T/stored" | head -3)
[ -z "$missing" ] || fail "answered queued but not stored: $missing"
[ -z "$(sql "SELECT argv::json->>1 FROM tasks GROUP BY 1 HAVING count(*) > 1")" ] ||
	fail "a submission stored twice"
extra=$(($(wc -l <"$T/stored") - $(wc -l <"$T/ok")))
echo "stream: $(wc -l <"$T/ok") queued, $(grep -c '^err ' "$T/stream") refused," \
	"$extra stored whose commit's answer was lost"
[ "$extra" -le 128 ] || fail "$extra tasks stored that were answered with an error"
echo PASS
