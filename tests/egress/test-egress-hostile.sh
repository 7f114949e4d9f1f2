#!/usr/bin/env bash
# A compromised guest on the egress lane (tests/egress/egress-hostile-guest.py, in the
# supervisor's place for VM "evil") beside an honest VM: frames for connections that do
# not exist are ignored, opens for a slot out of range or without a task are refused
# (300 of them, each answered), credit past a tunnel's window is a protocol error that
# closes that guest's lane; orchd answers throughout and the honest VM's agents keep
# their egress.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v curl >/dev/null || skip "curl is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
egress_certs "$T" tls.test
egress_upstreams "$T" $HP $SP FAKE_PID

mkdir -p "$T/hostile"
here=$(cd "$(dirname "$0")" && pwd)
cat >"$T/config.json" <<JSON
{ "uid_base": $UIDB, "supervisor": "$here/egress-hostile-guest.py",
  "vms": { "good": { "slots": 1, "egress": ["web"] }, "evil": { "slots": 2, "egress": ["web"] } },
  "egress": { "sets": { "web": ["plain.test:$HP", "tls.test:$SP"] },
              "resolve": { "plain.test": "127.0.0.5", "tls.test": "127.0.0.6" },
              "allow_private": ["plain.test", "tls.test"] } }
JSON
export ORCH_HOSTILE_REAL=$B/guest/orch-supervisor ORCH_HOSTILE_DIR=$T/hostile ORCH_HOSTILE_TARGET=tls.test:$SP
start_orchd --config "$T/config.json"

o dispatch --vm evil --agent 0 --egress web -- true >/dev/null
wait_for 60 "the hostile guest's run" test -s "$T/hostile/evil.done"
seen=$(cat "$T/hostile/evil.done")
echo "$seen" | jq -e '.hello and .slot_out_of_range and .no_task_refused == 300 and
	.allowed_verdict and .lane_closed' >/dev/null || fail "hostile guest saw: $seen"
grep -q 'egress lane protocol error.*vm=evil' "$T/orchd.log" || fail "no protocol error logged"
o status >/dev/null || fail "orchd does not answer"
# the honest VM's agent still gets out
out=$(o dispatch --vm good --egress web --wait -- curl -sS http://plain.test:$HP/good)
echo "$out" | grep -q "hello from plain.test:$HP/good" || fail "honest VM's egress: $out"
n=$(o egress log --limit 1000 --json | jq '[.[] | select(.vm == "evil" and .verdict == "denied")] | length')
[ "$n" -ge 301 ] || fail "the hostile guest's refusals are not logged ($n)"
echo "PASS"
