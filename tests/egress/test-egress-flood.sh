#!/usr/bin/env bash
# One agent flooding the egress gateway with CONNECTs does not slow another agent's LLM
# calls: the egress lane is a channel of its own, orchd bounds each agent's connections
# and decides without blocking. Agent 1's LLM call latency (median of 20) is measured
# alone and again while agent 0 opens tunnels as fast as 32 threads can; the second may
# be at most twice the first plus 25 ms (the machine's two cores are shared with the
# flood itself). orchd answers `status` throughout.
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/../lib/egress.sh"
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built (host/llm absent)"
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"

key=$(egress_token "$T/key" sk-real-key-flood)
"$FAKE" --port 0 --key "$key" --record "$T/rec.jsonl" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
port=$(head -1 "$T/fake.out")
egress_certs "$T" tls.test
HP=$((20000 + $$ % 20000))
SP=$((HP + 1))
SRV_PID=
trap 'rc=$?; [ -z "$SRV_PID" ] || kill "$SRV_PID" 2>/dev/null; (exit $rc); cleanup' EXIT
egress_upstreams "$T" $HP $SP SRV_PID

cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB,
  "vms": { "local": { "slots": 2, "egress": ["web"] } },
  "llm": { "upstreams": { "fake": { "kind": "anthropic", "base_url": "http://127.0.0.1:$port",
                                    "key_file": "$T/key" } },
           "models": { "claude-x": { "upstream": "fake", "input_usd_per_mtok": 3,
                                     "output_usd_per_mtok": 15 } } },
  "egress": { "sets": { "web": ["tls.test:$SP"] }, "resolve": { "tls.test": "127.0.0.6" },
              "allow_private": ["tls.test"] } }
JSON
start_orchd --config "$T/orchd.json"

LLM='for i in $(seq 1 20); do curl -s -o /dev/null -w "%{time_total}\n" http://127.0.0.1:4000/v1/messages -H "content-type: application/json" -H "anthropic-version: 2023-06-01" -H "x-api-key: $ANTHROPIC_API_KEY" -d "{\"model\":\"claude-x\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"; done'
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
done_() {
	case "$(task_field "$1" state)" in succeeded | failed | timed_out | cancelled | lost) return 0 ;; esac
	return 1
}

id=$(o dispatch --agent 1 -- sh -c "$LLM")
wait_for 60 "the baseline calls" done_ "$id"
base=$(o logs "$id" | median)

FLOOD="
import socket, threading, time
end = time.time() + 20
n = [0]
def run():
    while time.time() < end:
        try:
            s = socket.create_connection(('127.0.0.1', 3128))
            s.sendall(b'CONNECT tls.test:$SP HTTP/1.1\r\n\r\n')
            s.recv(4096)
            s.close()
            n[0] += 1
        except OSError:
            pass
ts = [threading.Thread(target=run) for _ in range(32)]
[t.start() for t in ts]
[t.join() for t in ts]
print('connects', n[0])
"
flood=$(o dispatch --agent 0 --egress web --env "PROG=$FLOOD" -- sh -c 'python3 -c "$PROG"')
sleep 2
id=$(o dispatch --agent 1 -- sh -c "$LLM")
wait_for 60 "the calls under the flood" done_ "$id"
under=$(o logs "$id" | median)
start=$(date +%s%N)
o status >/dev/null || fail "orchd does not answer during the flood"
status_ms=$((($(date +%s%N) - start) / 1000000))
wait_for 60 "the flood" done_ "$flood"
n=$(o logs "$flood" | sed -n 's/^connects //p')
[ -n "$n" ] && [ "$n" -ge 200 ] || fail "the flood did not happen: $(o logs "$flood" 2>&1 | tail -3)"
echo "LLM call median: alone ${base}s, under a flood of $n CONNECTs ${under}s; status ${status_ms} ms"
awk -v b="$base" -v u="$under" 'BEGIN { exit !(u <= 2 * b + 0.025) }' ||
	fail "the LLM calls slowed: ${base}s alone, ${under}s under the flood"
[ "$status_ms" -lt 1000 ] || fail "status took ${status_ms} ms during the flood"
echo "PASS"
