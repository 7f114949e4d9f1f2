#!/bin/bash
# orchd's LLM channel against a guest that misbehaves (tests/llm/llm-channel-double.py
# plays the guest):
# 1. The guest closes its LLM channel right after the reply head of a stream, the stream
#    ends upstream, then the guest goes away and comes back (a VM reboot mid-stream): orchd
#    ends the call with the channel (the upstream is drained and billed), releases the
#    channel, serves the guest's new one, and never touches freed memory (under ASan any
#    report in orchd's log fails the test, see tests/lib/orchd.sh).
# 2. A request for an agent slot with no task running is refused in the provider's shape
#    (403); nothing reaches the upstream, nothing is reserved or billed.
. "$(dirname "$0")/../lib/orchd.sh"
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built (host/llm absent)"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"

echo "sk-real-key-$$" >"$T/key"
chmod 600 "$T/key"
"$FAKE" --port 0 --key "sk-real-key-$$" --record "$T/rec.jsonl" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
port=$(head -1 "$T/fake.out")
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "supervisor": "$(cd "$(dirname "$0")" && pwd)/llm-channel-double.py",
  "vms": { "local": { "slots": 2 } },
  "llm": { "upstreams": { "fake": { "kind": "anthropic", "base_url": "http://127.0.0.1:$port",
                                    "key_file": "$T/key" } },
           "models": { "claude-x": { "upstream": "fake", "input_usd_per_mtok": 3,
                                     "output_usd_per_mtok": 15 } } } }
JSON
ORCHD_VERBOSE=-vv start_orchd --config "$T/orchd.json"
db() { sqlite3 "$T/state/orch.db" "$1"; }
sup_pid() { o --json status | jq -r '.vms[0].pid'; }

# 1. the guest leaves mid-stream, then reboots
pid1=$(sup_pid)
out=$(o dispatch --wait --agent 1 -- leave-mid-stream)
echo "$out" | grep -q "left mid-stream" || fail "leave-mid-stream: $out"
grep -q 'msg="LLM channel closed" vm=local calls_detached=1' "$T/orchd.log" ||
	fail "orchd did not end the call with the channel the guest closed"
wait_for 20 "the guest back" sh -c "[ \"\$('$ORCH' --socket '$SOCK' --json status | jq -r '.vms[0].pid')\" != '$pid1' ]"
wait_for 20 "the guest ready" orchd_ready
wait_for 10 "the stream billed" sh -c "[ \"\$(sqlite3 '$T/state/orch.db' \"SELECT count(*) FROM llm_spend WHERE agent = 'local/1'\")\" = 1 ]"
[ "$(db "SELECT outcome FROM llm_spend WHERE agent = 'local/1'")" = disconnected ] ||
	fail "the cut stream's outcome: $(db "SELECT outcome FROM llm_spend")"
[ "$(db "SELECT count(*) FROM llm_reservation")" = 0 ] || fail "a reservation was left"
# the rebooted guest's new LLM channel is served
out=$(o dispatch --wait --agent 1 -- any)
echo "$out" | grep -q "Hello from the fake upstream" || fail "answer after the reconnect: $out"

# 2. a slot with no task: refused, nothing forwarded, reserved or billed
n=$(wc -l <"$T/rec.jsonl")
spent=$(db "SELECT count(*) FROM llm_spend")
out=$(o dispatch --wait --agent 1 -- idle-slot)
echo "$out" | grep -q "^status 403" || fail "idle slot: $out"
echo "$out" | grep -q '"type":"error".*"permission_error".*no task is running in agent slot 0' ||
	fail "idle slot's refusal: $out"
[ "$(wc -l <"$T/rec.jsonl")" = "$n" ] || fail "a request of an idle slot reached the upstream"
[ "$(db "SELECT count(*) FROM llm_spend")" = "$spent" ] || fail "an idle slot's request was billed"
[ "$(db "SELECT count(*) FROM llm_budget WHERE id = 'local/0' AND (spent_micro > 0 OR reserved_micro > 0)")" = 0 ] ||
	fail "the idle slot was charged"
[ "$(db "SELECT count(*) FROM llm_reservation")" = 0 ] || fail "a reservation was left"
echo PASS
