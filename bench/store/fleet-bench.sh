#!/bin/bash
# Three orchd nodes on one PostgreSQL database against one orchd on SQLite, in one run:
#   1. submissions/s: three clients, each submitting TASKS tasks over one connection
#      (pipelined), to the three nodes (PostgreSQL) or all to the one node (SQLite); the
#      VMs are not started, so only submission is measured;
#   2. dispatch latency: RUNS times `orch dispatch --wait -- /bin/true` end to end with the
#      VMs up, round robin over the nodes; p50 and p99.
# Targets (docs/FLEET.md): cluster-wide >= 2,000 submissions/s; dispatch p50 <= 1.5x the
# SQLite figure. PostgreSQL runs with fsync on (PG_FSYNC=off to compare without).
# Run as root: ORCH_BUILDDIR=build bench/store/fleet-bench.sh [TASKS] [RUNS]
set -euo pipefail
B=${ORCH_BUILDDIR:?set ORCH_BUILDDIR to the build directory}
B=$(cd "$B" && pwd)
S=$(cd "$(dirname "$0")/../.." && pwd)
TASKS=${1:-3000}
RUNS=${2:-60}
PGS=$S/tests/store/pg-server
SUBMIT=$S/tests/store/fleet-submit.py
[ "$(id -u)" = 0 ] || { echo "fleet-bench: run as root" >&2; exit 1; }
T=$(mktemp -d /tmp/orch-fleet-bench.XXXXXX)
chmod 0711 "$T"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	"$PGS" stop "$T/pg" >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# node NAME STORE_JSON AUTOSTART UID
node() {
	local store=""
	[ -z "$2" ] || store=", \"store\": $2"
	cat >"$T/$1.json" <<JSON
{ "uid_base": $4, "vms": { "$1-v": { "slots": 4, "autostart": $3 } },
  "scheduler": { "max_queue": 10000000 }$store }
JSON
	"$B/host/orchd" --config "$T/$1.json" --state-dir "$T/state-$1" --socket "$T/$1.sock" \
		2>>"$T/$1.log" &
	pids+=($!)
	for _ in $(seq 200); do
		"$B/host/orch" --socket "$T/$1.sock" status >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "fleet-bench: node $1 did not start: $(tail -3 "$T/$1.log")" >&2
	exit 1
}

stop_nodes() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}

# submissions SOCK... : three clients in parallel, TASKS each; prints submissions/s
submissions() {
	local t0 t1 s sp=()
	t0=$(now_ms)
	for s in "$@"; do
		/usr/bin/python3 "$SUBMIT" "$s" "$TASKS" 0 true >/dev/null &
		sp+=($!)
	done
	wait "${sp[@]}"
	t1=$(now_ms)
	echo $((3 * TASKS * 1000 / (t1 - t0)))
}

# latency SOCK...: RUNS dispatches --wait round robin; prints p50 and p99 in ms
latency() {
	local i t0 t1 socks=("$@")
	: >"$T/lat"
	for i in $(seq "$RUNS"); do
		t0=$(date +%s%N)
		"$B/host/orch" --socket "${socks[$((i % ${#socks[@]}))]}" dispatch --wait -- /bin/true
		t1=$(date +%s%N)
		echo $(((t1 - t0) / 1000)) >>"$T/lat"
	done
	sort -n "$T/lat" | awk '{ v[NR] = $1 } END { i = int(NR * 0.99) + 1; if (i > NR) i = NR;
		printf "%.2f %.2f\n", v[int(NR / 2) + 1] / 1000, v[i] / 1000 }'
}

wait_ready() {
	for _ in $(seq 400); do
		"$B/host/orch" --socket "$1" --json status 2>/dev/null |
			jq -e '.vms | all(.state == "ready")' >/dev/null && return 0
		sleep 0.05
	done
	echo "fleet-bench: VMs of $1 not ready" >&2
	exit 1
}

# --- SQLite, one node ---
node sq "" false 240000
sq_sub=$(submissions "$T/sq.sock" "$T/sq.sock" "$T/sq.sock")
stop_nodes
rm -rf "$T/state-sq"
node sq "" true 240000
wait_ready "$T/sq.sock"
read -r sq_p50 sq_p99 < <(latency "$T/sq.sock")
stop_nodes

# --- PostgreSQL, three nodes ---
mkdir -p "$T/pg"
ci=$(PG_FSYNC=${PG_FSYNC:-on} "$PGS" start "$T/pg")
pgstore() { echo "{ \"postgresql\": { \"conninfo\": \"$ci\", \"password_file\": \"$T/pg/password\", \"node\": \"$1\" } }"; }
uid=241000
for n in na nb nc; do node "$n" "$(pgstore "$n")" false $uid; uid=$((uid + 256)); done
pg_sub=$(submissions "$T/na.sock" "$T/nb.sock" "$T/nc.sock")
stop_nodes
"$PGS" psql "$T/pg" -q -c "SET client_min_messages = warning; TRUNCATE tasks CASCADE; DELETE FROM vms; DELETE FROM nodes" >/dev/null
uid=241000
for n in na nb nc; do
	rm -rf "$T/state-$n"
	node "$n" "$(pgstore "$n")" true $uid
	uid=$((uid + 256))
done
for n in na nb nc; do wait_ready "$T/$n.sock"; done
read -r pg_p50 pg_p99 < <(latency "$T/na.sock" "$T/nb.sock" "$T/nc.sock")

printf '%-44s %8s /s\n' "submissions, 1 node on SQLite (3 clients)" "$sq_sub"
printf '%-44s %8s /s   (%.2fx; target >= 2000 /s)\n' "submissions, 3 nodes on PostgreSQL" "$pg_sub" \
	"$(awk -v a="$pg_sub" -v b="$sq_sub" 'BEGIN { print a / b }')"
printf '%-44s p50 %7s ms  p99 %7s ms\n' "dispatch --wait, 1 node on SQLite" "$sq_p50" "$sq_p99"
printf '%-44s p50 %7s ms  p99 %7s ms   (%.2fx of SQLite p50; target <= 1.5x)\n' \
	"dispatch --wait, 3 nodes on PostgreSQL" "$pg_p50" "$pg_p99" "$(awk -v a="$pg_p50" -v b="$sq_p50" 'BEGIN { print a / b }')"
