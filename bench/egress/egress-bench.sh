#!/usr/bin/env bash
# The egress gateway's cost on the local backend, against direct loopback in the same
# run (docs/EGRESS.md, "Benchmarks"):
#   - throughput: a 100 MiB HTTPS download (curl, TLS end to end with `openssl s_server
#     -WWW`), direct from the host vs from a jail through the CONNECT tunnel (proxy,
#     supervisor, egress lane, orchd); runs interleaved, medians compared;
#   - connection setup: curl's time to a completed TLS handshake (time_appconnect) for a
#     small file, direct vs through the tunnel; the difference of the medians is what
#     the gateway adds. The handshakes run in 5 alternating batches of 40 per variant.
# Run as root from a build tree: ORCH_BUILDDIR=$PWD/build bench/egress/egress-bench.sh
# [ROUNDS] (default 5 downloads and 200 handshakes per variant).
set -euo pipefail
B=${ORCH_BUILDDIR:?set ORCH_BUILDDIR to the build directory}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${1:-5}
SETUPS=200
BATCHES=5
[ "$(id -u)" = 0 ] || { echo "egress-bench: needs root (jails)" >&2; exit 1; }
for t in curl openssl jq python3; do
	command -v $t >/dev/null || { echo "egress-bench: $t is missing" >&2; exit 1; }
done

T=$(mktemp -d /tmp/orch-egress-bench.XXXXXX)
chmod 0711 "$T"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
mkdir -p "$T/www"
head -c $((100 * 1024 * 1024)) /dev/zero >"$T/www/big"
echo small >"$T/www/small"
load0=$(cut -d' ' -f1 /proc/loadavg)
PORT=$((30000 + $$ % 20000))
(cd "$T/www" && exec openssl s_server -quiet -accept "127.0.0.8:$PORT" -naccept 100000 \
	-cert "$T/cert.pem" -key "$T/key.pem" -WWW >/dev/null 2>&1) &
pids+=($!)
UIDB=$((300000 + ($$ % 3000) * 70))
cat >"$T/config.json" <<JSON
{ "uid_base": $UIDB, "vms": { "local": { "slots": 1, "egress": ["b"] } },
  "egress": { "sets": { "b": ["bench.test:$PORT"] }, "resolve": { "bench.test": "127.0.0.8" },
              "allow_private": ["bench.test"], "limits": { "duration_ms": 0 } } }
JSON
"$B/host/orchd" --foreground --state-dir "$T/state" --socket "$T/orch.sock" \
	--config "$T/config.json" 2>"$T/orchd.log" &
pids+=($!)
o() { "$B/host/orch" --socket "$T/orch.sock" "$@"; }
for _ in $(seq 1 100); do o --json status 2>/dev/null | jq -e '.vms | all(.state == "ready")' >/dev/null && break; sleep 0.1; done
CA=$(cat "$T/cert.pem")
URL=https://bench.test:$PORT
RESOLVE="--resolve bench.test:$PORT:127.0.0.8"

# in_jail CMD: runs CMD in the jail, prints its stdout. `dispatch --wait` waits on orchd's
# task.wait, without polling: nothing but the measured transfer runs while it does.
in_jail() {
	o dispatch --wait --raw --egress b --env "CA=$CA" -- \
		sh -c 'printf "%s\n" "$CA" >/tmp/ca.pem; '"$1" || true
}
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# CPU time (clock ticks) of processes, for the relay's cost per GiB: a figure the load
# moves much less than the throughput
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo $t; }
orchd_pid=${pids[1]}
sup_pid=$(pgrep -P "$orchd_pid" -x orch-supervisor | head -1)
srv_pid=$(pgrep -f "openssl s_server -quiet -accept 127.0.0.8:$PORT" | head -1)
: >"$T/direct" >"$T/tunnel"
relay=0 srv_direct=0 srv_tunnel=0
for i in $(seq 1 "$ROUNDS"); do
	s0=$(ticks "$srv_pid")
	curl -s --cacert "$T/cert.pem" $RESOLVE -o /dev/null -w '%{speed_download}\n' "$URL/big" >>"$T/direct"
	s1=$(ticks "$srv_pid") r0=$(ticks "$orchd_pid" "$sup_pid")
	in_jail "curl -s --cacert /tmp/ca.pem -o /dev/null -w '%{speed_download}\n' $URL/big" >>"$T/tunnel"
	s2=$(ticks "$srv_pid") r1=$(ticks "$orchd_pid" "$sup_pid")
	srv_direct=$((srv_direct + s1 - s0)) srv_tunnel=$((srv_tunnel + s2 - s1)) relay=$((relay + r1 - r0))
done
d=$(median <"$T/direct")
t=$(median <"$T/tunnel")
# in BATCHES alternating batches, so that a change of load falls on both sides alike
per=$((SETUPS / BATCHES))
: >"$T/sd" >"$T/st"
for b in $(seq 1 "$BATCHES"); do
	for i in $(seq 1 "$per"); do
		curl -s --cacert "$T/cert.pem" $RESOLVE -o /dev/null -w '%{time_appconnect}\n' "$URL/small"
	done >>"$T/sd"
	in_jail "for i in \$(seq 1 $per); do curl -s --cacert /tmp/ca.pem -o /dev/null -w '%{time_appconnect}\n' $URL/small; done" >>"$T/st"
done
for f in direct tunnel sd st; do
	want=$ROUNDS
	case $f in sd | st) want=$((per * BATCHES)) ;; esac
	[ "$(grep -c '^[0-9]' "$T/$f")" = "$want" ] ||
		{ echo "egress-bench: $f: $(grep -c '^[0-9]' "$T/$f") of $want measurements; orchd's log:" >&2; tail -20 "$T/orchd.log" >&2; exit 1; }
done
sd=$(median <"$T/sd")
st=$(median <"$T/st")
awk -v l0="$load0" -v relay="$relay" -v srv="$srv_direct" -v hz="$(getconf CLK_TCK)" -v l1="$(cut -d' ' -f1 /proc/loadavg)" -v d="$d" -v t="$t" -v sd="$sd" -v st="$st" -v r="$ROUNDS" -v n="$((per * BATCHES))" 'BEGIN {
	printf "100 MiB over HTTPS, median of %d: direct %.0f MiB/s, through the tunnel %.0f MiB/s: %.2fx (target >= 0.7x)\n", r, d / 1048576, t / 1048576, t / d
	printf "TLS connection setup, median of %d: direct %.2f ms, through the tunnel %.2f ms: +%.2f ms (target <= 2 ms)\n", n, sd * 1000, st * 1000, (st - sd) * 1000
	gib = r * 100 / 1024
	printf "CPU per GiB: relaying (orchd and the supervisor) %.2f s, the TLS server sending it directly %.2f s: %.2fx\n", relay / hz / gib, srv / hz / gib, srv ? relay / srv : 0
	printf "load average (1 min) at start %s, at end %s\n", l0, l1
}'
