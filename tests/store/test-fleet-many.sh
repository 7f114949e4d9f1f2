#!/bin/bash
# Three orchd nodes with local backends share one PostgreSQL database: 600 tasks submitted
# to all three end exactly once, each with one result and its own output, spread over the
# nodes; results and logs are read from any node; orch nodes and the metrics show the
# cluster.
. "$(dirname "$0")/fleet-lib.sh"

pg_start
for n in na nb nc; do start_node "$n" 4; done
[ "$(sql "SELECT count(*) FROM nodes WHERE state = 'up'")" = 3 ] || fail "nodes: $(sql 'SELECT * FROM nodes')"

# 600 tasks, 200 through each node's control socket
: >"$T/ids"
for n in na nb nc; do
	submit "$n" 200 1 'echo "task-$1"' >>"$T/ids" || fail "cannot submit to $n"
done
[ "$(sort -u "$T/ids" | wc -l)" = 600 ] || fail "600 distinct ids expected, got $(sort -u "$T/ids" | wc -l)"
wait_for 240 "600 tasks finished" all_done

# every one succeeded once, on its first attempt, with its own output
[ "$(sql "SELECT count(*) FROM tasks WHERE state = 'succeeded' AND attempts = 1 AND exit_code = 0
	AND lost_count = 0")" = 600 ] ||
	fail "tasks not succeeded once: $(sql "SELECT state, attempts, count(*) FROM tasks GROUP BY 1, 2")"
bad=$(sql "SELECT count(*) FROM tasks t WHERE (SELECT string_agg(convert_from(data, 'UTF8'), ''
	ORDER BY seq) FROM output o WHERE o.task = t.id) IS DISTINCT FROM
	'task-' || (SELECT argv::json->>4 FROM tasks u WHERE u.id = t.id) || E'\n'")
[ "$bad" = 0 ] || fail "$bad tasks without exactly their output"
# each run started exactly once, on one node: the supervisors' logs name every attempt
grep -ho 'msg="task started" task=[0-9]*\.[0-9]*' "$T"/node-*.log | sort >"$T/started"
[ "$(wc -l <"$T/started")" = 600 ] || fail "$(wc -l <"$T/started") runs started, want 600"
[ "$(sort -u "$T/started" | wc -l)" = 600 ] || fail "a task started twice"
# the three nodes shared the work
sql "SELECT node, count(*) FROM tasks GROUP BY node ORDER BY node" >"$T/per-node"
[ "$(wc -l <"$T/per-node")" = 3 ] || fail "not every node ran tasks: $(cat "$T/per-node")"

# any node answers for any task: result and logs
for id in $(shuf -n 20 "$T/ids"); do
	ran=$(sql "SELECT node FROM tasks WHERE id = $id")
	for n in na nb nc; do
		[ "$(on "$n" --json result "$id" | jq -r .state)" = succeeded ] || fail "result $id on $n"
		want="task-$(sql "SELECT argv::json->>4 FROM tasks WHERE id = $id")"
		[ "$(on "$n" logs "$id")" = "$want" ] || fail "logs $id (ran on $ran) from $n: $(on "$n" logs "$id")"
	done
done
# logs -f on one node of a task running on another
id=$(on na dispatch --vm nc-v -- sh -c 'echo one; sleep 0.5; echo two')
[ "$(on nb logs -f "$id")" = "$(printf 'one\ntwo')" ] || fail "logs -f across nodes: $(on nb logs "$id")"
[ "$(sql "SELECT node FROM tasks WHERE id = $id")" = nc ] || fail "--vm nc-v did not run on nc"
on nb dispatch --wait --vm na-v -- true >/dev/null || fail "dispatch --wait across nodes"

# orch nodes: three nodes, their VMs, fresh heartbeats
on nb --json nodes >"$T/nodes.json" || fail "orch nodes"
[ "$(jq '.nodes | length' "$T/nodes.json")" = 3 ] || fail "nodes: $(cat "$T/nodes.json")"
jq -e '.nodes | all(.state == "up" and .heartbeat_age_ms < 2000 and (.vms | length) == 1)' \
	"$T/nodes.json" >/dev/null || fail "nodes: $(cat "$T/nodes.json")"
on na nodes | grep -q "nc-v(ready 0/4)" || fail "orch nodes table: $(on na nodes)"
# a VM name is one node's: a fourth node with nb's VM name is refused
cat >"$T/nd.json" <<JSON
{ "uid_base": $((UIDB + 1024)), "vms": { "nb-v": {} },
  "store": { "postgresql": { "conninfo": "$CONNINFO", "password_file": "$PG/password", "node": "nd" } } }
JSON
if "$ORCHD" --config "$T/nd.json" --state-dir "$T/state-nd" --socket "$T/nd.sock" 2>"$T/nd.log"; then
	fail "a node with another node's VM name started"
fi
grep -q "vm nb-v belongs to another node" "$T/nd.log" || fail "nd: $(cat "$T/nd.log")"
# and a second orchd under a live node's name is refused
sed 's/"node": "nd"/"node": "na"/; s/"nb-v"/"nx-v"/' "$T/nd.json" >"$T/na2.json"
if "$ORCHD" --config "$T/na2.json" --state-dir "$T/state-na2" --socket "$T/na2.sock" 2>"$T/na2.log"; then
	fail "a second orchd named na started"
fi
grep -q "node name na is held by another orchd" "$T/na2.log" || fail "na2: $(cat "$T/na2.log")"

# the metrics: cluster-wide task counts, this node's histograms
on nc metrics >"$T/metrics.txt"
"$(dirname "$0")/../metrics/prom-parse" <"$T/metrics.txt" >"$T/samples" || fail "metrics do not parse"
grep -q '^orch_tasks{state="succeeded"} 602.0$' "$T/samples" || fail "metrics: $(grep orch_tasks "$T/samples")"
grep -q '^orch_info{store="postgresql"' "$T/samples" || fail "metrics: no postgresql store"
echo PASS
