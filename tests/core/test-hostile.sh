#!/bin/bash
# A compromised guest against a real orchd (docs/ARCHITECTURE.md, threat model). One
# orchd runs an honest VM ("good", the real supervisor) beside VMs whose supervisor is
# replaced by tests/core/hostile-supervisor.py (through the config's "supervisor" key):
#   evil-forge    hello claiming the other VMs' tasks; task.exit / task.output for
#                 unknown, finished and other VMs' task ids, again and again
#   evil-seq      output seqs at and beyond 2^53-1, INT64_MAX, duplicates after them
#   evil-flood    a million empty chunks, then 300,000 one-byte chunks that alternate
#                 between stdout and stderr
#   evil-bigout   8 MiB of output against max_output_mib 2
#   evil-llm      LLM requests for its task's slot, idle slots and slots that do not
#                 exist, then its LLM channel closed mid-stream
#   evil-storm    hello, then gone, each time orchd restarts it
#   evil-garbage  over-long lines, invalid JSON and UTF-8, deep nesting, huge numbers,
#                 a 2,000-call batch, 20,000 requests at once; then a hello that works
#   evil-spend    ends its task while the task's LLM answer is still coming
#   evil-spendlost  spends, then vanishes with its task running (the task is lost)
# Pass: orchd survives (no sanitizer report), `status` answers in <= 100 ms at p99
# throughout, every task of the honest VM ends as it should with its own output, each
# hostile task's record is what the rules say, and the state directory grows by less
# than 16 MiB.
. "$(dirname "$0")/../lib/orchd.sh"
here=$(cd "$(dirname "$0")" && pwd)
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built"
[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 is not installed"
P99_MS=${ORCH_HOSTILE_P99_MS:-100}
GROWTH_MAX=$((16 * 1024 * 1024))

echo "sk-real-key-$$" >"$T/key"
chmod 600 "$T/key"
"$FAKE" --port 0 --key "sk-real-key-$$" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
port=$(head -1 "$T/fake.out")
mkdir -p "$T/hostile"
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "supervisor": "$here/hostile-supervisor.py",
  "scheduler": { "max_output_mib": 2 },
  "vms": { "good": { "slots": 2 }, "evil-forge": { "slots": 2 }, "evil-seq": { "slots": 1 },
           "evil-flood": { "slots": 1 }, "evil-bigout": { "slots": 1 },
           "evil-llm": { "slots": 2 }, "evil-storm": { "slots": 1 },
           "evil-garbage": { "slots": 1 }, "evil-spend": { "slots": 1 },
           "evil-spendlost": { "slots": 1 } },
  "llm": { "upstreams": { "fake": { "kind": "anthropic", "base_url": "http://127.0.0.1:$port",
                                    "key_file": "$T/key" } },
           "models": { "claude-x": { "upstream": "fake", "input_usd_per_mtok": 3,
                                     "output_usd_per_mtok": 15 } } } }
JSON
export ORCH_HOSTILE_REAL=$B/guest/orch-supervisor ORCH_HOSTILE_DIR=$T/hostile
"$ORCHD" --foreground --config "$T/orchd.json" --state-dir "$T/state" --socket "$SOCK" \
	2>>"$T/orchd.log" &
ORCHD_PID=$!
good_ready() {
	local s
	s=$(o --json status 2>/dev/null) || return 1
	echo "$s" | jq -e '.vms[] | select(.name == "good") | .state == "ready"' >/dev/null
}
wait_for 20 "the honest VM" good_ready
size0=$(du -sb "$T/state" | cut -f1)

/usr/bin/python3 "$here/status-probe.py" "$SOCK" "$T/probe.stop" 20 300 >"$T/probe.out" &
PROBE=$!

seq_id=$(o dispatch --vm evil-seq -- true)
flood_id=$(o dispatch --vm evil-flood -- true)
big_id=$(o dispatch --vm evil-bigout -- true)
llm_id=$(o dispatch --vm evil-llm --agent 0 -- true)
spend_id=$(o dispatch --vm evil-spend -- true)
lost_id=$(o dispatch --vm evil-spendlost --retries 0 -- true)
good_ids=()
for i in $(seq 1 20); do
	good_ids+=("$(o dispatch --vm good -- sh -c "echo good-$i; seq 1 $((i * 100)) | md5sum")")
done

for s in forge seq flood bigout llm garbage spend spendlost; do
	wait_for 180 "hostile scenario $s" test -e "$T/hostile/evil-$s.done"
done
for id in "${good_ids[@]}"; do
	wait_for 60 "honest task $id" sh -c "'$ORCH' --socket '$SOCK' --json result $id 2>/dev/null | jq -e '.state != \"queued\" and .state != \"leased\" and .state != \"running\"' >/dev/null"
done
touch "$T/probe.stop"
wait "$PROBE"
kill -0 "$ORCHD_PID" 2>/dev/null || fail "orchd died"

