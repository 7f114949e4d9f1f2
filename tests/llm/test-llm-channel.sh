#!/bin/bash
# orchd's LLM channel (orchd-llm.c): with llm.upstreams configured, orchd starts the proxy
# on its loop with the ledger in its own store, gives the supervisor a second channel
# (fd 4), answers llm.request with the upstream's answer (the real key injected, never
# sent to the guest), and records the spend per agent slot and task in the task's row.
. "$(dirname "$0")/../lib/orchd.sh"
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built (host/llm absent)"
command -v python3 >/dev/null || skip "python3 is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"

echo "sk-real-key-$$" >"$T/key"
chmod 600 "$T/key"
port=$((20000 + $$ % 20000))
"$FAKE" --port $port --key "sk-real-key-$$" --record "$T/rec.jsonl" >"$T/fake.out" 2>&1 &
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
start_orchd --config "$T/orchd.json"
grep -q 'LLM proxy ready: 1 upstream' "$T/orchd.log" || fail "proxy not started"
out=$(o dispatch --wait --agent 1 -- any)
echo "$out" | grep -q "Hello from the fake upstream" || fail "answer: $out"
id=$(o --json tasks | jq -r '.[0].id')
[ "$(task_field "$id" spend_tokens)" = 33 ] || fail "spend_tokens $(task_field "$id" spend_tokens)"
[ "$(task_field "$id" spend_usd)" = 0.000243 ] || fail "spend_usd $(task_field "$id" spend_usd)"
[ "$(sqlite3 "$T/state/orch.db" "SELECT spent_micro FROM llm_budget WHERE scope='agent' AND id='local/1'")" = 243 ] ||
	fail "agent ledger"
grep -q "sk-real-key-$$" "$T/rec.jsonl" || fail "the upstream did not get the real key"
! grep -rq "sk-real-key-$$" "$T/orchd.log" || fail "the key appears in orchd's log"

# orch budget show / set
o budget show | grep -q "^agent  *local/1 " || fail "budget show: $(o budget show)"
[ "$(o --json budget show --scope task "$id" | jq -r '.[0].spent_tokens')" = 33 ] || fail "task budget"
o budget set agent local/1 --usd 0.0001 >/dev/null
[ "$(o --json budget show local/1 | jq -r '.[0].limit_usd')" = 0.0001 ] || fail "budget set"
set +e
o budget set agent nosuch/9 --usd 1 2>/dev/null; rc=$?
set -e
[ $rc = 4 ] || fail "unknown agent slot: exit $rc"
# the slot's budget is spent: the next call is refused in Anthropic's error shape
out=$(o dispatch --wait --agent 1 -- any)
echo "$out" | grep -q '"type":"error"' || fail "over-budget answer: $out"
o budget set agent local/1 --reset --usd 0 >/dev/null
[ "$(o --json budget show local/1 | jq -r '.[0].spent_usd')" = 0 ] || fail "reset"
echo PASS
