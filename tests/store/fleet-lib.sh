# Helpers of the fleet tests (sourced): a private PostgreSQL server (pg-server) and
# several orchd nodes sharing it, each with its own state dir, socket, log and local VM.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/orchd.sh"

PGS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pg-server
PG=$T/pg
mkdir -p "$PG"
declare -A NODE_PID=()
NODE_N=0

fleet_stop() {
	local n
	for n in "${!NODE_PID[@]}"; do
		kill -CONT "${NODE_PID[$n]}" 2>/dev/null || true
		kill "${NODE_PID[$n]}" 2>/dev/null || true
	done
	for n in "${!NODE_PID[@]}"; do wait "${NODE_PID[$n]}" 2>/dev/null || true; done
	"$PGS" stop "$PG" >/dev/null 2>&1 || true
	# the nodes' logs count for the sanitizer check of lib.sh's cleanup
	cat "$T"/node-*.log >>"$T/orchd.log" 2>/dev/null || true
}
trap 'rc=$?; fleet_stop; (exit $rc); cleanup' EXIT

pg_start() {
	local rc=0
	CONNINFO=$("$PGS" start "$PG") || rc=$?
	[ $rc = 77 ] && skip "no PostgreSQL server installed (scripts/install-deps)"
	[ $rc = 0 ] || fail "cannot start PostgreSQL: $(tail -5 "$PG/server.log" 2>/dev/null)"
}
psql_() { "$PGS" psql "$PG" -tA "$@"; }
sql() { psql_ -c "$1"; }

# node_config NAME SLOTS [EXTRA_JSON]: the config of node NAME (VM NAME-v) in $T/NAME.json
node_config() {
	local name=$1 slots=$2 extra=${3:-} i=$NODE_N
	NODE_N=$((NODE_N + 1))
	cat >"$T/$name.json" <<JSON
{ "uid_base": $((UIDB + i * 256)),
  "scheduler": { "heartbeat_ms": ${HB_MS:-300}, "heartbeat_misses": 5 },
  "vms": { "$name-v": { "slots": $slots } },
  "store": { "postgresql": { "conninfo": "$CONNINFO", "password_file": "$PG/password",
    "node": "$name", "heartbeat_ms": 200, "node_lease_ms": ${LEASE_MS:-1500},
    "poll_ms": 500, "statement_timeout_ms": 3000 } }${extra:+,
  $extra} }
JSON
}

# start_node NAME [SLOTS [EXTRA_JSON]]: starts orchd NAME and waits until it answers
start_node() {
	local name=$1
	[ -f "$T/$name.json" ] || node_config "$name" "${2:-4}" "${3:-}"
	"$ORCHD" --foreground --config "$T/$name.json" --state-dir "$T/state-$name" \
		--socket "$T/$name.sock" -v 2>>"$T/node-$name.log" &
	NODE_PID[$name]=$!
	wait_for 20 "node $name ready" node_ready "$name"
}

on() {
	local name=$1
	shift
	"$ORCH" --socket "$T/$name.sock" "$@"
}

node_ready() {
	local s
	s=$(on "$1" --json status 2>/dev/null) || return 1
	echo "$s" | jq -e '.vms | all(.state == "ready")' >/dev/null
}

# all_done NODE: nothing queued, leased or running in the whole cluster
all_done() {
	[ "$(sql "SELECT count(*) FROM tasks WHERE state IN ('queued','leased','running')")" = 0 ]
}

# submit NODE COUNT RETRIES SCRIPT: COUNT tasks `sh -c SCRIPT N` (N = 1..COUNT) over one
# connection, ids on stdout
submit() {
	/usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/fleet-submit.py" "$T/$1.sock" "$2" "$3" "$4"
}