# The control socket stayed responsive throughout.
probe=$(cat "$T/probe.out")
echo "status latency: $probe"
[ "$(echo "$probe" | jq .failed)" = 0 ] || fail "status calls failed: $probe"
[ "$(echo "$probe" | jq '.count >= 100')" = true ] || fail "too few status samples: $probe"
[ "$(echo "$probe" | jq ".p99 <= $P99_MS")" = true ] || fail "status p99 over $P99_MS ms: $probe"

# The honest VM's tasks: each succeeded with its own output, nothing forged in it.
i=0
for id in "${good_ids[@]}"; do
	i=$((i + 1))
	[ "$(task_field "$id" state)" = succeeded ] || fail "honest task $id: $(o --json result "$id")"
	want=$(printf 'good-%s\n%s\n' "$i" "$(seq 1 $((i * 100)) | md5sum)")
	got=$(o logs "$id")
	[ "$got" = "$want" ] || fail "honest task $id output: $got"
done

# Seqs: A (0), B (2^53-2), C (2^53-1); D and E refused, F and G duplicates.
[ "$(o logs "$seq_id")" = ABC ] || fail "seq task output: '$(o logs "$seq_id")'"
[ "$(task_field "$seq_id" state)" = succeeded ] || fail "seq task state"
# Its exit reason reaches the operator's terminal with the control bytes visible.
o result "$seq_id" | grep -qF 'reason       ^[]0;owned^G^[[2Jdone' ||
	fail "reason shown as: $(o result "$seq_id" | grep reason | od -c | head -3)"

# The flood: every byte kept, in a bounded number of index rows.
rows=$(sqlite3 "$T/state/orch.db" "SELECT COUNT(*) FROM output WHERE task = $flood_id")
bytes=$(task_field "$flood_id" output_bytes)
echo "flood: $rows index rows for $bytes bytes"
[ "$bytes" = 300000 ] || fail "flood output_bytes $bytes"
[ "$rows" -le 10000 ] || fail "flood made $rows index rows"
[ "$(o logs "$flood_id" 2>/dev/null | wc -c)" = 150000 ] || fail "flood stdout bytes"
o logs "$flood_id" 2>&1 >/dev/null | tr -d e | wc -c | grep -qx 0 || fail "flood stderr holds other bytes"

# max_output_mib: 2 MiB of the 8 kept.
bytes=$(task_field "$big_id" output_bytes)
spool=$(stat -c %s "$T/state/spool/$big_id.out")
[ "$bytes" -le $((2 * 1024 * 1024)) ] && [ "$bytes" -gt 0 ] || fail "bigout output_bytes $bytes"
[ "$spool" -le $((2 * 1024 * 1024)) ] || fail "bigout spool $spool bytes"

# The LLM flood: a third for slots that do not exist (-32002), a third for an idle slot
# (403: no task runs there), a third for the task's slot, of which the agent's
# in-flight cap (16) admits some and refuses the rest (429). orchd served on.
llm=$(cat "$T/hostile/evil-llm.done")
echo "llm: $llm"
[ "$(echo "$llm" | jq '.codes["-32002"]')" = 100 ] || fail "requests for missing slots"
[ "$(echo "$llm" | jq '.codes["403"]')" = 100 ] || fail "requests for an idle slot"
[ "$(echo "$llm" | jq '.codes["429"] >= 84')" = true ] || fail "the agent in-flight cap"
[ "$(echo "$llm" | jq '.codes["200"] >= 1 and .codes["200"] <= 16')" = true ] || fail "admitted"
[ "$(task_field "$llm_id" state)" = succeeded ] || fail "llm task state"

# Spend settled after the task's exit, and a lost task's spend: orch result and orch
# tasks show them as the ledger has them.
wait_for 10 "evil-spendlost's task lost" state_is "$lost_id" lost
for id in "$spend_id" "$lost_id"; do
	read -r micro tokens < <(sqlite3 -separator ' ' "$T/state/orch.db" \
		"SELECT spent_micro, spent_tokens FROM llm_budget WHERE scope='task' AND id='$id'")
	[ "${micro:-0}" -gt 0 ] || fail "task $id: nothing in the ledger"
	want=$(jq -n "$micro / 1000000")
	[ "$(task_field "$id" spend_usd)" = "$want" ] || fail "task $id: result spend $(task_field "$id" spend_usd), ledger $want"
	[ "$(task_field "$id" spend_tokens)" = "$tokens" ] || fail "task $id: result tokens"
	[ "$(o --json tasks | jq -r ".[] | select(.id == $id) | .spend_usd")" = "$want" ] ||
		fail "orch tasks shows another spend for $id"
done

# The storm: restarted with backoff, not in a loop.
starts=$(wc -l <"$T/hostile/evil-storm.starts")
echo "storm: $starts starts"
[ "$starts" -ge 2 ] && [ "$starts" -le 6 ] || fail "evil-storm started $starts times"

# Garbage did not stop the channel from working afterwards.
jq -e .hello_ok "$T/hostile/evil-garbage.done" >/dev/null || fail "hello after garbage"

size1=$(du -sb "$T/state" | cut -f1)
echo "state dir grew by $((size1 - size0)) bytes"
[ $((size1 - size0)) -lt $GROWTH_MAX ] || fail "state dir grew by $((size1 - size0)) bytes"
echo PASS
