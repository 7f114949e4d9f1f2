#!/bin/bash
# The LLM path through the real supervisor: a jailed agent calls the in-jail endpoint
# (127.0.0.1:4000, placeholder key) with curl; orch-supervisor forwards llm.request on its
# channel, orchd's proxy calls the fake upstream with the real key, and the task's spend
# is recorded. The real key never reaches the jail.
. "$(dirname "$0")/../lib/orchd.sh"
FAKE=$B/tests/llm/llm-fake-upstream
[ -x "$FAKE" ] || fail "llm-fake-upstream is not built (host/llm absent)"
command -v curl >/dev/null || skip "curl is not installed"

key="sk-real-key-jail-$$"
echo "$key" >"$T/key"
chmod 600 "$T/key"
"$FAKE" --port 0 --key "$key" --record "$T/rec.jsonl" >"$T/fake.out" 2>&1 &
FAKE_PID=$!
wait_for 5 "the fake upstream" sh -c "[ -s '$T/fake.out' ]"
port=$(head -1 "$T/fake.out")
cat >"$T/orchd.json" <<JSON
{ "uid_base": $UIDB, "llm": { "upstreams": { "fake": { "kind": "anthropic", "base_url": "http://127.0.0.1:$port",
                                    "key_file": "$T/key" } },
           "models": { "claude-x": { "upstream": "fake", "input_usd_per_mtok": 3,
                                     "output_usd_per_mtok": 15 } } } }
JSON
# debug: orchd says which channel the LLM requests take; info: the supervisor's own word
ORCHD_VERBOSE=-vv ORCH_LOG_LEVEL=info start_orchd --config "$T/orchd.json"
# The key reaches tasks in two halves, so that no task's command line (which the
# transcript records) contains it.
k1=${key:0:8}
k2=${key:8}
out=$(o dispatch --wait -- sh -c '
	env | grep -qF -e "$1$2" && echo KEY-LEAKED
	curl -s http://127.0.0.1:4000/v1/messages -H "content-type: application/json" \
		-H "anthropic-version: 2023-06-01" -H "x-api-key: $ANTHROPIC_API_KEY" \
		-d "{\"model\":\"claude-x\",\"max_tokens\":50,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"' env-check "$k1" "$k2")
echo "$out" | grep -q "Hello from the fake upstream" || fail "answer: $out"
grep -q "LLM requests on a channel of their own" "$T/orchd.log" ||
	fail "orchd did not give the supervisor an LLM channel of its own"
grep -q "LLM channel connected" "$T/orchd.log" || fail "the supervisor did not use its LLM channel"
echo "$out" | grep -q KEY-LEAKED && fail "the real key is in the jail's environment"
id=$(o --json tasks | jq -r '.[0].id')
[ "$(task_field "$id" spend_tokens)" = 33 ] || fail "spend_tokens $(task_field "$id" spend_tokens)"
grep -q "$key" "$T/rec.jsonl" || fail "the upstream did not get the real key"
# a model outside the allowlist is refused in the provider's shape, nothing forwarded
n=$(wc -l <"$T/rec.jsonl")
out=$(o dispatch --wait -- curl -s http://127.0.0.1:4000/v1/messages -H "content-type: application/json" \
	-d '{"model":"gpt-nope","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}')
echo "$out" | grep -q '"type":"error"' || fail "denied model answer: $out"
[ "$(wc -l <"$T/rec.jsonl")" = "$n" ] || fail "a denied request reached the upstream"
# The real key is nowhere the agent can read: not in any process environment it can see,
# not in the files of its jail (workspace, /tmp, /etc, /run, /var, /home, /root), and not
# in what orchd keeps for it (transcript, output spool, orchd's own log).
out=$(o dispatch --wait -- sh -c '
	k="$1$2"
	for e in /proc/[0-9]*/environ; do tr "\0" "\n" <"$e" 2>/dev/null; done | grep -qF -e "$k" && echo KEY-IN-ENV
	grep -rIlF -e "$k" /workspace /tmp /etc /run /var /home /root 2>/dev/null | sed "s/^/KEY-IN-FILE /"
	echo SEARCHED' search "$k1" "$k2")
echo "$out" | grep -q SEARCHED || fail "the search in the jail did not run: $out"
echo "$out" | grep -q "KEY-IN-" && fail "the real key is readable in the jail: $out"
grep -rIl -e "$key" "$T/state/workspaces" "$T/state/spool" "$T/orchd.log" 2>/dev/null &&
	fail "the real key is in a transcript, the spool or orchd's log"
ls "$T"/state/workspaces/*/agent-*/transcript.jsonl >/dev/null 2>&1 || fail "no transcript was searched"
echo PASS
