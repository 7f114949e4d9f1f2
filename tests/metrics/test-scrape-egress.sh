#!/bin/bash
# The egress gateway's metrics (docs/FLEET.md "Metrics"): after one allowed plain-HTTP
# request through the gateway and one refused, orch_egress_connections_total counts one
# of each verdict and orch_egress_bytes_total the bytes both ways of the allowed one, as
# Prometheus' own parser reads them (tests/metrics/prom-parse). Upstream on 127.0.0.5,
# its name mapped by egress.resolve (tests/egress/egress-server.py).
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"
PARSE=$(dirname "$0")/prom-parse
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"
"$PARSE" </dev/null >/dev/null || { [ $? = 77 ] && skip "python3-prometheus-client is not installed"; }

# egress-server.py serves TLS too (not used here): a certificate for tls.test
egress_certs "$T" tls.test
HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
egress_upstreams "$T" $HP $SP FAKE_PID

cat >"$T/config.json" <<EOF
{
  "uid_base": $UIDB,
  "vms": { "local": { "slots": 1, "egress": ["web"] } },
  "egress": {
    "sets": { "web": ["plain.test:$HP"] },
    "resolve": { "plain.test": "127.0.0.5" },
    "allow_private": ["plain.test"]
  }
}
EOF
start_orchd --config "$T/config.json"

samples() { o metrics | "$PARSE"; }
val() { samples | awk -v k="$1" '$1 == k { print $2 }'; }
# before any connection: the families are there, at zero
[ "$(val 'orch_egress_connections_total{verdict="allowed"}')" = 0.0 ] ||
	fail "allowed connections before any: $(samples | grep egress)"

finished() { case "$(task_field "$1" state)" in succeeded | failed | timed_out | cancelled | lost) ;; *) return 1 ;; esac; }
CURL='curl -sS -m 20 -w " code=%{http_code}\n"'
for url in "http://plain.test:$HP/hello" "http://other.test:$HP/x"; do
	id=$(o dispatch --egress web -- sh -c "$CURL $url")
	wait_for 30 "task $id" finished "$id"
	o logs "$id" >"$T/out.$id" 2>&1 || true
done
grep -q "hello from plain.test:$HP/hello" "$T"/out.* || fail "the allowed request: $(cat "$T"/out.*)"
grep -q "code=403" "$T"/out.* || fail "the refused request: $(cat "$T"/out.*)"

# a connection counts once it ended; the jail's side may close a moment after the task
counted() { [ "$(val 'orch_egress_connections_total{verdict="denied"}')" = 1.0 ] &&
	[ "$(val 'orch_egress_connections_total{verdict="allowed"}')" = 1.0 ]; }
wait_for 10 "both connections counted ($(samples | grep egress_conn | tr '\n' ' '))" counted
# the bytes are the egress log's (a plain GET sends no body: up may be 0, down is not)
log=$(o egress log --json)
for dir in up down; do
	got=$(val "orch_egress_bytes_total{direction=\"$dir\"}")
	want=$(echo "$log" | jq "[.[] | .bytes_$dir] | add")
	awk -v a="$got" -v b="$want" 'BEGIN { exit !(a == b) }' ||
		fail "orch_egress_bytes_total{direction=$dir} $got, the egress log $want"
done
awk -v d="$(val 'orch_egress_bytes_total{direction="down"}')" 'BEGIN { exit !(d > 0) }' ||
	fail "no bytes down counted: $(samples | grep egress)"
echo PASS
