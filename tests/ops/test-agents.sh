#!/bin/bash
# The five agent CLIs, installed by `orch agents install` from npm, each through its
# shipped profile on the local backend: a real tool loop against the fake upstream
# (tests/ops/agents-lib.sh has the checks).
. "$(dirname "$0")/../lib/orchd.sh"
. "$(dirname "$0")/agents-lib.sh"

agents_install
agents_fake_start
jq -n --argjson uid "$UIDB" --arg dir "$AGENTS_DIR" --argjson llm "$(agents_llm_json)" \
	'{uid_base: $uid, agents_dir: $dir, llm: $llm}' >"$T/orchd.json"
start_orchd --config "$T/orchd.json"
# orch doctor reports the installed agents.
ORCH_CONFIG=$T/orchd.json "$ORCH" --json doctor --no-boot 2>/dev/null |
	jq -e '.items[] | select(.id == "agents") | .detail | test("claude")' >/dev/null ||
	fail "orch doctor does not report the installed agents"

slot=0
for a in $AGENT_NAMES; do
	agents_run "$a" local "$slot" "$T/state/workspaces/local/agent-$slot" 180s
	slot=$(((slot + 1) % 4))
done
# orch tasks shows a profile's task as its agent's command, one line each.
tasks=$(o tasks)
echo "$tasks" | grep -q '\[claude\] claude --dangerously' ||
	fail "orch tasks does not show the agent's command: $tasks"
[ "$(echo "$tasks" | wc -l)" = $(($(echo $AGENT_NAMES | wc -w) + 1)) ] ||
	fail "orch tasks is not one line per task: $tasks"
echo "ok - orch tasks: one line per task, the agent's command"
echo PASS
