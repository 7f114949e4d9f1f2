#!/bin/bash
# Budgets across nodes: three nodes share one fleet budget of a few tenths of a cent in
# PostgreSQL. One task on each node fires 10 LLM calls at once through its jail's endpoint
# (30 concurrent calls; the fake upstream answers slowly, so reservations overlap): the
# calls that fit are answered, the others refused in the provider's shape, and the spend
# never passes the budget — each reservation and settlement is one transaction that locks
# the budget's row. Spend is recorded per node and shows in each node's metrics.
. "$(dirname "$0")/fleet-lib.sh"
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built"
command -v curl >/dev/null || skip "curl is not installed"

key="sk-fleet-$$"
echo "$key" >"$T/key"
chmod 600 "$T/key"
"$FAKE" --port 0 --key "$key" --latency-ms 400 --record "$T/rec.jsonl" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
port=$(head -1 "$T/fake.out")
llm="\"llm\": { \"upstreams\": { \"fake\": { \"kind\": \"anthropic\",
    \"base_url\": \"http://127.0.0.1:$port\", \"key_file\": \"$T/key\" } },
  \"models\": { \"claude-x\": { \"upstream\": \"fake\", \"input_usd_per_mtok\": 3,
    \"output_usd_per_mtok\": 15 } },
  \"rate_limits\": { \"agent_inflight\": 16 } }"

pg_start
for n in na nb nc; do start_node "$n" 2 "$llm"; done
# $0.003: a call reserves its worst case (~$0.0008) and costs $0.000243 when answered
on nb budget set fleet all --usd 0.003 >/dev/null || fail "budget set fleet"
[ "$(on nc --json budget show --scope fleet | jq -r '.[0].limit_usd * 1000 | round')" = 3 ] ||
	fail "the fleet budget set on nb is not nc's: $(on nc --json budget show --scope fleet)"

# each call retries while in-flight reservations hold the budget (429), as SDKs do, and
# stops when answered (200) or when the spend alone leaves no room (403)
calls='call() {
	for t in $(seq 200); do
		c=$(curl -s -o "/tmp/r$1" -w "%{http_code}" http://127.0.0.1:4000/v1/messages \
			-H "content-type: application/json" -H "anthropic-version: 2023-06-01" \
			-H "x-api-key: $ANTHROPIC_API_KEY" \
			-d "{\"model\":\"claude-x\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")
		[ "$c" = 429 ] || break
		sleep 0.1
	done
	echo "$c"
}
for i in $(seq 10); do call "$i" & done; wait'
for n in na nb nc; do
	on "$n" dispatch --vm "$n-v" -- sh -c "$calls" >"$T/id-$n"
done
wait_for 120 "the three tasks" all_done
ok=0
for n in na nb nc; do
	id=$(cat "$T/id-$n")
	codes=$(on "$n" logs "$id")
	[ "$(echo "$codes" | grep -cE '^(200|403)$')" = 10 ] || fail "answers on $n: $codes"
	echo "$n: $(echo "$codes" | sort | uniq -c | tr '\n' ' ')"
	ok=$((ok + $(echo "$codes" | grep -c '^200$' || true)))
	[ "$(sql "SELECT node FROM tasks WHERE id = $id")" = "$n" ] || fail "task $id did not run on $n"
done
read -r limit spent reserved < <(sql "SELECT limit_micro, spent_micro, reserved_micro FROM llm_budget
	WHERE scope = 'fleet'" | tr '|' ' ')
[ "$limit" = 3000 ] || fail "fleet limit $limit"
[ "$reserved" = 0 ] || fail "reservations left: $reserved"
[ "$spent" -le "$limit" ] || fail "the fleet budget was overshot: spent $spent of $limit micro-USD"
# used up: the calls refused for good (403) found less room than their worst case
[ "$spent" -gt $((limit / 2)) ] || fail "spent only $spent of $limit: calls gave up too early"
[ "$ok" -lt 30 ] || fail "all 30 calls were answered: the budget did not bind"
[ "$spent" = $((ok * 243)) ] || fail "spent $spent for $ok answered calls (243 each)"
[ "$(sql "SELECT sum(micro) FROM llm_spend")" = "$spent" ] || fail "llm_spend does not add up"
[ "$(wc -l <"$T/rec.jsonl")" = "$ok" ] || fail "$(wc -l <"$T/rec.jsonl") calls reached the upstream for $ok answers"
# each node's spend in its own metrics; together the fleet's
total=0
for n in na nb nc; do
	on "$n" metrics | "$(dirname "$0")/../metrics/prom-parse" >"$T/m-$n" || fail "metrics of $n"
	v=$(awk '$1 == "orch_llm_requests_total{model=\"claude-x\"}" { print int($2) }' "$T/m-$n")
	total=$((total + ${v:-0}))
done
[ "$total" = "$ok" ] || fail "the nodes' metrics count $total requests, $ok were answered"
# their spend and tokens add up to the ledger's
m_spent=$(awk '$1 == "orch_llm_spend_usd_total{model=\"claude-x\"}" { s += $2 }
	END { printf "%d", s * 1e6 + 0.5 }' "$T"/m-n?)
[ "$m_spent" = "$spent" ] || fail "the nodes' metrics count $m_spent micro-USD, the ledger $spent"
for kind in input output; do
	m=$(awk -v k="orch_llm_tokens_total{kind=\"$kind\",model=\"claude-x\"}" '$1 == k { s += $2 }
		END { printf "%d", s }' "$T"/m-n?)
	[ "$m" = "$(sql "SELECT sum(${kind}_tokens) FROM llm_spend")" ] && [ "$m" -gt 0 ] ||
		fail "$kind tokens in the metrics $m, in llm_spend $(sql "SELECT sum(${kind}_tokens) FROM llm_spend")"
done
echo "PASS ($ok of 30 calls answered, $spent of $limit micro-USD spent)"
