#!/bin/bash
# The official SDKs as real agents would run them: @anthropic-ai/sdk and openai under
# node, INSIDE a jail, through the in-jail endpoint (127.0.0.1:4000, placeholder key),
# orch-supervisor's LLM channel and orchd's proxy to the fake upstream. Streaming and
# non-streaming calls, model lists, a denied model; the real key never reaches the jail.
. "$(dirname "$0")/../lib/orchd.sh"
S=${ORCH_SOURCEDIR:?ORCH_SOURCEDIR is not set}
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built (host/llm absent)"
command -v node >/dev/null || skip "node is not installed (scripts/install-deps)"
[ -d "$S/tests/llm/node_modules/@anthropic-ai/sdk" ] && [ -d "$S/tests/llm/node_modules/openai" ] ||
	skip "the SDKs are not installed (scripts/install-deps runs npm ci in tests/llm)"

key="sk-real-key-sdk-$$"
echo "$key" >"$T/key"
chmod 600 "$T/key"
"$FAKE" --port 0 --key "$key" --record "$T/rec.jsonl" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
port=$(head -1 "$T/fake.out")
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB,
  "llm": { "upstreams": {
             "anthropic": { "kind": "anthropic", "base_url": "http://127.0.0.1:$port", "key_file": "$T/key" },
             "openai": { "kind": "openai", "base_url": "http://127.0.0.1:$port", "key_file": "$T/key" } },
           "models": {
             "claude-sonnet-4-5": { "upstream": "anthropic", "input_usd_per_mtok": 3, "output_usd_per_mtok": 15 },
             "gpt-4.1": { "upstream": "openai", "input_usd_per_mtok": 2, "output_usd_per_mtok": 8 } } } }
JSON
start_orchd --config "$T/orchd.json"

# The agent's files: the scripts and the SDKs, in agent 0's workspace, owned by it.
ws=$T/state/workspaces/local/agent-0
wait_for 10 "agent 0's workspace" test -d "$ws"
mkdir -p "$ws/sdk"
cp "$S/tests/llm/sdk-anthropic.mjs" "$S/tests/llm/sdk-openai.mjs" "$ws/sdk/"
cp -r "$S/tests/llm/node_modules" "$ws/sdk/"
chown -R "$UIDB:$UIDB" "$ws/sdk"

for script in sdk-anthropic.mjs sdk-openai.mjs; do
	rc=0
	out=$(o dispatch --agent 0 --wait -- node "/workspace/sdk/$script" 2>&1) || rc=$?
	[ "$rc" = 0 ] || fail "$script in the jail exited $rc: $out"
	echo "$out" | grep -q '"ok":true' || fail "$script: $out"
	echo "$out" | grep -qF -e "$key" && fail "$script saw the real key"
	echo "ok - $script in the jail: $out"
done
# Both APIs reached the upstream with the real key, never the placeholder.
grep -q '/v1/messages' "$T/rec.jsonl" || fail "no Anthropic request reached the upstream"
grep -q '/v1/chat/completions' "$T/rec.jsonl" || fail "no OpenAI request reached the upstream"
grep -qF -e "$key" "$T/rec.jsonl" || fail "the upstream did not get the real key"
grep -q 'orch-placeholder' "$T/rec.jsonl" && fail "a placeholder key reached the upstream"
# The spend of agent 0 was recorded.
spent=$(o --json budget show --scope agent local/0 | jq -r '.. | .spent_tokens? // empty' | head -1)
[ -n "$spent" ] && [ "$spent" -gt 0 ] || fail "no spend recorded for agent local/0: $(o --json budget show --scope agent local/0)"
echo "agent local/0 spent tokens: $spent"
echo PASS
